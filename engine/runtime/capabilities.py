"""Linux capability names: the full table, Docker's add/drop rules, and what this host can grant.

A container's capability set is Docker's default set, plus ``cap_add``, minus ``cap_drop`` (either
may say ``ALL``; names are accepted with or without ``CAP_`` and in any case), or every capability
for a privileged container. A runtime can only hand out capabilities that are in its own bounding
set: this VM runs without CAP_SYS_RESOURCE, and a spec asking for it makes crun fail, so
``host_capabilities`` reads our own ``CapBnd`` and the result is clipped to it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

from engine.runtime.errors import SpecError

# bit number -> name, from linux/capability.h (0..40)
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)


def normalise(name: str) -> str:
    """``sys_admin``, ``SYS_ADMIN`` and ``CAP_SYS_ADMIN`` all mean ``CAP_SYS_ADMIN``; ``ALL`` stays."""
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in ALL_CAPABILITIES:
        raise SpecError(f"unknown capability {name!r}")
    return full


@functools.lru_cache(maxsize=1)
def host_capabilities(status: Path = Path("/proc/self/status")) -> frozenset[str]:
    """The capabilities in our own bounding set: the most any container we start can hold."""
    for line in status.read_text().splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return frozenset(name for bit, name in enumerate(ALL_CAPABILITIES) if mask >> bit & 1)
    return frozenset(ALL_CAPABILITIES)


def resolve(
    *,
    base: Sequence[str],
    add: Iterable[str] = (),
    drop: Iterable[str] = (),
    privileged: bool = False,
) -> list[str]:
    """The effective capability list, in bit order, clipped to what this host can grant."""
    adds = {normalise(c) for c in add}
    drops = {normalise(c) for c in drop}
    if privileged or "ALL" in adds:
        chosen = set(ALL_CAPABILITIES)
    else:
        chosen = {normalise(c) for c in base} | adds
    if "ALL" in drops:
        chosen = adds - {"ALL"} if not privileged else set()
    else:
        chosen -= drops
    allowed = host_capabilities()
    return [c for c in ALL_CAPABILITIES if c in chosen and c in allowed]
