"""Mount-table and file-tree primitives the volume plugins share: tmpfs, unmount, safe removal.

Everything here is blocking (syscalls and file I/O); async callers use ``asyncio.to_thread``.
Removal never follows a symlink and never descends into another filesystem, so a pod's files
cannot lead the kubelet into deleting anything outside the pod dir or below a leftover mount.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from pathlib import Path

from kubelet.volumes.errors import VolumeError

MOUNTINFO = "/proc/self/mountinfo"
MNT_DETACH = 2
MS_NOSUID = 0x2
MS_NODEV = 0x4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and len(field[i + 1:i + 4]) == 3:
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points(mountinfo: str = MOUNTINFO) -> list[str]:
    with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
        return [_unescape(line.split()[4]) for line in f if line.strip()]


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first (the order to unmount them in)."""
    prefix = os.path.abspath(root)
    found = {p for p in mount_points() if p == prefix or p.startswith(prefix + "/")}
    return [Path(p) for p in sorted(found, key=lambda p: p.count("/"), reverse=True)]


def is_mount_point(path: Path) -> bool:
    return os.path.abspath(path) in set(mount_points())


def mount_tmpfs(path: Path, *, size: int | None = None) -> None:
    """A tmpfs at ``path`` (once: an existing mount there is kept)."""
    if is_mount_point(path):
        return
    options = f"size={size}" if size else ""
    rc = _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode() or None)
    if rc != 0:
        err = ctypes.get_errno()
        raise VolumeError(f"mount failed: mount -t tmpfs -o {options or 'defaults'} tmpfs {path}: "
                          f"{os.strerror(err)}")


def unmount(path: Path) -> None:
    """Unmount; a busy mount is detached lazily (it goes once its last user does)."""
    target = os.fsencode(path)
    if _libc.umount2(target, 0) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EBUSY and _libc.umount2(target, MNT_DETACH) == 0:
        return
    err = ctypes.get_errno() or err
    if err in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more)
        return
    raise VolumeError(f"unmount of {path} failed: {os.strerror(err)}")


def unmount_all(root: Path) -> None:
    for point in mounts_under(root):
        unmount(point)
    left = mounts_under(root)
    if left:
        raise VolumeError(f"mounts remain under {root}: {', '.join(map(str, left))}")


def remove_tree(root: Path) -> None:
    """Remove ``root`` like ``rm -rf --one-file-system`` without following any symlink."""
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):
        os.unlink(root)
        return
    _remove_dir(os.fspath(root), top.st_dev)


def _remove_dir(path: str, device: int) -> None:
    with os.scandir(path) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != device:
                    raise VolumeError(f"refusing to remove {entry.path}: it is on another filesystem")
                _remove_dir(entry.path, device)
            else:
                os.unlink(entry.path)
    os.rmdir(path)
