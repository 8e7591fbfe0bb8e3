"""Resolving a path *inside* a container root filesystem without ever leaving it.

An image is untrusted: its ``/etc/passwd`` may be a symlink to ``/etc/shadow`` on the host, a COPY
destination may cross a symlink ``/app -> /``, ``..`` may try to climb out. ``secure_join`` walks
the path one component at a time, re-rooting absolute symlink targets at the rootfs and clamping
``..`` at it, the way a process chrooted there would see it (the idea of filepath-securejoin).
Components that do not exist are appended literally, so the result is also where to create them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.runtime.errors import UnsafePath

MAX_SYMLINKS = 255


def secure_join(root: str | os.PathLike[str], path: str) -> Path:
    """The host path of ``path`` (absolute or relative to ``/``) as seen from inside ``root``."""
    if "\x00" in path:
        raise UnsafePath(f"path contains a NUL byte: {path!r}")
    base = os.fspath(root)
    resolved: list[str] = []
    pending = [c for c in path.split("/") if c not in ("", ".")]
    hops = 0
    while pending:
        comp = pending.pop(0)
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(base, *resolved, comp)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(comp)
            resolved.extend(c for c in pending if c not in ("", "."))
            return _normalise(base, resolved)
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(comp)
            continue
        hops += 1
        if hops > MAX_SYMLINKS:
            raise UnsafePath(f"too many levels of symbolic links in {path!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending = [c for c in target.split("/") if c not in ("", ".")] + pending
    return _normalise(base, resolved)


def _normalise(base: str, comps: list[str]) -> Path:
    """Apply any ``..`` left in the unresolved tail, never climbing above ``base``."""
    out: list[str] = []
    for comp in comps:
        if comp == "..":
            if out:
                out.pop()
        elif comp not in ("", "."):
            out.append(comp)
    return Path(base, *out)


def clean(path: str, *, cwd: str = "/") -> str:
    """An absolute, normalised container path (``cwd`` resolves a relative one), as Go's path.Clean."""
    joined = path if path.startswith("/") else f"{cwd.rstrip('/')}/{path}"
    return os.path.normpath("/" + joined.lstrip("/"))
