"""Content-addressed blobs with crash-safe writes and leases: the bottom layer of the image store.

``blobs/sha256/<hex>`` holds every manifest, index, config and layer. A blob is written to
``tmp/`` and renamed into place only once its digest (and size, when announced) checks out, so a
half-written blob is never visible; JSON documents are digest-checked again on first read and then
cached (content never changes under a digest). A ``Lease`` marks blobs (and snapshot chain ids) an
operation is about to write or use, so garbage collection, which runs elsewhere, leaves them
alone. ``_locked`` serialises metadata writers in-process and, through ``root/lock``, across
processes. Blocking calls; thread-safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.images import manifest as mf
from engine.images.digest import check_digest, hex_of, sha256_of, short_id
from engine.images.errors import DigestMismatch, StoreError

_DOC_CACHE_MAX = 4096


class Lease:
    """Blobs and snapshots an operation is about to write or use: garbage collection keeps them."""

    def __init__(self, store: ContentStore) -> None:
        self._store = store
        self._held: Counter[str] = Counter()

    def add(self, *digests: str) -> None:
        """Protect blob digests and/or snapshot chain ids (both are sha256 digests)."""
        with self._store._lease_lock:
            for d in digests:
                self._held[d] += 1
                self._store._leased[d] += 1

    def release(self) -> None:
        with self._store._lease_lock:
            self._store._leased.subtract(self._held)
            self._store._leased += Counter()  # drop zero counts
            self._held.clear()


class BlobWriter:
    """An incoming blob: bytes go to a temp file and are hashed; ``commit`` renames it into place."""

    def __init__(self, store: ContentStore, *, expected: str | None, size: int | None, what: str) -> None:
        self._store = store
        self.expected = check_digest(expected) if expected else None
        self.expected_size = size
        self.what = what or (expected or "blob")
        self._hash = hashlib.sha256()
        self.size = 0
        self.path = store._tmp_path()
        self._file = open(self.path, "wb")
        self.digest: str | None = None

    def write(self, data: bytes) -> None:
        if self.expected_size is not None and self.size + len(data) > self.expected_size:
            self.abort()
            raise DigestMismatch(f"{self.what}: more data than the announced {self.expected_size} bytes")
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def commit(self) -> str:
        """Check size and digest, then publish the blob; on mismatch nothing is kept."""
        self._file.close()
        actual = "sha256:" + self._hash.hexdigest()
        if self.expected_size is not None and self.size != self.expected_size:
            self.abort()
            raise DigestMismatch(f"{self.what}: got {self.size} bytes, expected {self.expected_size}")
        if self.expected is not None and actual != self.expected:
            self.abort()
            raise DigestMismatch(f"{self.what}: digest mismatch: expected {self.expected}, got {actual}")
        self._store._publish_blob(self.path, actual)
        self.digest = actual
        return actual

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._store._tmp_done(self.path)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self.digest is None:
            self.abort()


class ContentStore:
    """Blobs under ``root``, their temp files, leases and the writer lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.tmp_dir = self.root / "tmp"
        for d in (self.blobs_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._lock_fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._lease_lock = threading.Lock()
        self._leased: Counter[str] = Counter()
        self._active_tmp: set[str] = set()
        self._docs: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    # ---------------------------------------------------------------- locking and files

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _tmp_path(self) -> Path:
        name = uuid.uuid4().hex
        with self._lease_lock:
            self._active_tmp.add(name)
        return self.tmp_dir / name

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """A private directory under tmp/ that gc leaves alone while it is in use."""
        path = self._tmp_path()
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            self._tmp_done(path)

    def _tmp_done(self, path: Path) -> None:
        with self._lease_lock:
            self._active_tmp.discard(path.name)

    def _publish_blob(self, tmp: Path, digest: str) -> None:
        try:
            os.replace(tmp, self.blob_path(digest))
        finally:
            self._tmp_done(tmp)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        """Hold blobs/snapshots against garbage collection for the duration of a write or read."""
        lease = Lease(self)
        try:
            yield lease
        finally:
            lease.release()

    # ---------------------------------------------------------------- blobs

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from the store") from None

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from the store") from None

    def put_blob(self, data: bytes, *, expected: str | None = None) -> str:
        """Store ``data`` (verifying ``expected`` if given) and return its digest; idempotent."""
        digest = sha256_of(data)
        if expected is not None and digest != check_digest(expected):
            raise DigestMismatch(f"blob {expected}: digest mismatch, got {digest}")
        if not self.has_blob(digest):
            tmp = self._tmp_path()
            try:
                tmp.write_bytes(data)
                self._publish_blob(tmp, digest)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                self._tmp_done(tmp)
                raise
        return digest

    def put_blob_file(
        self, path: str | os.PathLike[str], *, expected: str | None = None, lease: Lease | None = None
    ) -> tuple[str, bool]:
        """Move a file (on the store's filesystem, e.g. under ``tmp_dir``) in as a blob after hashing it.

        Returns (digest, whether the blob is new); ``lease`` gets the digest before it is published.
        """
        with open(path, "rb") as f:
            digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
        if expected is not None and digest != check_digest(expected):
            raise DigestMismatch(f"blob {expected}: digest mismatch, got {digest}")
        if lease is not None:
            lease.add(digest)
        if self.has_blob(digest):
            os.unlink(path)
            return digest, False
        os.replace(path, self.blob_path(digest))
        return digest, True

    def ingest(self, *, expected: str | None = None, size: int | None = None, what: str = "") -> BlobWriter:
        """A writer for a blob too big to hold in memory (use as a context manager, then ``commit``)."""
        return BlobWriter(self, expected=expected, size=size, what=what)

    def document(self, digest: str) -> dict[str, Any]:
        """A JSON blob (manifest, index, config), digest-checked on first read and then cached."""
        doc = self._docs.get(digest)
        if doc is None:
            data = self.read_blob(digest)
            if sha256_of(data) != digest:
                raise DigestMismatch(f"stored blob {digest} is corrupted")
            doc = mf.load_document(data, what=f"blob {short_id(digest)}")
            if len(self._docs) >= _DOC_CACHE_MAX:
                self._docs.clear()
            self._docs[digest] = doc
        return doc
