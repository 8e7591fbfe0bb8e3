"""Sorted access to the watch cache's keys by prefix, in a few milliseconds for 10,000 keys.

Keys are kept in sorted lists, one *bucket* per resource (the key up to its fourth slash,
``/registry/core/pods/``), so inserting a pod shifts only the pod list, and a list of one
namespace is two bisections plus a slice. A prefix shorter than a bucket (``/registry/``) merges
the sorted buckets it covers. Keys with fewer than four slashes share the bucket ``""``.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable

from apiserver.storage import codec

_BUCKET_DEPTH = 4


def bucket_of(key: str) -> str:
    """The resource part of a key: up to and including its fourth slash ('' if it has fewer)."""
    end = -1
    for _ in range(_BUCKET_DEPTH):
        end = key.find("/", end + 1)
        if end < 0:
            return ""
    return key[: end + 1]


class KeyIndex:
    """A set of keys answering "sorted keys under this prefix, after that key"."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._buckets: dict[str, list[str]] = {}
        self._count = 0
        for key in set(keys):
            self._buckets.setdefault(bucket_of(key), []).append(key)
            self._count += 1
        for keys_ in self._buckets.values():
            keys_.sort()

    def __len__(self) -> int:
        return self._count

    def add(self, key: str) -> None:
        """Insert ``key`` (no-op if present)."""
        keys = self._buckets.setdefault(bucket_of(key), [])
        at = bisect.bisect_left(keys, key)
        if at == len(keys) or keys[at] != key:
            keys.insert(at, key)
            self._count += 1

    def discard(self, key: str) -> None:
        bucket = bucket_of(key)
        keys = self._buckets.get(bucket)
        if not keys:
            return
        at = bisect.bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            del keys[at]
            self._count -= 1
            if not keys:
                del self._buckets[bucket]

    def range(self, prefix: str, *, start_after: str | None = None, limit: int = 0) -> list[str]:
        """Keys starting with ``prefix``, greater than ``start_after``, sorted, at most ``limit``."""
        slices = [self._slice(keys, prefix=prefix, start_after=start_after, limit=limit)
                  for bucket, keys in self._buckets.items()
                  if bucket.startswith(prefix) or prefix.startswith(bucket)]
        slices = [s for s in slices if s]
        if not slices:
            return []
        if len(slices) == 1:
            keys = slices[0]
            return keys[:limit] if limit else keys
        merged = heapq.merge(*slices)
        return list(itertools.islice(merged, limit) if limit else merged)

    @staticmethod
    def _slice(keys: list[str], *, prefix: str, start_after: str | None, limit: int) -> list[str]:
        if start_after is not None and start_after >= prefix:
            lo = bisect.bisect_right(keys, start_after)
        else:
            lo = bisect.bisect_left(keys, prefix)
        end = codec.prefix_end(prefix)
        hi = len(keys) if end is None else bisect.bisect_left(keys, end, lo)
        if limit:
            hi = min(hi, lo + limit)
        return keys[lo:hi]
