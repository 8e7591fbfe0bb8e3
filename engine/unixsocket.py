"""Taking over a unix socket path: a stale socket is removed, a live one means another server."""

from __future__ import annotations

import socket
import stat
from pathlib import Path


def claim(path: Path, *, owner: str, error: type[Exception]) -> None:
    """Free ``path`` for our listener; ``error`` (one line) if a non-socket or a live ``owner`` is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise error(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        path.unlink()  # stale: whoever made it is gone
        return
    finally:
        probe.close()
    raise error(f"another {owner} is already listening on {path}")
