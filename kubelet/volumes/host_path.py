"""hostPath volumes: a path of the node itself, checked (or created) per ``type`` as upstream."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubelet.volumes.errors import VolumeError
from kubelet.volumes.plugin import Context, Plugin


def _mode(path: Path) -> int | None:
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return None


def _make_dir(path: Path) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _make_file(path: Path) -> None:
    os.makedirs(path.parent, mode=0o755, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


#: type -> (test on st_mode, what the message calls it, how to create it when missing)
CHECKS: dict[str, tuple[Callable[[int], bool], str, Callable[[Path], None] | None]] = {
    "DirectoryOrCreate": (stat.S_ISDIR, "a directory", _make_dir),
    "Directory": (stat.S_ISDIR, "a directory", None),
    "FileOrCreate": (stat.S_ISREG, "a file", _make_file),
    "File": (stat.S_ISREG, "a file", None),
    "Socket": (stat.S_ISSOCK, "a socket file", None),
    "CharDevice": (stat.S_ISCHR, "a character device", None),
    "BlockDevice": (stat.S_ISBLK, "a block device", None),
}


def check_type(path: Path, kind: str) -> None:
    if kind == "":
        return  # no check, as upstream
    if kind not in CHECKS:
        raise VolumeError(f"{kind} is an invalid volume type")
    test, what, create = CHECKS[kind]
    mode = _mode(path)
    if mode is None and create is not None:
        create(path)
        mode = _mode(path)
    if mode is None or not test(mode):
        raise VolumeError(f"hostPath type check failed: {path} is not {what}")


async def setup(ctx: Context, name: str, spec: dict[str, Any]) -> str:
    raw = spec.get("path") or ""
    if not raw.startswith("/"):
        raise VolumeError(f"hostPath {raw!r} must be an absolute path")
    kind = spec.get("type") or ""

    def run() -> str:
        path = Path(os.path.normpath(raw))
        check_type(path, kind)
        return str(path)

    return await asyncio.to_thread(run)


PLUGIN = Plugin("hostPath", setup)
