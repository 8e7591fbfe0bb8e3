"""The build cache: step results keyed by (parent state, instruction after substitution, inputs).

One small JSON file per step under ``<store root>/build-cache/``; the key is a sha256 of the parent
state id, the step's text after variable substitution, and the digest of its inputs (COPY/ADD file
contents, or the source stage for ``COPY --from``). A hit is used only if its layer is still in the
store (blob present; the snapshot is re-unpacked from the blob if it went), so an entry outliving a
garbage collection is just a miss and is dropped. ``prune`` does that sweep for the whole cache
(the daemon can run it after the store's gc); ``referenced`` lists what the cache points at.
Blocking: file I/O; call from a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from pathlib import Path

import orjson

from engine.build.state import StepResult
from engine.images.content import Lease
from engine.images.errors import ImageError
from engine.images.store import ImageStore

CACHE_DIR = "build-cache"
STALE_TMP_SECONDS = 3600  # a half-written entry older than this belongs to a crashed build


def step_key(*, parent: str, text: str, inputs: str = "") -> str:
    """The cache key of a step applied to state ``parent``."""
    return hashlib.sha256(f"{parent}\n{text}\n{inputs}".encode()).hexdigest()


class BuildCache:
    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.dir = Path(store.root) / CACHE_DIR
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def get(self, key: str, *, parent_chain: str | None, lease: Lease | None = None) -> StepResult | None:
        """The cached result of step ``key`` if its layer is still usable, else None.

        ``lease`` gets the layer's blob and chain id before they are checked, so a concurrent
        garbage collection cannot take them between the check and their use.
        """
        path = self._path(key)
        try:
            result = StepResult.from_json(orjson.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            path.unlink(missing_ok=True)  # damaged entry: a miss
            return None
        if result.layer is not None and lease is not None:
            lease.add(result.layer.digest, _chain_of(parent_chain, result.layer.diff_id))
        if result.layer is not None and not self._layer_usable(result, parent_chain):
            path.unlink(missing_ok=True)
            return None
        return result

    def _layer_usable(self, result: StepResult, parent_chain: str | None) -> bool:
        layer = result.layer
        assert layer is not None
        if not self.store.has_blob(layer.digest):
            return False
        chain = _chain_of(parent_chain, layer.diff_id)
        if self.store.snapshots.exists(chain):
            return True
        try:
            self.store.snapshots.unpack(
                chain_id=chain, diff_id=layer.diff_id, parent=parent_chain, blob=self.store.blob_path(layer.digest)
            )
        except ImageError:
            return False
        return True

    def put(self, key: str, result: StepResult) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{key}.{uuid.uuid4().hex}")
        tmp.write_bytes(orjson.dumps(result.to_json()))
        os.replace(tmp, path)

    def entries(self) -> list[tuple[Path, StepResult | None]]:
        out: list[tuple[Path, StepResult | None]] = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                out.append((path, StepResult.from_json(orjson.loads(path.read_bytes()))))
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                out.append((path, None))
        return out

    def referenced(self) -> set[str]:
        """Layer blob digests the cache points at."""
        return {r.layer.digest for _, r in self.entries() if r is not None and r.layer is not None}

    def prune(self, *, everything: bool = False) -> int:
        """Drop entries whose layer blob is gone (all entries with ``everything``); returns how many."""
        dropped = 0
        for path, result in self.entries():
            stale = result is None or (result.layer is not None and not self.store.has_blob(result.layer.digest))
            if everything or stale:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    dropped += 1
        cutoff = time.time() - STALE_TMP_SECONDS
        for tmp in self.dir.glob(".*"):
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
        return dropped


def _chain_of(parent: str | None, diff_id: str) -> str:
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
