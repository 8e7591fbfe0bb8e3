"""Atomic projection of a set of files into a volume dir, with the upstream kubelet's on-disk layout.

ConfigMap, Secret, downwardAPI and projected volumes are written as the upstream AtomicWriter does,
so that a reader in the container never sees half an update::

    <dir>/..2026_11_29_10_00_00.123456789/<files>   one timestamped dir per version
    <dir>/..data -> ..2026_11_29_10_00_00.123456789 swapped with a rename (atomic)
    <dir>/<key>  -> ..data/<key>                     user-visible names, one per top-level entry

``write`` compares the payload with the current version and writes nothing when it is unchanged.
Blocking; callers run it in a thread.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kubelet.volumes.errors import VolumeError

DATA_DIR = "..data"
_DATA_TMP = "..data_tmp"


#: with an fsGroup, upstream adds group read to projected files and setgid + group r-x to dirs
FS_GROUP_FILE_BITS = 0o440
FS_GROUP_DIR_BITS = 0o2550


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int
    uid: int | None = None  # owner (upstream's fsUser, for service-account tokens)


def validate_path(path: str) -> PurePosixPath:
    """A payload path must stay below the volume: relative, no '..' element, no leading '..'."""
    if not path:
        raise VolumeError("invalid path: must not be empty")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise VolumeError(f"invalid path: must be relative path: {path}")
    if len(path) > 4096:
        raise VolumeError(f"invalid path: must be less than or equal to 4096 characters: {path}")
    if any(part == ".." for part in pure.parts):
        raise VolumeError(f"invalid path: must not contain '..': {path}")
    if path.startswith(".."):
        raise VolumeError(f"invalid path: must not start with '..': {path}")
    return pure


def _timestamped_name() -> str:
    ns = time.time_ns()
    return time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}"


def current_version(target: Path) -> Path | None:
    """The dir ``..data`` points to, if it exists and stays inside ``target``."""
    link = target / DATA_DIR
    try:
        name = os.readlink(link)
    except OSError:
        return None
    if "/" in name or not name.startswith(".."):
        return None
    version = target / name
    return version if version.is_dir() and not version.is_symlink() else None


def _owned(proj: FileProjection, gid: int | None) -> FileProjection:
    """The projection as it lands on disk: group-readable when the pod has an fsGroup."""
    if gid is None:
        return proj
    return FileProjection(proj.data, proj.mode | FS_GROUP_FILE_BITS, proj.uid)


def _unchanged(version: Path, payload: dict[PurePosixPath, FileProjection], gid: int | None) -> bool:
    existing = {PurePosixPath(os.path.relpath(os.path.join(root, f), version))
                for root, _dirs, files in os.walk(version) for f in files}
    if existing != set(payload):
        return False
    for rel, proj in payload.items():
        path = version / rel
        st = path.lstat()
        if (st.st_mode & 0o7777) != proj.mode or path.read_bytes() != proj.data:
            return False
        if (proj.uid is not None and st.st_uid != proj.uid) or (gid is not None and st.st_gid != gid):
            return False
    return True


def _own_dir(path: Path, gid: int | None, mode: int) -> None:
    if gid is not None:
        os.chown(path, -1, gid)
        mode |= FS_GROUP_DIR_BITS
    os.chmod(path, mode)  # explicit: mkdir's mode is masked by the umask


def write(target: Path, payload: dict[str, FileProjection], *, gid: int | None = None) -> bool:
    """Make ``target`` show exactly ``payload`` (group ``gid`` if given); True when a version was written."""
    files = {validate_path(path): _owned(proj, gid) for path, proj in payload.items()}
    target.mkdir(parents=True, exist_ok=True)
    old = current_version(target)
    if old is not None and _unchanged(old, files, gid):
        return False
    new = target / _timestamped_name()
    while True:
        try:
            new.mkdir(mode=0o755)
            break
        except FileExistsError:
            new = target / _timestamped_name()
    _own_dir(new, gid, 0o755)
    for rel, proj in files.items():
        path = new / rel
        for parent in reversed(path.relative_to(new).parents[:-1]):
            if not (new / parent).is_dir():
                (new / parent).mkdir()
                _own_dir(new / parent, gid, 0o755)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(proj.data)
            while view:
                view = view[os.write(fd, view):]
            if proj.uid is not None or gid is not None:
                os.fchown(fd, -1 if proj.uid is None else proj.uid, -1 if gid is None else gid)
            os.fchmod(fd, proj.mode)
        finally:
            os.close(fd)
    tmp = target / _DATA_TMP
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(new.name, tmp)
    os.rename(tmp, target / DATA_DIR)
    _link_user_visible(target, {rel.parts[0] for rel in files})
    if old is not None:
        shutil.rmtree(old)
    _remove_stale_versions(target, keep=new.name)
    return True


def _link_user_visible(target: Path, names: set[str]) -> None:
    """One ``name -> ..data/name`` symlink per top-level entry; names no longer projected go."""
    for entry in os.scandir(target):
        if entry.name.startswith(".."):
            continue
        if entry.name not in names:
            if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
            else:
                shutil.rmtree(entry.path)
    for name in names:
        link = target / name
        if link.is_symlink() and os.readlink(link) == f"{DATA_DIR}/{name}":
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        os.symlink(f"{DATA_DIR}/{name}", link)


def _remove_stale_versions(target: Path, *, keep: str) -> None:
    """Versions left by a write interrupted earlier (e.g. a kubelet killed mid-update)."""
    for entry in os.scandir(target):
        if (entry.name.startswith("..") and entry.name not in (keep, DATA_DIR)
                and entry.is_dir(follow_symlinks=False)):
            shutil.rmtree(entry.path)
