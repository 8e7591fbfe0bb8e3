"""Making a container's log appear where the CRI says it lives: ``<log_directory>/<log_path>``.

The kubelet reads (``kubectl logs``) and rotates container logs at the path it chose in
CreateContainer. The engine's ``ContainerManager`` has conmon write the log (already in the CRI
format) into the container's own directory, so the CRI path is made a symlink to that file. This
is the interim until the engine's ``ContainerConfig`` grows a ``log_path`` conmon writes to
directly: with a symlink, a rotation by rename moves the link, not the file, and the next reopen
recreates the link to the same growing file. Blocking (tiny file operations): call from a thread.
"""

from __future__ import annotations

import os
from pathlib import Path


def link(cri_path: str, engine_log: Path) -> None:
    """Point ``cri_path`` at the engine's log file (replacing a stale link; never a real file)."""
    if not cri_path:
        return
    path = Path(cri_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        if os.readlink(path) == os.fspath(engine_log):
            return
        path.unlink()
    elif path.exists():
        return  # a real file there (a runtime that wrote it directly): leave it alone
    tmp = path.with_name(f".{path.name}.link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(engine_log)
    os.replace(tmp, path)


def unlink(cri_path: str, engine_log: Path) -> None:
    """Remove ``cri_path`` if it is our link to ``engine_log`` (the kubelet may have done so)."""
    if not cri_path:
        return
    path = Path(cri_path)
    if path.is_symlink() and os.readlink(path) == os.fspath(engine_log):
        path.unlink(missing_ok=True)
