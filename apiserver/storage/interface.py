"""The storage contract every API-server backend fulfils (SQLite, etcd, the watch cache in front).

The API server keeps Kubernetes objects as plain dicts under keys
``/registry/<group>/<resource>/[<namespace>/]<name>``. A backend is a small, etcd-shaped key/value
store with one global, monotonic *revision* counter: every successful write gets the next revision,
and an object's ``metadata.resourceVersion`` is the revision of its last modification. Updates and
deletes are compare-and-swap on that revision, lists can be served as of a past revision, and a
watch replays every change after a given revision before following live ones. Old history can be
*compacted*; asking for it then answers :class:`Compacted` (HTTP 410 Gone upstream).

Ownership of dicts (the rule that keeps fan-out cheap):

* The storage sets ``metadata.resourceVersion`` on every dict it returns and ignores (never
  stores) the one on inputs. It does not mutate the dicts it is given.
* Once a dict has been handed to the storage the caller must not mutate it any more.
* Dicts the storage returns (results of get/list/create/update/delete and ``Event.obj``/``prev``)
  are never mutated by the storage later, so callers may keep them. They may be *shared* with other
  callers (the watch cache hands one dict per event to every watcher), so treat them as read-only:
  copy before modifying.

Prefixes are raw key prefixes, as in etcd: list ``/registry/core/pods/a/`` (trailing slash) to get
namespace ``a`` only; ``/registry/core/pods/a`` would also match namespace ``ab``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class StorageError(Exception):
    """Base of every error a storage backend raises on purpose."""


class InvalidObject(StorageError, ValueError):
    """The key or object given cannot be stored (not a dict, not JSON-serialisable, bad key)."""


class KeyNotFound(StorageError):
    """No live object under ``key`` (HTTP 404)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class KeyExists(StorageError):
    """Create of a key that already holds a live object (HTTP 409 AlreadyExists)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class RevisionConflict(StorageError):
    """Compare-and-swap mismatch: the object changed since ``expected`` (HTTP 409 Conflict)."""

    def __init__(self, key: str, *, expected: int, current: dict | None) -> None:
        have = (current or {}).get("metadata", {}).get("resourceVersion")
        super().__init__(f"revision conflict on {key}: expected {expected}, current {have}")
        self.key = key
        self.expected = expected
        self.current = current


class Compacted(StorageError):
    """The requested revision's history is gone (HTTP 410 Gone); the client must re-list."""

    def __init__(self, *, revision: int, compacted: int) -> None:
        super().__init__(f"revision {revision} is compacted (compacted revision {compacted})")
        self.revision = revision
        self.compacted = compacted


class WatchOverflow(Compacted):
    """A watcher fell too far behind and was ended.

    ``revision`` is the last revision the watcher was sent. It is a :class:`Compacted` so that an
    API layer doing nothing special answers 410 (the client re-lists, always correct); a smarter
    layer may simply end the stream so the client re-watches from its last resourceVersion.
    """


class FutureRevision(StorageError):
    """A read asked for a revision the store has not reached yet (HTTP 504 "Too large RV")."""

    def __init__(self, *, revision: int, current: int) -> None:
        super().__init__(f"revision {revision} is newer than the current revision {current}")
        self.revision = revision
        self.current = current


class Unavailable(StorageError):
    """The backend is down, closed or failing (HTTP 503)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change. For DELETED, ``obj`` is the last state stamped with the deletion
    revision and ``prev`` that same state with its own revision; ADDED has no ``prev``."""

    type: EventType
    key: str
    obj: dict
    revision: int
    prev: dict | None = None


@dataclass(slots=True)
class ListResult:
    """A page of a list. ``continue_key`` is the last key returned when more remain, else None;
    pass it as ``start_after`` together with ``revision`` to read the next page consistently.
    Backends also fill ``keys`` (``keys[i]`` is the key of ``items[i]``): the watch cache needs
    them to rebuild itself from a list, and objects alone do not say where they are stored."""

    items: list[dict]
    revision: int
    continue_key: str | None = None
    keys: list[str] = field(default_factory=list)


@runtime_checkable
class Storage(Protocol):
    """What the API server needs from a key/value store. See the module docstring for ownership."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def current_revision(self) -> int: ...

    async def get(self, key: str) -> dict:
        """The live object; KeyNotFound otherwise."""
        ...

    async def list(self, prefix: str, *, limit: int = 0, start_after: str | None = None,
                   revision: int | None = None) -> ListResult:
        """Live objects under ``prefix`` sorted by key; ``limit`` 0 = all; ``revision`` = as of
        that revision (Compacted / FutureRevision) else the current one."""
        ...

    async def create(self, key: str, obj: dict, *, ttl: int | None = None) -> dict:
        """Store a new object (KeyExists); ``ttl`` seconds makes it expire with a DELETED event."""
        ...

    async def update(self, key: str, obj: dict, *, expected_revision: int,
                     ttl: int | None = None) -> dict:
        """Compare-and-swap on the object's revision (RevisionConflict / KeyNotFound). Like an
        etcd put, the write's ``ttl`` replaces any earlier one (None: no expiry)."""
        ...

    async def delete(self, key: str, *, expected_revision: int | None = None) -> dict:
        """Remove; returns the last state stamped with the deletion revision."""
        ...

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[Event]:
        """Every event after ``revision`` under ``prefix`` in order, then live ones until the
        consumer stops or the storage closes (the stream then just ends). Compacted before any
        event if ``revision`` is older than the kept history."""
        ...

    async def compact(self, revision: int) -> None:
        """Drop history up to ``revision``: reads and watches older than it answer Compacted."""
        ...
