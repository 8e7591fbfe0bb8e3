"""Safe unpacking of one image layer (a tar, plain or compressed) into a snapshot directory.

Layers come from registries and tarballs we do not trust, so every entry is checked before it
touches the disk: no absolute names, no ``..``, no writing through a symlink (a parent component
that is a symlink is refused), hard links only to files already unpacked in this layer. Nothing is
ever followed on the host. OCI whiteouts are converted to the form overlayfs reads in a lower dir:
``.wh.name`` becomes a 0:0 character device ``name`` and ``.wh..wh..opq`` the
``trusted.overlay.opaque=y`` xattr on its directory. ``trusted.*`` xattrs in the tar itself are
dropped (they would let a layer forge overlay metadata). The uncompressed stream is hashed as it is
read, so the caller can check the layer's diff_id. Blocking; the daemon runs it in a thread.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from engine.images.errors import ArchiveError, UnsafeArchive, UnsupportedImage

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
PAX_XATTR_PREFIX = "SCHILY.xattr."
_CHUNK = 1 << 20

# magic bytes -> how to open the stream (None: known but unsupported)
_DECOMPRESSORS: list[tuple[bytes, str, Callable[[BinaryIO], BinaryIO] | None]] = [
    (b"\x1f\x8b", "gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", "bzip2", lambda f: bz2.BZ2File(f, "rb")),
    (b"\xfd7zXZ\x00", "xz", lambda f: lzma.LZMAFile(f, "rb")),
    (b"\x28\xb5\x2f\xfd", "zstd", None),
]


@dataclass(frozen=True)
class UnpackResult:
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # bytes of the uncompressed tar


class HashingReader:
    """Counts and hashes every byte read through it (the uncompressed layer, for its diff_id)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _ZeroTail:
    """Ends a tar stream cleanly: pads the last block and adds the end-of-archive marker.

    Some writers (umoci's whiteout-only and small layers) stop right after the last member's
    data; Go's reader accepts that, Python's does not. The padding is not hashed: the reader below
    sees only the real bytes, so the diff_id is unaffected.
    """

    def __init__(self, inner: HashingReader) -> None:
        self._inner = inner
        self._tail: bytes | None = None

    def read(self, n: int = -1) -> bytes:
        if self._tail is None:
            data = self._inner.read(n)
            if data:
                return data
            self._tail = b"\0" * ((-self._inner.size) % 512 + 1024)
        out, self._tail = (self._tail, b"") if n < 0 else (self._tail[:n], self._tail[n:])
        return out


def compression_of(head: bytes) -> str:
    """``gzip``/``bzip2``/``xz``/``zstd`` from the first bytes of a stream, ``""`` for a plain tar."""
    for magic, name, _ in _DECOMPRESSORS:
        if head.startswith(magic):
            return name
    return ""


def open_uncompressed(raw: BinaryIO) -> BinaryIO:
    """Wrap a seekable stream so reads return the uncompressed tar, whatever it was packed with."""
    head = raw.read(8)
    raw.seek(-len(head), os.SEEK_CUR)
    for magic, name, opener in _DECOMPRESSORS:
        if head.startswith(magic):
            if opener is None:
                raise UnsupportedImage(f"{name}-compressed layers are not supported (gzip and plain tar are)")
            return opener(raw)
    return raw


def split_member_name(name: str) -> list[str]:
    """Components of a tar entry name, refusing absolute names and ``..`` outright."""
    if name.startswith("/"):
        raise UnsafeArchive(f"refusing absolute path in layer: {name!r}")
    comps = [c for c in name.split("/") if c not in ("", ".")]
    if ".." in comps:
        raise UnsafeArchive(f"refusing path that escapes the layer: {name!r}")
    return comps


