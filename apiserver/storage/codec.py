"""How objects and keys cross the storage boundary: validation, JSON bytes, key ranges.

Backends store an object as orjson bytes *without* ``metadata.resourceVersion`` (the revision is
the row's own revision, so it can never disagree) and stamp it back on when decoding. Decoding
always yields a fresh dict, which is what lets backends hand results out without copying again.
"""

from __future__ import annotations

import orjson

from apiserver.storage import interface

#: the largest code point; used to close the range of an all-U+10FFFF prefix
_MAX_CHAR = "\U0010ffff"


def check_key(key: object) -> str:
    """Keys are absolute paths naming one object (no trailing slash)."""
    if not isinstance(key, str) or not key.startswith("/") or key.endswith("/") or "\x00" in key:
        raise interface.InvalidObject(f"invalid storage key: {key!r}")
    return key


def check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or "\x00" in prefix:
        raise interface.InvalidObject(f"invalid storage prefix: {prefix!r}")
    return prefix


def check_revision(revision: object, *, what: str = "revision") -> int:
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise interface.InvalidObject(f"invalid {what}: {revision!r}")
    return revision


def check_ttl(ttl: object) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise interface.InvalidObject(f"invalid ttl: {ttl!r}")
    return ttl  # type: ignore[return-value]


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise interface.InvalidObject(f"invalid limit: {limit!r}")
    return limit


def encode(obj: object) -> bytes:
    """JSON bytes of ``obj`` minus its resourceVersion; the input is left untouched."""
    if not isinstance(obj, dict):
        raise interface.InvalidObject(f"object must be a dict, not {type(obj).__name__}")
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise interface.InvalidObject("metadata must be a dict")
    if meta and "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    try:
        return orjson.dumps(obj)
    except TypeError as exc:
        raise interface.InvalidObject(f"object is not JSON-serialisable: {exc}") from None


def decode(value: bytes, revision: int) -> dict:
    """A fresh dict of stored bytes, stamped with ``revision``."""
    obj = orjson.loads(value)
    meta = obj.get("metadata")
    if meta is None:
        obj["metadata"] = {"resourceVersion": str(revision)}
    else:
        meta["resourceVersion"] = str(revision)
    return obj


def revision_of(obj: dict) -> int:
    """The revision a storage stamped on one of its own results."""
    return int(obj["metadata"]["resourceVersion"])


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: unbounded)."""
    stripped = prefix.rstrip(_MAX_CHAR)
    if not stripped:
        return None
    last = ord(stripped[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # skip the surrogate block, never valid in stored keys
        last = 0xE000
    return stripped[:-1] + chr(last)
