"""Snapshots: each image layer unpacked once into a directory shared by every image that has it.

A snapshot is keyed by the layer's chain id (as containerd does: the first layer's diff_id, then
``sha256(parent_chain + " " + diff_id)``), holds only that layer's own content in overlay form
(``<root>/<hex>/fs``) plus ``meta.json`` (diff_id, parent, uncompressed size), and so can be stacked
as overlayfs lower dirs without copying. A snapshot appears by renaming a fully written temp dir, so
a crash mid-unpack leaves only a ``.tmp-*`` dir that garbage collection removes; two threads asking
for the same snapshot unpack it once. All calls are blocking (the daemon runs them in a thread).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.images.digest import check_digest, hex_of
from engine.images.errors import DigestMismatch, StoreError
from engine.images.unpack import unpack_layer

META = "meta.json"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """Chain ids of a layer stack, bottom first (OCI image spec, "ChainID")."""
    out: list[str] = []
    for diff_id in diff_ids:
        check_digest(diff_id)
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


class SnapshotStore:
    """The directory of unpacked layers under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._active: set[str] = set()
        self._empties = (self.root / ".empty", self.root / ".empty2")
        for d in self._empties:
            d.mkdir(exist_ok=True)

    def path(self, chain_id: str) -> Path:
        return self.root / hex_of(chain_id)

    def fs(self, chain_id: str) -> Path:
        """The directory to use as this layer's overlay lower dir."""
        return self.path(chain_id) / "fs"

    @property
    def empty_dirs(self) -> tuple[Path, Path]:
        """Two always-empty dirs: lower dirs padding an overlay of an image with fewer than two layers
        (``FROM scratch``; a read-only overlay needs two distinct lowers)."""
        return self._empties

    def exists(self, chain_id: str) -> bool:
        return (self.path(chain_id) / META).is_file()

    def meta(self, chain_id: str) -> dict[str, Any]:
        try:
            return json.loads((self.path(chain_id) / META).read_text())
        except FileNotFoundError:
            raise StoreError(f"snapshot {chain_id} is missing") from None

    def list(self) -> list[str]:
        return sorted(
            "sha256:" + p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / META).is_file()
        )

    def _lock_for(self, chain_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(chain_id, threading.Lock())

    def _tempdir(self) -> Path:
        name = f"{TMP_PREFIX}{uuid.uuid4().hex}"
        with self._guard:
            self._active.add(name)
        tmp = self.root / name
        (tmp / "fs").mkdir(parents=True)
        return tmp

    def _release(self, tmp: Path) -> None:
        shutil.rmtree(tmp, ignore_errors=True)
        with self._guard:
            self._active.discard(tmp.name)

    def _publish(self, tmp: Path, chain_id: str, meta: dict[str, Any]) -> None:
        (tmp / META).write_text(json.dumps(meta))
        try:
            os.rename(tmp, self.path(chain_id))
        except OSError:
            if not self.exists(chain_id):
                raise
        finally:
            self._release(tmp)

    def unpack(
        self, *, chain_id: str, diff_id: str, parent: str | None, blob: str | os.PathLike[str]
    ) -> dict[str, Any]:
        """Make the snapshot ``chain_id`` from the layer blob file, checking its diff_id; idempotent."""
        with self._lock_for(chain_id):
            if self.exists(chain_id):
                return self.meta(chain_id)
            tmp = self._tempdir()
            try:
                with open(blob, "rb") as raw:
                    result = unpack_layer(raw, tmp / "fs")
                if result.diff_id != diff_id:
                    raise DigestMismatch(f"layer {diff_id}: uncompressed content has digest {result.diff_id}")
                meta = {"chain_id": chain_id, "diff_id": diff_id, "parent": parent, "size": result.size}
                self._publish(tmp, chain_id, meta)
                return meta
            except BaseException:
                self._release(tmp)
                raise

    def adopt(
        self, *, chain_id: str, diff_id: str, parent: str | None, src: str | os.PathLike[str], size: int
    ) -> dict[str, Any]:
        """Move an already-unpacked overlay-form tree (a build step's upper dir) in as a snapshot.

        ``src`` must be on the same filesystem as the store; it is consumed. If the snapshot exists
        already, ``src`` is left alone and the existing one is used.
        """
        with self._lock_for(chain_id):
            if self.exists(chain_id):
                return self.meta(chain_id)
            tmp = self._tempdir()
            try:
                os.rmdir(tmp / "fs")
                os.rename(src, tmp / "fs")
                meta = {"chain_id": chain_id, "diff_id": diff_id, "parent": parent, "size": size}
                self._publish(tmp, chain_id, meta)
                return meta
            except BaseException:
                self._release(tmp)
                raise

    def detach(self, chain_id: str) -> bool:
        """Rename a snapshot out of sight (cheap, atomic); ``purge`` deletes it later. False if absent."""
        with self._lock_for(chain_id):
            trash = self.root / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
            try:
                os.rename(self.path(chain_id), trash)
            except FileNotFoundError:
                return False
            return True

    def remove(self, chain_id: str) -> bool:
        removed = self.detach(chain_id)
        self.purge()
        return removed

    def purge(self) -> None:
        """Delete detached snapshots and the temp dirs of crashed unpacks (not those in progress)."""
        with self._guard:
            active = set(self._active)
        for p in self.root.iterdir():
            if p.name.startswith(TRASH_PREFIX) or (p.name.startswith(TMP_PREFIX) and p.name not in active):
                shutil.rmtree(p, ignore_errors=True)
            elif not p.name.startswith(".") and not (p / META).exists():
                with contextlib.suppress(OSError):
                    shutil.rmtree(p)  # a stray dir without meta: not a snapshot
