"""Copying COPY/ADD sources into a container root filesystem (the merged view of a build step).

Docker's rules: a directory source copies its *contents*; a file goes to ``dest`` itself, or into it
when ``dest`` ends in ``/`` or is an existing directory; several sources need a ``dest`` ending in
``/``; missing parent directories are created; ADD unpacks local tar archives (plain, gzip, bzip2,
xz: detected by content, not name) into the destination directory. Owners become ``owner``
(``--chown``, root by default) except for unpacked archives without ``--chown``, which keep theirs;
permission bits (or ``--chmod``) and modification times are kept.

The destination belongs to an untrusted image: its path is resolved with ``secure_join`` (symlinks
stay inside the rootfs), an existing entry in the way is replaced rather than written through, and
files are created with ``O_EXCL|O_NOFOLLOW``. Blocking; run in a thread.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from engine.build.context import Entry, Source, SourceTree
from engine.build.errors import BuildError
from engine.images.errors import ImageError
from engine.images.unpack import open_uncompressed, unpack_layer
from engine.runtime.rootpath import secure_join

DIR_MODE = 0o755


@dataclass(frozen=True)
class CopyOptions:
    owner: tuple[int, int] | None = None  # --chown; None: root, but unpacked archives keep theirs
    chmod: int | None = None
    unpack_archives: bool = False  # ADD


def is_archive(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a tar stream, possibly compressed (what ADD auto-extracts)."""
    try:
        with open(path, "rb") as raw:
            block = open_uncompressed(raw).read(tarfile.BLOCKSIZE)
        if len(block) < tarfile.BLOCKSIZE:
            return False
        tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
    except (tarfile.TarError, OSError, EOFError, ValueError, ImageError):
        return False
    return True


def ensure_dir(root: Path, container_path: str, *, owner: tuple[int, int]) -> Path:
    """The host path of directory ``container_path`` inside ``root``, creating missing parts."""
    current = root
    for comp in [c for c in container_path.split("/") if c]:
        current = secure_join(root, os.path.relpath(current / comp, root))
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, DIR_MODE)
            os.chown(current, *owner)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise BuildError(f"cannot copy to {container_path}: {os.path.relpath(current, root)} is not a directory")
    return current


def _clear(path: Path, *, keep_dir: bool) -> bool:
    """Remove what is at ``path`` unless it is a directory we may keep; True if a directory remains."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return True
        shutil.rmtree(path)
    else:
        os.unlink(path)
    return False


class _Copier:
    """Writes entries one by one; ``owner`` None keeps each source entry's owner."""

    def __init__(self, *, owner: tuple[int, int] | None, chmod: int | None) -> None:
        self.owner = owner
        self.chmod = chmod
        self.dir_times: list[tuple[Path, float, float]] = []

    def _owner(self, st: os.stat_result) -> tuple[int, int]:
        return self.owner if self.owner is not None else (st.st_uid, st.st_gid)

    def _mode(self, st: os.stat_result) -> int:
        return self.chmod if self.chmod is not None else stat.S_IMODE(st.st_mode)

    def entry(self, entry: Entry, target: Path, *, is_root: bool) -> None:
        st = entry.st
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            existed = _clear(target, keep_dir=True)
            if not existed:
                os.mkdir(target, DIR_MODE)
            if not (existed and is_root):
                os.chown(target, *self._owner(st))
                os.chmod(target, self._mode(st))
                self.dir_times.append((target, st.st_atime, st.st_mtime))
            return
        _clear(target, keep_dir=False)
        if stat.S_ISREG(mode):
            self._file(entry.path, target=target, st=st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(entry.path), target)
            os.chown(target, *self._owner(st), follow_symlinks=False)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(target, self._mode(st))
            os.chown(target, *self._owner(st))
        # devices and sockets are not copied (a 0:0 char device would act as an overlay whiteout)

    def _file(self, src: Path, *, target: Path, st: os.stat_result) -> None:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with open(src, "rb") as f:
                remaining = st.st_size
                offset = 0
                while remaining > 0:
                    sent = os.sendfile(fd, f.fileno(), offset, min(remaining, 1 << 30))
                    if sent == 0:
                        break
                    offset += sent
                    remaining -= sent
            os.fchown(fd, *self._owner(st))
            os.fchmod(fd, self._mode(st))
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)

    def finish(self) -> None:
        for path, atime, mtime in reversed(self.dir_times):
            os.utime(path, (atime, mtime))


def _copy_tree(tree: SourceTree, source: Source, *, target_dir: Path, copier: _Copier) -> None:
    for entry in tree.entries(source):
        copier.entry(entry, target_dir / entry.rel if entry.rel else target_dir, is_root=not entry.rel)


def _unpack_archive(source: Source, target_dir: Path, *, scratch: Path, copier: _Copier) -> None:
    staging = scratch / f"add-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        try:
            with open(source.path, "rb") as raw:
                unpack_layer(raw, staging)
        except ImageError as exc:
            raise BuildError(f"ADD failed: cannot extract {source.rel}: {exc}") from None
        tree = SourceTree(staging, label="archive")
        root_source = Source(path=staging, rel="", real_rel="", is_dir=True)
        for entry in tree.entries(root_source):
            if entry.rel:
                copier.entry(entry, target_dir / entry.rel, is_root=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def copy_sources(
    *,
    tree: SourceTree,
    sources: list[Source],
    root: Path,
    dest: str,
    options: CopyOptions,
    scratch: Path,
    keyword: str = "COPY",
) -> None:
    """Copy ``sources`` of ``tree`` to the absolute container path ``dest`` inside ``root``."""
    into_dir = dest.endswith("/")
    if len(sources) > 1 and not into_dir:
        raise BuildError(
            f"When using {keyword} with more than one source file, the destination must be a directory and end with a /"
        )
    dest_path = posixpath.normpath(dest) if dest.strip("/") else "/"
    dir_owner = options.owner or (0, 0)
    copier = _Copier(owner=dir_owner, chmod=options.chmod)
    archive_copier = _Copier(owner=options.owner, chmod=options.chmod)
    for source in sources:
        if source.is_dir:
            _copy_tree(tree, source, target_dir=ensure_dir(root, dest_path, owner=dir_owner), copier=copier)
            continue
        if options.unpack_archives and is_archive(source.path):
            target_dir = ensure_dir(root, dest_path, owner=dir_owner)
            _unpack_archive(source, target_dir, scratch=scratch, copier=archive_copier)
            continue
        host_dest = secure_join(root, dest_path)
        if into_dir or host_dest.is_dir():
            target = ensure_dir(root, dest_path, owner=dir_owner) / source.name
        else:
            parent = ensure_dir(root, posixpath.dirname(dest_path), owner=dir_owner)
            target = parent / posixpath.basename(dest_path)
        copier.entry(next(tree.entries(source)), target, is_root=False)
    copier.finish()
    archive_copier.finish()
