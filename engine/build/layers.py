"""Where build steps touch the filesystem: a per-build scratch dir, step mounts, and layer commits.

A filesystem step (RUN, COPY, ADD, WORKDIR) mounts an overlay of the parent state's snapshots plus
a fresh upper dir, changes the merged view, unmounts, and ``commit_layer`` turns the upper dir into
a layer: packed (overlay whiteouts and opaque dirs become OCI ``.wh.`` entries) into a blob, then
moved in as the snapshot of the new chain id, so the next step mounts it without unpacking. RUN
steps also get an ``init`` lower dir on top holding the mount points the runtime needs (/proc,
/sys, /dev...), as Docker's init layer, so they do not leak into the image.

The scratch dir lives under the store root (``build-tmp/<id>``), on the same filesystem as the
snapshots (adoption is a rename). It is flock'ed while the build runs; a later build removes the
dirs of crashed ones (after unmounting anything left mounted there). Blocking; run in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.build.state import Layer
from engine.images import rootfs
from engine.images.content import BlobWriter, Lease
from engine.images.errors import MountError
from engine.images.pack import pack_dir
from engine.images.store import ImageStore

WORK_DIR = "build-tmp"
LOCK_FILE = ".lock"
OVERLAY_XATTR_PREFIX = "trusted.overlay."
KEEP_XATTRS = frozenset({"trusted.overlay.opaque"})
INIT_DIRS = ("proc", "sys", "dev")
INIT_FILES_HOST_NET = ("etc/resolv.conf", "etc/hosts")  # mount points of filesystem.HOST_NETWORK_FILES


class _Sink:
    """The file-like face ``pack_dir`` writes to, over a store ``BlobWriter``."""

    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        self._writer.write(data)
        return len(data)

    def flush(self) -> None:
        pass


def _mounted_under(path: Path) -> list[str]:
    prefix = os.path.realpath(path) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _remove_tree(path: Path) -> None:
    for point in _mounted_under(path):
        with contextlib.suppress(MountError):
            rootfs.unmount(point, lazy=True)
    shutil.rmtree(path, ignore_errors=True)


class Workspace:
    """The scratch dir of one build; ``close`` unmounts and removes everything in it."""

    def __init__(self, store: ImageStore) -> None:
        parent = Path(store.root) / WORK_DIR
        parent.mkdir(parents=True, exist_ok=True)
        _reap_stale(parent)
        self.dir = parent / uuid.uuid4().hex
        self.dir.mkdir()
        self._lock_fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._init: dict[str, Path] = {}

    def new_dir(self, prefix: str) -> Path:
        path = self.dir / f"{prefix}-{uuid.uuid4().hex[:12]}"
        path.mkdir()
        return path

    def init_dir(self, network: str) -> Path:
        """The init lower dir for RUN steps (made once per build and network mode)."""
        key = "host" if network == "host" else "other"
        if key not in self._init:
            path = self.new_dir(f"init-{key}")
            for d in INIT_DIRS:
                (path / d).mkdir(mode=0o755)
            if key == "host":
                for f in INIT_FILES_HOST_NET:
                    (path / f).parent.mkdir(mode=0o755, exist_ok=True)
                    (path / f).touch(mode=0o644)
            self._init[key] = path
        return self._init[key]

    def close(self) -> None:
        _remove_tree(self.dir)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


def _reap_stale(parent: Path) -> None:
    """Remove the scratch dirs of builds that died (their lock is free)."""
    for entry in parent.iterdir():
        lock = entry / LOCK_FILE
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            _remove_tree(entry)  # never got its lock: a crash right at start
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live build
        finally:
            os.close(fd)
        _remove_tree(entry)


def _lowers(store: ImageStore, chain: list[str], *, minimum: int) -> list[Path]:
    lowers = [store.snapshots.fs(c) for c in reversed(chain)]
    return lowers + list(store.snapshots.empty_dirs[: max(0, minimum - len(lowers))])


def _unmount(target: Path) -> None:
    try:
        rootfs.unmount(target)
    except MountError:
        rootfs.unmount(target, lazy=True)


@dataclass
class StepMount:
    """A parent stack mounted with a fresh upper dir; ``close`` unmounts (idempotent)."""

    merged: Path
    upper: Path
    mounted: bool = True

    def close(self) -> None:
        if self.mounted:
            _unmount(self.merged)
            self.mounted = False


def open_step(store: ImageStore, *, ws: Workspace, chain: list[str], init: Path | None = None) -> StepMount:
    """Mount the parent stack ``chain`` (bottom first) with a fresh upper dir (and ``init`` on top)."""
    base = ws.new_dir("step")
    upper, work, merged = base / "upper", base / "work", base / "merged"
    lowers = ([init] if init is not None else []) + _lowers(store, chain, minimum=0 if init else 1)
    rootfs.mount_overlay(lowers, target=merged, upper=upper, work=work)
    return StepMount(merged=merged, upper=upper)


@contextlib.contextmanager
def writable(store: ImageStore, *, ws: Workspace, chain: list[str]) -> Iterator[StepMount]:
    """``open_step`` for the duration of a block."""
    mount = open_step(store, ws=ws, chain=chain)
    try:
        yield mount
    finally:
        mount.close()


@contextlib.contextmanager
def readonly(store: ImageStore, *, ws: Workspace, chain: list[str]) -> Iterator[Path]:
    """The stack ``chain`` mounted read-only (``COPY --from`` reads from it)."""
    target = ws.new_dir("from")
    rootfs.mount_overlay(_lowers(store, chain, minimum=2), target=target)
    try:
        yield target
    finally:
        _unmount(target)


def _strip_overlay_xattrs(root: Path) -> None:
    """Drop overlayfs bookkeeping (origin, impure...) from an upper dir: as a lower it must not carry it."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                continue
            for attr in names:
                if attr.startswith(OVERLAY_XATTR_PREFIX) and attr not in KEEP_XATTRS:
                    with contextlib.suppress(OSError):
                        os.removexattr(path, attr, follow_symlinks=False)


def chain_of(parent: str | None, diff_id: str) -> str:
    """The chain id of a layer ``diff_id`` on top of chain ``parent``."""
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def commit_layer(store: ImageStore, lease: Lease, *, upper: Path, parent_chain: str | None) -> Layer:
    """Pack ``upper`` into a layer blob and adopt it as the snapshot on top of ``parent_chain``."""
    _strip_overlay_xattrs(upper)
    with store.ingest(what="build layer") as writer:
        packed = pack_dir(upper, _Sink(writer))  # type: ignore[arg-type]
        chain = chain_of(parent_chain, packed.diff_id)
        lease.add(packed.digest, chain)  # before it is published: gc must never see it unprotected
        digest = writer.commit()
    store.snapshots.adopt(chain_id=chain, diff_id=packed.diff_id, parent=parent_chain, src=upper, size=packed.diff_size)
    return Layer(digest=digest, size=packed.size, diff_id=packed.diff_id, media_type=packed.media_type)
