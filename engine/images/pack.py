"""Packing a directory into an OCI layer tar: the inverse of ``unpack``.

The builder turns the upper dir of a build step into a layer with it, and tests make images from
plain directories. Overlay whiteouts in the directory (0:0 character devices, the
``trusted.overlay.opaque`` xattr) become OCI ``.wh.`` entries; hard links inside the tree stay hard
links. Output is deterministic for a given tree (sorted entries, gzip without name or time), so the
same input always gives the same digests. Blocking; run it in a thread from async code.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from engine.images import mediatypes as mt
from engine.images.unpack import OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, PAX_XATTR_PREFIX, WHITEOUT_PREFIX

_CHUNK = 1 << 20


@dataclass(frozen=True)
class PackedLayer:
    digest: str  # of the bytes written (the blob)
    size: int
    diff_id: str  # of the uncompressed tar
    diff_size: int
    media_type: str


class _HashingWriter:
    """A write-only sink that hashes and counts, then passes bytes on."""

    def __init__(self, out: BinaryIO | None) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        if self._out is not None:
            self._out.write(data)
        return len(data)

    def flush(self) -> None:
        if self._out is not None:
            self._out.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def _xattr_headers(path: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return headers
    for name in sorted(names):
        if name.startswith("trusted."):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        headers[PAX_XATTR_PREFIX + name] = value.decode("utf-8", "surrogateescape")
    return headers


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class _Packer:
    def __init__(self, tf: tarfile.TarFile, root: str) -> None:
        self.tf = tf
        self.root = root
        self.inodes: dict[tuple[int, int], str] = {}

    def walk(self, rel: str) -> None:
        base = f"{self.root}/{rel}" if rel else self.root
        for name in sorted(os.listdir(base)):
            child = f"{rel}/{name}" if rel else name
            path = f"{self.root}/{child}"
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                self._marker(f"{rel}/{WHITEOUT_PREFIX}{name}" if rel else f"{WHITEOUT_PREFIX}{name}", st)
                continue
            self._entry(child, path, st)
            if stat.S_ISDIR(st.st_mode):
                if _is_opaque(path):
                    self._marker(f"{child}/{OPAQUE_MARKER}", st)
                self.walk(child)

    def _marker(self, name: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(name)
        info.mtime = int(st.st_mtime)
        info.mode = 0o644
        self.tf.addfile(info)

    def _entry(self, name: str, path: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = int(st.st_mtime)
        info.pax_headers = _xattr_headers(path)
        key = (st.st_dev, st.st_ino)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and key in self.inodes:
            info.type = tarfile.LNKTYPE
            info.linkname = self.inodes[key]
            self.tf.addfile(info)
            return
        if stat.S_ISREG(st.st_mode):
            if st.st_nlink > 1:
                self.inodes[key] = name
            info.size = st.st_size
            with open(path, "rb") as src:
                self.tf.addfile(info, src)
            return
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        else:
            return  # sockets do not belong in a layer
        self.tf.addfile(info)


def pack_dir(src: str | os.PathLike[str], out: BinaryIO, *, compress: bool = True) -> PackedLayer:
    """Write the tree under ``src`` to ``out`` as a layer tar (gzip unless ``compress`` is false)."""
    blob = _HashingWriter(out)
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=blob, mtime=0, compresslevel=6) if compress else None  # type: ignore[arg-type]
    diff = _HashingWriter(gz if gz is not None else blob)  # type: ignore[arg-type]
    with tarfile.open(fileobj=diff, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        _Packer(tf, os.fspath(src)).walk("")
    if gz is not None:
        gz.close()
    media = mt.OCI_LAYER_GZIP if compress else mt.OCI_LAYER
    return PackedLayer(digest=blob.digest, size=blob.size, diff_id=diff.digest, diff_size=diff.size, media_type=media)
