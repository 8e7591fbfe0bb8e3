"""The watch cache: serves get/list/watch from memory in front of any backend, and is a Storage.

One backend watch on the cache prefix (``/registry/``) feeds everything:

    backend.list(prefix) at start ──▶ objects {key: obj} + KeyIndex (sorted keys by prefix)
    backend.watch(prefix, revision) ─▶ apply event ─▶ ring buffer of recent events ─▶ Fanout
                                                                    ├─▶ watcher queue ─▶ watcher
                                                                    └─▶ watcher queue ─▶ watcher

* Reads are consistent: get/list without a revision first wait until the cache has applied
  ``backend.current_revision()``; if it cannot catch up within ``read_timeout`` (feed broken, or
  writes outside the prefix that the feed never sees) the read goes to the backend. A list at
  exactly the cache's revision is served from memory, any other revision by the backend.
* Writes pass through to the backend and return only once the cache has applied their revision
  (read-your-writes), or after ``write_timeout`` with a warning: the write did happen.
* A watch replays matching events after its revision from the ring buffer (``buffer_size``
  events), then follows live ones. Older than the buffer → Compacted (the client re-lists).
* Each watcher has its own bounded queue (``watcher_queue_size``). One that falls that far behind
  is ended with :class:`~apiserver.storage.interface.WatchOverflow` (a Compacted carrying the last
  revision it was sent), so one slow client never holds memory or delays the others.
* If the backend watch ends or fails (e.g. Compacted), the cache ends all its watchers (their
  streams just end; they re-watch and get events or 410), re-lists from the backend and resumes.

Events are shared, never copied: every watcher gets the same :class:`Event`, and
:meth:`WatchCache.encoded` memoises the JSON of an event's object, so the API layer serialises
each event once however many watchers it has. Keys outside the prefix go straight to the backend.
The cache owns its backend: start() starts it and close() closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator

import orjson

from apiserver.storage import codec, fanout, interface, keyindex

log = logging.getLogger(__name__)


class WatchCache:
    """An in-memory Storage in front of ``backend``. See the module docstring."""

    def __init__(self, backend: interface.Storage, *, prefix: str = "/registry/",
                 buffer_size: int = 10_000, watcher_queue_size: int = 1_000, read_timeout: float = 3.0,
                 write_timeout: float = 10.0, relist_backoff: float = 0.5) -> None:
        self._backend = backend
        self._prefix = prefix
        self._watcher_queue_size = watcher_queue_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._relist_backoff = relist_backoff
        self._objects: dict[str, dict] = {}
        self._index = keyindex.KeyIndex()
        self._revision = 0
        self._buffer: deque[interface.Event] = deque(maxlen=buffer_size)
        #: events after this revision are all in the buffer
        self._buffer_start = 0
        self._encoded: dict[int, tuple[interface.Event, bytes]] = {}
        self._hub = fanout.Fanout()
        #: applied but not yet published (published once per loop iteration, see _flush)
        self._pending: list[interface.Event] = []
        self._flush_scheduled = False
        #: the newest revision watchers have been sent (or could have been, for their prefix)
        self._published = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_seq = itertools.count()
        self._feed_task: asyncio.Task[None] | None = None
        self._open = False

    @property
    def backend(self) -> interface.Storage:
        return self._backend

    @property
    def revision(self) -> int:
        """The last revision the cache has applied."""
        return self._revision

    # ---- lifetime

    async def start(self) -> None:
        if self._open:
            return
        await self._backend.start()
        try:
            await self._relist()
        except BaseException:
            await self._backend.close()
            raise
        self._open = True
        self._feed_task = asyncio.create_task(self._feed(), name=f"watch-cache-feed:{self._prefix}")

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
            self._feed_task = None
        self._hub.close_all()
        for _, _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(interface.Unavailable("watch cache closed"))
        self._waiters.clear()
        await self._backend.close()

    def _check_open(self) -> None:
        if not self._open:
            raise interface.Unavailable("watch cache is not started")

    # ---- the feed

    async def _relist(self) -> None:
        result = await self._backend.list(self._prefix)
        self._objects = dict(zip(result.keys, result.items, strict=True))
        self._index = keyindex.KeyIndex(result.keys)
        self._revision = result.revision
        self._buffer.clear()
        self._encoded.clear()
        self._pending.clear()
        self._published = result.revision
        self._buffer_start = result.revision
        self._wake_waiters()
        log.info("watch cache listed %d objects under %s at revision %d",
                 len(self._objects), self._prefix, result.revision)

    async def _feed(self) -> None:
        while True:
            try:
                async for event in self._backend.watch(self._prefix, revision=self._revision):
                    self._apply(event)
                log.warning("watch cache: backend watch ended at revision %d", self._revision)
            except interface.StorageError as exc:
                log.warning("watch cache: backend watch failed at revision %d: %s", self._revision, exc)
            except Exception:
                log.exception("watch cache: backend watch crashed at revision %d", self._revision)
            if not self._open or _being_cancelled():
                return
            self._flush()
            self._hub.close_all()
            await self._relist_until_done()

    async def _relist_until_done(self) -> None:
        while True:
            await asyncio.sleep(self._relist_backoff)
            try:
                await self._relist()
                return
            except interface.StorageError as exc:
                log.warning("watch cache: re-list failed, retrying: %s", exc)

    def _apply(self, event: interface.Event) -> None:
        if event.revision <= self._revision:
            return
        key = event.key
        if event.type == "DELETED":
            if self._objects.pop(key, None) is not None:
                self._index.discard(key)
        else:
            if key not in self._objects:
                self._index.add(key)
            self._objects[key] = event.obj
        self._revision = event.revision
        if len(self._buffer) == self._buffer.maxlen:
            self._evict()
        self._buffer.append(event)
        self._pending.append(event)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        self._wake_waiters()

    def _evict(self) -> None:
        old = self._buffer.popleft()
        self._buffer_start = max(self._buffer_start, old.revision)
        self._encoded.pop(old.revision, None)

    def _flush(self) -> None:
        """Publish what was applied during this loop iteration in one go (one wake-up per watcher)."""
        self._flush_scheduled = False
        if self._pending:
            pending, self._pending = self._pending, []
            self._published = pending[-1].revision
            self._hub.publish(pending)

    def _wake_waiters(self) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._revision:
            waiter = heapq.heappop(waiters)[2]
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_revision(self, rev: int) -> None:
        """Return once the cache has applied revision ``rev``."""
        if self._revision >= rev:
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (rev, next(self._waiter_seq), waiter))
        await waiter

    async def _caught_up(self) -> bool:
        """Wait for the backend's current revision; False if that takes longer than read_timeout."""
        target = await self._backend.current_revision()
        if self._revision >= target:
            return True
        try:
            await asyncio.wait_for(self.wait_for_revision(target), self._read_timeout)
        except TimeoutError:
            log.warning("watch cache at %d did not reach revision %d in %.1fs; reading the backend",
                        self._revision, target, self._read_timeout)
            return False
        return True

    def _covers(self, prefix: str) -> bool:
        return prefix.startswith(self._prefix)

    # ---- reads

    async def current_revision(self) -> int:
        return await self._backend.current_revision()

    async def get(self, key: str) -> dict:
        codec.check_key(key)
        if not self._covers(key):
            return await self._backend.get(key)
        self._check_open()
        if not await self._caught_up():
            return await self._backend.get(key)
        obj = self._objects.get(key)
        if obj is None:
            raise interface.KeyNotFound(key)
        return obj

    def peek(self, key: str) -> dict | None:
        """The cached object as it is now, without waiting to catch up (may be a little stale).

        For checks that tolerate staleness and confirm a miss with :meth:`get`, as Kubernetes'
        admission reads namespaces from an informer: it saves the backend a round trip per write.
        """
        return self._objects.get(key) if self._open else None

    async def list(self, prefix: str, *, limit: int = 0, start_after: str | None = None,
                   revision: int | None = None) -> interface.ListResult:
        codec.check_prefix(prefix)
        codec.check_limit(limit)
        if start_after is not None:
            codec.check_prefix(start_after)
        if revision is not None:
            codec.check_revision(revision)
        self._check_open()
        from_cache = self._covers(prefix) and (
            revision == self._revision if revision is not None else await self._caught_up())
        if not from_cache:
            return await self._backend.list(prefix, limit=limit, start_after=start_after, revision=revision)
        keys = self._index.range(prefix, start_after=start_after, limit=limit + 1 if limit else 0)
        more = bool(limit) and len(keys) > limit
        if more:
            keys = keys[:limit]
        objects = self._objects
        return interface.ListResult([objects[k] for k in keys], self._revision,
                                    keys[-1] if more else None, keys)

    # ---- writes

    async def create(self, key: str, obj: dict, *, ttl: int | None = None) -> dict:
        return await self._settled(key, await self._backend.create(key, obj, ttl=ttl))

    async def update(self, key: str, obj: dict, *, expected_revision: int,
                     ttl: int | None = None) -> dict:
        return await self._settled(key, await self._backend.update(
            key, obj, expected_revision=expected_revision, ttl=ttl))

    async def delete(self, key: str, *, expected_revision: int | None = None) -> dict:
        return await self._settled(key, await self._backend.delete(key, expected_revision=expected_revision))

    async def _settled(self, key: str, result: dict) -> dict:
        """Hold a write's result until the cache has applied it (read-your-writes)."""
        if self._open and self._covers(key):
            rev = codec.revision_of(result)
            try:
                await asyncio.wait_for(self.wait_for_revision(rev), self._write_timeout)
            except TimeoutError:
                log.warning("watch cache did not apply revision %d of %s within %.1fs",
                            rev, key, self._write_timeout)
        return result

    async def compact(self, revision: int) -> None:
        """Compact the backend and forget buffered events up to ``revision`` too."""
        await self._backend.compact(revision)
        while self._buffer and self._buffer[0].revision <= revision:
            self._evict()
        self._buffer_start = max(self._buffer_start, revision)

    # ---- watch

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[interface.Event]:
        codec.check_prefix(prefix)
        codec.check_revision(revision)
        if not self._covers(prefix):
            return self._backend.watch(prefix, revision=revision)
        return self._watch(prefix, revision)

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[interface.Event]:
        self._check_open()
        if revision < self._buffer_start:
            raise interface.Compacted(revision=revision, compacted=self._buffer_start)
        backlog = self._backlog(prefix, revision)
        sub = self._hub.subscribe(prefix, maxsize=self._watcher_queue_size)
        sent = revision
        try:
            for event in backlog:
                yield event
                sent = event.revision
            while (batch := await sub.next_batch()) is not None:
                for event in batch:
                    yield event
                    sent = event.revision
        except fanout.Overflowed:
            log.info("watcher of %s ended: more than %d events behind at revision %d",
                     prefix, self._watcher_queue_size, sent)
            raise interface.WatchOverflow(revision=sent, compacted=sent) from None
        finally:
            self._hub.unsubscribe(sub)

    def _backlog(self, prefix: str, revision: int) -> list[interface.Event]:
        """Published buffered events after ``revision`` under ``prefix``, oldest first.

        Pending (not yet published) events are left out: the next flush delivers them to the new
        subscriber, so no event is sent twice.
        """
        found = []
        for event in reversed(self._buffer):
            if event.revision <= revision:
                break
            if event.revision <= self._published and event.key.startswith(prefix):
                found.append(event)
        found.reverse()
        return found

    def encoded(self, event: interface.Event) -> bytes:
        """JSON bytes of ``event.obj``, computed once per buffered event for all watchers."""
        entry = self._encoded.get(event.revision)
        if entry is not None and entry[0] is event:
            return entry[1]
        data = orjson.dumps(event.obj)
        if self._buffer and event.revision >= self._buffer[0].revision:
            self._encoded[event.revision] = (event, data)
        return data


def _being_cancelled() -> bool:
    """True if the current task was asked to stop (a cancelled feed must not swallow that)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
