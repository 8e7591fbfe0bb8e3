"""Container names and signals as users type them: validation, and Docker-style generated names.

A name is unique among all containers of a manager (the manager reserves it under a lock before
any slow work, so two concurrent creates cannot both get it). Without one, a container gets
``adjective_surname`` like Docker's, from the small tables below, with a numeric suffix if taken.
"""

from __future__ import annotations

import re
import secrets
import signal
from collections.abc import Container

from engine.containers.errors import InvalidArgument

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,253}")

ADJECTIVES: tuple[str, ...] = (
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quiet", "sharp", "tender", "vivid", "wise", "zealous", "bold", "clever",
)  # fmt: skip
SURNAMES: tuple[str, ...] = (
    "curie", "darwin", "euler", "fermi", "galois", "hopper", "johnson", "kepler", "lovelace",
    "meitner", "noether", "pascal", "ritchie", "shannon", "turing", "volta", "wozniak", "yalow",
)  # fmt: skip


def check_name(name: str) -> str:
    """``name`` without Docker's optional leading slash; InvalidArgument if malformed."""
    bare = name[1:] if name.startswith("/") else name
    if not NAME_RE.fullmatch(bare):
        raise InvalidArgument(f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return bare


def generate_name(taken: Container[str]) -> str:
    """A fresh ``adjective_surname`` not in ``taken``."""
    base = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
    if base not in taken:
        return base
    n = 1
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


def parse_signal(value: str | int) -> int:
    """``9``, ``KILL``, ``SIGKILL`` or ``sigkill`` -> 9; InvalidArgument for anything else."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        if not 0 < number < signal.NSIG:
            raise InvalidArgument(f"invalid signal: {value}")
        return number
    text = value.strip().upper()
    text = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise InvalidArgument(f"invalid signal: {value}") from None
