"""Registry credentials and the auth handshakes of the distribution API.

Credentials come from arguments or a docker-style ``config.json`` (``auths``: base64 ``auth`` or
``username``/``password`` per registry; ``$DOCKER_CONFIG`` or ``~/.docker/config.json``). A
registry says how it wants them in its 401 ``WWW-Authenticate`` challenge: ``Basic`` (send them on
every request) or ``Bearer realm=...,service=...`` (trade them, or nothing for anonymous access, at
the realm for a short-lived token scoped to the repositories and actions at hand). Tokens are
cached per host and scope until they expire.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine.images.errors import ConfigError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", DOCKER_HUB}
_PARAM_RE = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
TOKEN_MIN_TTL = 60.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def normalise_host(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://localhost:5000`` -> ``localhost:5000``."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


def default_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def load_docker_config(path: str | os.PathLike[str] | None = None) -> dict[str, Credentials]:
    """The ``auths`` of a docker ``config.json`` keyed by normalised host; {} when there is no file."""
    file = Path(path) if path is not None else default_config_path()
    try:
        doc = orjson.loads(file.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{file}: not valid JSON ({exc})") from None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    out: dict[str, Credentials] = {}
    for key, entry in (auths or {}).items():
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ConfigError(f"{file}: auths[{key!r}].auth is not base64 of user:password") from None
        else:
            user, password = entry.get("username", ""), entry.get("password", "")
        if user or password:
            out[normalise_host(key)] = Credentials(user, password)
    return out


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="..",service=".."`` -> ("bearer", {"realm": .., "service": ..})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in _PARAM_RE.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


class Authenticator:
    """Credentials per registry host plus the challenge and token caches of one client."""

    def __init__(
        self,
        credentials: Mapping[str, Credentials] | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
        use_docker_config: bool = True,
    ) -> None:
        self._creds = load_docker_config(config_path) if use_docker_config else {}
        self._creds.update({normalise_host(k): v for k, v in (credentials or {}).items()})
        self.challenges: dict[str, tuple[str, dict[str, str]]] = {}
        self._tokens: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = {}

    def credentials_for(self, host: str) -> Credentials | None:
        return self._creds.get(normalise_host(host))

    def cached_token(self, host: str, scopes: tuple[str, ...]) -> str | None:
        hit = self._tokens.get((host, scopes))
        if hit is None or hit[1] <= time.monotonic():
            return None
        return hit[0]

    def store_token(self, host: str, scopes: tuple[str, ...], token: str, expires_in: float | None) -> None:
        ttl = max(float(expires_in or 0), TOKEN_MIN_TTL)
        self._tokens[(host, scopes)] = (token, time.monotonic() + ttl - 10)

    def forget_token(self, host: str, scopes: tuple[str, ...]) -> None:
        self._tokens.pop((host, scopes), None)
