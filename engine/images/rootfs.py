"""A container's root filesystem: an overlayfs of its image's snapshot dirs plus a writable upper.

The snapshots are read-only lower dirs (top layer first, as overlayfs wants), shared by every
container of every image that has them; the container writes only to its own ``upper`` (``work``
is overlayfs' scratch dir, on the same filesystem). Without ``upper`` the mount is read-only (the
builder reads a stage's files that way). Mounts go straight through mount(2) via libc; when the
option string would pass the kernel's one-page limit (images with dozens of layers) the new mount
API's ``lowerdir+`` (Linux 6.8+) is used instead. Blocking; needs CAP_SYS_ADMIN.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from engine.images.errors import MountError
from engine.images.store import Image, ImageStore

_PAGE_LIMIT = 4096 - 1
MNT_DETACH = 2
MS_RDONLY = 1
# x86_64 / aarch64 share these (unified syscall table, Linux 5.2+)
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 428, 429, 430, 431, 432
_FSCONFIG_SET_FLAG, _FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 0, 1, 6
_FSOPEN_CLOEXEC, _FSMOUNT_CLOEXEC, _MOUNT_ATTR_RDONLY = 1, 1, 1
_MOVE_MOUNT_F_EMPTY_PATH = 4
_AT_FDCWD = -100

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long


def _fail(what: str, target: str | os.PathLike[str]) -> MountError:
    err = ctypes.get_errno()
    return MountError(f"{what} {os.fspath(target)}: {os.strerror(err)} (errno {errno.errorcode.get(err, err)})")


def _escape(path: Path) -> str:
    text = os.fspath(path)
    if any(c in text for c in ",:\n"):
        raise MountError(f"overlay lower/upper path contains ',' or ':': {text}")
    return text


def _options(lowers: Sequence[Path], upper: Path | None, work: Path | None) -> str:
    opts = ["lowerdir=" + ":".join(_escape(p) for p in lowers)]
    if upper is not None and work is not None:
        opts += [f"upperdir={_escape(upper)}", f"workdir={_escape(work)}"]
    return ",".join(opts)


def _mount_classic(target: Path, options: str, *, readonly: bool) -> None:
    flags = MS_RDONLY if readonly else 0
    if _libc.mount(b"overlay", os.fsencode(target), b"overlay", flags, options.encode()) != 0:
        raise _fail("cannot mount overlay on", target)


def _fsconfig(fd: int, key: str, value: str | None) -> None:
    cmd = _FSCONFIG_SET_FLAG if value is None else _FSCONFIG_SET_STRING
    val = None if value is None else value.encode()
    if _libc.syscall(_SYS_FSCONFIG, fd, cmd, key.encode(), val, 0) < 0:
        raise MountError(f"overlay option {key}: {os.strerror(ctypes.get_errno())}")


def _mount_new_api(target: Path, lowers: Sequence[Path], upper: Path | None, work: Path | None) -> None:
    """fsopen/fsconfig/fsmount/move_mount: one ``lowerdir+`` per layer, no length limit."""
    fs_fd = _libc.syscall(_SYS_FSOPEN, b"overlay", _FSOPEN_CLOEXEC)
    if fs_fd < 0:
        raise _fail("fsopen(overlay) for", target)
    mnt_fd = -1
    try:
        for lower in lowers:
            _fsconfig(fs_fd, "lowerdir+", _escape(lower))
        if upper is not None and work is not None:
            _fsconfig(fs_fd, "upperdir", _escape(upper))
            _fsconfig(fs_fd, "workdir", _escape(work))
        if _libc.syscall(_SYS_FSCONFIG, fs_fd, _FSCONFIG_CMD_CREATE, None, None, 0) < 0:
            raise _fail("cannot create overlay for", target)
        attrs = _MOUNT_ATTR_RDONLY if upper is None else 0
        mnt_fd = _libc.syscall(_SYS_FSMOUNT, fs_fd, _FSMOUNT_CLOEXEC, attrs)
        if mnt_fd < 0:
            raise _fail("fsmount for", target)
        if _libc.syscall(_SYS_MOVE_MOUNT, mnt_fd, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH) < 0:
            raise _fail("cannot attach overlay on", target)
    finally:
        os.close(fs_fd)
        if mnt_fd >= 0:
            os.close(mnt_fd)


def mount_overlay(
    lowers: Sequence[str | os.PathLike[str]],
    *,
    target: str | os.PathLike[str],
    upper: str | os.PathLike[str] | None = None,
    work: str | os.PathLike[str] | None = None,
    new_api: bool | None = None,
) -> None:
    """Mount an overlay of ``lowers`` (top layer FIRST) on ``target``; read-only without ``upper``.

    ``new_api`` forces (True) or forbids (False) the fsopen path; by default it is used only when
    the classic option string is too long.
    """
    if (upper is None) != (work is None):
        raise MountError("overlay needs both upper and work dirs, or neither")
    lower_paths = [Path(p) for p in lowers]
    if not lower_paths:
        raise MountError("overlay needs at least one lower dir")
    target_p = Path(target)
    upper_p, work_p = (Path(upper), Path(work)) if upper is not None and work is not None else (None, None)
    for d in (target_p, upper_p, work_p):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
    options = _options(lower_paths, upper_p, work_p)
    if new_api is None:
        new_api = len(options) > _PAGE_LIMIT
    if new_api:
        _mount_new_api(target_p, lower_paths, upper_p, work_p)
    else:
        _mount_classic(target_p, options, readonly=upper_p is None)


def image_lowers(store: ImageStore, image: str | Image, *, readonly: bool = False) -> list[Path]:
    """The lowerdir list of an image, top layer first, padded with empty dirs to the minimum
    overlayfs accepts (one with an upper dir, two without)."""
    lowers = list(reversed(store.layer_dirs(image)))
    minimum = 2 if readonly else 1
    lowers += list(store.snapshots.empty_dirs[: max(0, minimum - len(lowers))])
    return lowers


def mount(
    store: ImageStore,
    image: str | Image,
    *,
    target: str | os.PathLike[str],
    upper: str | os.PathLike[str] | None = None,
    work: str | os.PathLike[str] | None = None,
) -> None:
    """Mount the root filesystem of ``image`` on ``target`` (writable to ``upper`` if given)."""
    mount_overlay(image_lowers(store, image, readonly=upper is None), target=target, upper=upper, work=work)


def unmount(target: str | os.PathLike[str], *, lazy: bool = False) -> None:
    """Unmount ``target``; a target that is not mounted is fine. ``lazy`` detaches a busy mount."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH if lazy else 0) != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return  # not a mount point (any more)
        if err == errno.EBUSY and not lazy:
            raise _fail("cannot unmount (busy)", target)
        raise _fail("cannot unmount", target)


def is_mounted(target: str | os.PathLike[str]) -> bool:
    path = os.path.realpath(target)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split()[4] == path for line in f)


@contextlib.contextmanager
def mounted(
    store: ImageStore,
    image: str | Image,
    *,
    target: str | os.PathLike[str],
    upper: str | os.PathLike[str] | None = None,
    work: str | os.PathLike[str] | None = None,
) -> Iterator[Path]:
    """``mount`` for the duration of a block; unmounted however the block ends."""
    mount(store, image, target=target, upper=upper, work=work)
    try:
        yield Path(target)
    finally:
        unmount(target, lazy=True)
