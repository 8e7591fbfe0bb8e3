"""The embedded SQLite backend: the default store of a single-server cluster.

Pieces: ``sqlite_schema`` (tables: an append-only ``log`` whose primary key is the revision, the
``current`` live-key index, ``meta``), ``sqlite_writer`` (one thread, group commit) and
``sqlite_reader`` (a few reader threads under WAL). This module ties them into a
:class:`~apiserver.storage.interface.Storage` and adds what lives on the event loop:

* watch — committed events are published in-process through a :class:`fanout.Fanout`. A watcher
  subscribes first, then replays older events from the log, then follows the live queue, skipping
  what the replay already sent. If it falls too far behind, its queue is dropped and it simply goes
  back to replaying from the log, so a SQLite watcher only ever ends with Compacted if the history
  it needs was compacted meanwhile.
* TTL expiry — a task asks the writer to delete expired keys every ``ttl_sweep_interval`` seconds
  (real DELETED events; expiry times are wall-clock, so they survive a restart).
* periodic compaction (optional) — every ``compact_interval`` seconds compact to the revision seen
  one interval ago, keeping at least ``compact_keep`` revisions (Kubernetes compacts every 5 min).

Reopening the same file resumes the revision counter, the data and an unfinished compaction.
The path must be a real file: readers and the writer use separate connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from apiserver.storage import codec, fanout, interface, sqlite_reader, sqlite_writer

log = logging.getLogger(__name__)

#: revisions cleaned per compaction transaction, so writes are not stalled for long
COMPACT_CHUNK = 2_000
#: events a watch replay reads from the log per query
REPLAY_CHUNK = 1_000


class SqliteStorage:
    """Storage in one SQLite file. See the module docstring."""

    def __init__(self, path: str, *, compact_interval: float | None = 300.0, compact_keep: int = 1_000,
                 ttl_sweep_interval: float = 1.0, watch_queue_size: int = 10_000,
                 read_threads: int = 2) -> None:
        self._path = path
        self._compact_interval = compact_interval
        self._compact_keep = compact_keep
        self._ttl_sweep_interval = ttl_sweep_interval
        self._watch_queue_size = watch_queue_size
        self._read_threads = read_threads
        self._writer: sqlite_writer.Writer | None = None
        self._reader: sqlite_reader.Reader | None = None
        self._hub = fanout.Fanout()
        self._tasks: list[asyncio.Task[None]] = []
        self._revision = 0
        self._compacted = 0
        self._open = False

    def __repr__(self) -> str:
        return f"SqliteStorage({self._path!r})"

    # ---- lifetime

    async def start(self) -> None:
        if self._open:
            return
        loop = asyncio.get_running_loop()
        writer = sqlite_writer.Writer(self._path, loop=loop, on_commit=self._on_commit)
        meta = await writer.start()
        self._writer = writer
        self._reader = sqlite_reader.Reader(self._path, threads=self._read_threads)
        self._revision = meta["revision"]
        self._compacted = meta["compacted"]
        self._open = True
        if meta["compact_done"] < self._compacted:
            self._spawn(self._clean(meta["compact_done"], self._compacted), "finish-compaction")
        self._spawn(self._sweep_loop(), "ttl-sweep")
        if self._compact_interval:
            self._spawn(self._compact_loop(self._compact_interval), "auto-compact")
        log.info("sqlite storage %s open at revision %d (compacted %d)",
                 self._path, self._revision, self._compacted)

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._hub.close_all()
        if self._writer is not None:
            await self._writer.stop()
        if self._reader is not None:
            await self._reader.close()
        log.info("sqlite storage %s closed at revision %d", self._path, self._revision)

    def _spawn(self, coro: object, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"{self!r}:{name}"))  # type: ignore[arg-type]

    def _check_open(self) -> None:
        if not self._open:
            raise interface.Unavailable(f"{self!r} is not open")

    # ---- reads

    async def current_revision(self) -> int:
        self._check_open()
        return self._revision

    async def get(self, key: str) -> dict:
        self._check_open()
        assert self._reader is not None
        return await self._reader.run(sqlite_reader.get, key=codec.check_key(key))

    async def list(self, prefix: str, *, limit: int = 0, start_after: str | None = None,
                   revision: int | None = None) -> interface.ListResult:
        self._check_open()
        assert self._reader is not None
        if revision is not None:
            codec.check_revision(revision)
        return await self._reader.run(
            sqlite_reader.list_page, prefix=codec.check_prefix(prefix), limit=codec.check_limit(limit),
            start_after=None if start_after is None else codec.check_prefix(start_after),
            revision=revision)

    # ---- writes

    async def create(self, key: str, obj: dict, *, ttl: int | None = None) -> dict:
        return await self._write(sqlite_writer.WriteOp(
            "create", key=codec.check_key(key), value=codec.encode(obj), expires=_expiry(ttl)))

    async def update(self, key: str, obj: dict, *, expected_revision: int,
                     ttl: int | None = None) -> dict:
        return await self._write(sqlite_writer.WriteOp(
            "update", key=codec.check_key(key), value=codec.encode(obj),
            expected=codec.check_revision(expected_revision, what="expected_revision"),
            expires=_expiry(ttl)))

    async def delete(self, key: str, *, expected_revision: int | None = None) -> dict:
        if expected_revision is not None:
            codec.check_revision(expected_revision, what="expected_revision")
        return await self._write(sqlite_writer.WriteOp(
            "delete", key=codec.check_key(key), expected=expected_revision))

    async def _write(self, op: sqlite_writer.WriteOp) -> Any:
        """Queue ``op`` for the writer thread. A cancelled caller does not undo a queued write."""
        self._check_open()
        assert self._writer is not None
        op.future = asyncio.get_running_loop().create_future()
        self._writer.submit(op)
        return await op.future

    def _on_commit(self, outcomes: list[sqlite_writer.Outcome], events: list[interface.Event],
                   revision: int) -> None:
        """Runs on the loop after each writer batch: publish events, then wake the writers."""
        self._revision = max(self._revision, revision)
        if events:
            self._hub.publish(events)
        for op, result, error in outcomes:
            future = op.future
            if future is None or future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    # ---- compaction and expiry

    async def compact(self, revision: int) -> None:
        self._check_open()
        codec.check_revision(revision)
        if revision > self._revision:
            raise interface.FutureRevision(revision=revision, current=self._revision)
        previous = await self._write(sqlite_writer.WriteOp("compact_mark", hi=revision))
        if previous is None:
            return
        self._compacted = max(self._compacted, revision)
        await self._clean(previous, revision)

    async def _clean(self, lo: int, hi: int) -> None:
        removed = 0
        for start in range(lo, hi, COMPACT_CHUNK):
            removed += await self._write(sqlite_writer.WriteOp(
                "compact_chunk", lo=start, hi=min(start + COMPACT_CHUNK, hi)))
        log.info("compacted %s to revision %d: %d rows removed", self._path, hi, removed)

    async def _compact_loop(self, interval: float) -> None:
        seen = self._revision
        while True:
            await asyncio.sleep(interval)
            target = min(seen, self._revision - self._compact_keep)
            seen = self._revision
            if target > self._compacted:
                try:
                    await self.compact(target)
                except interface.StorageError as exc:
                    log.warning("periodic compaction to %d failed: %s", target, exc)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_sweep_interval)
            try:
                while await self._write(sqlite_writer.WriteOp("sweep", now=time.time())) \
                        >= sqlite_writer.SWEEP_LIMIT:
                    pass
            except interface.StorageError as exc:
                log.warning("TTL sweep failed: %s", exc)

    # ---- watch

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[interface.Event]:
        return self._watch(codec.check_prefix(prefix), codec.check_revision(revision))

    async def _watch(self, prefix: str, revision: int) -> AsyncIterator[interface.Event]:
        self._check_open()
        assert self._reader is not None
        sent = revision
        while True:
            sub = self._hub.subscribe(prefix, maxsize=self._watch_queue_size)
            try:
                while True:  # replay from the log until the snapshot had nothing more
                    events, _ = await self._reader.run(
                        sqlite_reader.replay, prefix=prefix, after=sent, limit=REPLAY_CHUNK)
                    for event in events:
                        yield event
                        sent = event.revision
                    if len(events) < REPLAY_CHUNK:
                        break
                while (batch := await sub.next_batch()) is not None:
                    for event in batch:
                        if event.revision > sent:
                            yield event
                            sent = event.revision
                return  # storage closed
            except fanout.Overflowed:
                log.debug("watcher of %s fell behind at revision %d; replaying from the log", prefix, sent)
            finally:
                self._hub.unsubscribe(sub)


def _expiry(ttl: object) -> float | None:
    seconds = codec.check_ttl(ttl)
    return None if seconds is None else time.time() + seconds
