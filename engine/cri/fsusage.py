"""Disk usage of a directory tree, the way the CRI reports filesystems: bytes and inodes used.

Shared by ImageFsInfo (the image store) and container stats (a container's writable layer).
Blocks (a full walk): run it in a thread. Hard links count once; sizes are allocated blocks, so
sparse files count what they really use.
"""

from __future__ import annotations

import os
from pathlib import Path


def tree_usage(root: str | os.PathLike[str]) -> tuple[int, int]:
    """(bytes, inodes) under ``root``, the root itself excluded; (0, 0) if it does not exist."""
    seen: set[tuple[int, int]] = set()
    size = 0
    stack = [Path(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            size += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return size, len(seen)