def _is_whiteout_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _remove(path: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


class _Extractor:
    """Applies tar entries to ``dest`` one at a time, keeping the safety invariants."""

    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.checked_dirs: set[str] = {dest}
        self.dir_meta: dict[str, tarfile.TarInfo] = {}

    def _parent(self, comps: list[str], name: str, *, create: bool) -> str:
        cur = self.dest
        for comp in comps:
            path = f"{cur}/{comp}"
            if path not in self.checked_dirs:
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    if not create:
                        raise UnsafeArchive(f"hard link target outside the layer: {name!r}") from None
                    os.mkdir(path, 0o755)
                else:
                    if stat.S_ISLNK(st.st_mode):
                        raise UnsafeArchive(f"refusing to write through a symlink: {name!r}")
                    if create and _is_whiteout_device(st):
                        os.unlink(path)
                        os.mkdir(path, 0o755)
                    elif not stat.S_ISDIR(st.st_mode):
                        raise ArchiveError(f"layer entry {name!r}: {comp!r} is not a directory")
                self.checked_dirs.add(path)
            cur = path
        return cur

    def _forget(self, path: str) -> None:
        prefix = path + "/"
        self.checked_dirs = {d for d in self.checked_dirs if d != path and not d.startswith(prefix)}
        for d in [d for d in self.dir_meta if d == path or d.startswith(prefix)]:
            del self.dir_meta[d]

    def apply(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        comps = split_member_name(member.name)
        if not comps:
            return  # the layer root itself
        base = comps[-1]
        parent = self._parent(comps[:-1], member.name, create=True)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base, member.name)
            return
        path = f"{parent}/{base}"
        try:
            existing: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            existing = None
        if member.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                os.unlink(path)
                existing = None
            if existing is None:
                os.mkdir(path, 0o700)
            os.chown(path, member.uid, member.gid, follow_symlinks=False)
            self._xattrs(path, member)
            self.checked_dirs.add(path)
            self.dir_meta[path] = member
            return
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                self._forget(path)
            _remove(path, existing)
        self._create(tf, member, path)

    def _whiteout(self, parent: str, base: str, name: str) -> None:
        if base == OPAQUE_MARKER:
            os.setxattr(parent, OVERLAY_OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk, ...): meaningless here
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", ".."):
            raise UnsafeArchive(f"invalid whiteout entry: {name!r}")
        path = f"{parent}/{hidden}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(st.st_mode):
                self._forget(path)
            _remove(path, st)
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def _create(self, tf: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        if member.isreg():
            src = tf.extractfile(member)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, _CHUNK)
                os.fchown(fd, member.uid, member.gid)
                os.fchmod(fd, member.mode & 0o7777)
        elif member.issym():
            os.symlink(member.linkname, path)
            os.chown(path, member.uid, member.gid, follow_symlinks=False)
        elif member.islnk():
            target_comps = split_member_name(member.linkname)
            if not target_comps:
                raise UnsafeArchive(f"invalid hard link target: {member.linkname!r}")
            target_parent = self._parent(target_comps[:-1], member.linkname, create=False)
            target = f"{target_parent}/{target_comps[-1]}"
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                raise UnsafeArchive(f"hard link target outside the layer: {member.linkname!r}") from None
            if stat.S_ISDIR(st.st_mode):
                raise UnsafeArchive(f"hard link to a directory: {member.linkname!r}")
            os.link(target, path, follow_symlinks=False)
            return  # a hard link shares its target's owner, mode and times
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | (member.mode & 0o7777), os.makedev(member.devmajor, member.devminor))
            os.chown(path, member.uid, member.gid)
            os.chmod(path, member.mode & 0o7777)
        elif member.isfifo():
            os.mkfifo(path, member.mode & 0o7777)
            os.chown(path, member.uid, member.gid)
            os.chmod(path, member.mode & 0o7777)
        else:
            return  # GNU volume headers and the like carry nothing to unpack
        self._xattrs(path, member)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    @staticmethod
    def _xattrs(path: str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith(PAX_XATTR_PREFIX):
                continue
            name = key[len(PAX_XATTR_PREFIX) :]
            if name.startswith("trusted."):
                continue
            try:
                os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError:
                continue  # the host filesystem may not take every namespace; the content still unpacks

    def finish(self) -> None:
        """Directory modes and times last: creating children would otherwise bump their mtimes."""
        for path in sorted(self.dir_meta, key=len, reverse=True):
            member = self.dir_meta[path]
            os.chmod(path, member.mode & 0o7777)
            os.utime(path, (member.mtime, member.mtime))


def unpack_layer(raw: BinaryIO, dest: str | os.PathLike[str]) -> UnpackResult:
    """Unpack the layer stream ``raw`` (seekable, any supported compression) into the empty dir ``dest``."""
    reader = HashingReader(open_uncompressed(raw))
    extractor = _Extractor(os.fspath(dest))
    try:
        with tarfile.open(fileobj=_ZeroTail(reader), mode="r|") as tf:  # type: ignore[call-overload]
            for member in tf:
                extractor.apply(tf, member)
        reader.drain()
    except (tarfile.TarError, EOFError, zlib.error, OSError, lzma.LZMAError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a real I/O failure of the host, not bad input
        raise ArchiveError(f"layer is not a valid tar stream: {exc}") from None
    extractor.finish()
    return UnpackResult(diff_id=reader.digest, size=reader.size)
