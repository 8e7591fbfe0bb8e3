"""The SQLite backend's single writer thread, with group commit.

All writes go through one thread that owns the only write connection, so SQLite never waits on
its own lock and the event loop never blocks. Callers enqueue a :class:`WriteOp`; the thread takes
whatever has queued up (up to ``MAX_BATCH``) and applies it in ONE transaction, giving each op that
succeeds the next revision. One commit for many writes is what makes concurrent writers cheap.

An op that fails a precondition (KeyExists, RevisionConflict, ...) fails alone and takes no
revision; the checks run before any row is written. If SQLite itself fails, the whole batch is
rolled back and every op in it fails with Unavailable. After each batch the results, the committed
events (in revision order) and the new revision go back to the event loop in one
``call_soon_threadsafe`` callback, so watchers see events in commit order.

Ops are dispatched through a table of handlers, one per kind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from apiserver.storage import codec, interface, sqlite_schema

log = logging.getLogger(__name__)

MAX_BATCH = 512
#: rows a TTL sweep deletes per transaction
SWEEP_LIMIT = 500


@dataclass(slots=True)
class WriteOp:
    """One queued write; only the fields its ``kind`` needs are set."""

    kind: str
    key: str = ""
    value: bytes = b""
    expected: int | None = None
    expires: float | None = None
    #: compaction: revision range (lo, hi] to clean, or the new compacted mark; sweep: "now"
    lo: int = 0
    hi: int = 0
    now: float = 0.0
    future: asyncio.Future | None = field(default=None, repr=False)


#: (op, result, error) for each op of a batch
Outcome = tuple[WriteOp, object, BaseException | None]
CommitCallback = Callable[[list[Outcome], list[interface.Event], int], None]


class _Txn:
    """State of one batch transaction: the cursor, the revision counter and the events so far."""

    def __init__(self, cur: sqlite3.Cursor, revision: int) -> None:
        self.cur = cur
        self.revision = revision
        self.events: list[interface.Event] = []

    def next_revision(self) -> int:
        self.revision += 1
        return self.revision

    def load(self, key: str) -> tuple[int, int, bytes] | None:
        """(revision, create_revision, value) of the live key."""
        return self.cur.execute(
            "SELECT c.revision, c.create_revision, l.value FROM current c "
            "JOIN log l ON l.revision = c.revision WHERE c.key = ?", (key,)).fetchone()


def _create(txn: _Txn, op: WriteOp) -> dict:
    if txn.cur.execute("SELECT 1 FROM current WHERE key = ?", (op.key,)).fetchone():
        raise interface.KeyExists(op.key)
    rev = txn.next_revision()
    txn.cur.execute("INSERT INTO log VALUES (?, ?, 1, 0, ?, 0, ?, ?)",
                    (rev, op.key, rev, op.value, op.expires))
    txn.cur.execute("INSERT INTO current VALUES (?, ?, ?, ?)", (op.key, rev, rev, op.expires))
    obj = codec.decode(op.value, rev)
    txn.events.append(interface.Event("ADDED", op.key, obj, rev, None))
    return obj


def _checked_current(txn: _Txn, op: WriteOp) -> tuple[int, int, bytes]:
    row = txn.load(op.key)
    if row is None:
        raise interface.KeyNotFound(op.key)
    if op.expected is not None and row[0] != op.expected:
        raise interface.RevisionConflict(op.key, expected=op.expected,
                                         current=codec.decode(row[2], row[0]))
    return row


def _update(txn: _Txn, op: WriteOp) -> dict:
    old_rev, create_rev, old_value = _checked_current(txn, op)
    rev = txn.next_revision()
    txn.cur.execute("INSERT INTO log VALUES (?, ?, 0, 0, ?, ?, ?, ?)",
                    (rev, op.key, create_rev, old_rev, op.value, op.expires))
    txn.cur.execute("UPDATE current SET revision = ?, expires = ? WHERE key = ?",
                    (rev, op.expires, op.key))
    obj = codec.decode(op.value, rev)
    txn.events.append(interface.Event("MODIFIED", op.key, obj, rev, codec.decode(old_value, old_rev)))
    return obj


def _delete_row(txn: _Txn, key: str, row: tuple[int, int, bytes]) -> dict:
    old_rev, create_rev, old_value = row
    rev = txn.next_revision()
    txn.cur.execute("INSERT INTO log VALUES (?, ?, 0, 1, ?, ?, ?, NULL)",
                    (rev, key, create_rev, old_rev, old_value))
    txn.cur.execute("DELETE FROM current WHERE key = ?", (key,))
    obj = codec.decode(old_value, rev)
    txn.events.append(interface.Event("DELETED", key, obj, rev, codec.decode(old_value, old_rev)))
    return obj


def _delete(txn: _Txn, op: WriteOp) -> dict:
    return _delete_row(txn, op.key, _checked_current(txn, op))


def _sweep(txn: _Txn, op: WriteOp) -> int:
    """Delete keys whose TTL has passed; returns how many."""
    keys = [k for (k,) in txn.cur.execute(
        "SELECT key FROM current WHERE expires IS NOT NULL AND expires <= ? ORDER BY expires LIMIT ?",
        (op.now, SWEEP_LIMIT)).fetchall()]
    for key in keys:
        row = txn.load(key)
        if row is not None:
            _delete_row(txn, key, row)
    return len(keys)


def _compact_mark(txn: _Txn, op: WriteOp) -> int | None:
    """Raise the compacted mark to ``op.hi``; returns the previous mark, None if already there."""
    old = txn.cur.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()[0]
    if op.hi <= old:
        return None
    txn.cur.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (op.hi,))
    return old


def _compact_chunk(txn: _Txn, op: WriteOp) -> int:
    """Remove rows made obsolete by the rows in (lo, hi]: their predecessors and the tombstones.

    Earlier history was cleaned by earlier compactions, so looking at (lo, hi] only is complete.
    """
    txn.cur.execute(
        "DELETE FROM log WHERE revision IN (SELECT prev_revision FROM log "
        "WHERE revision > ? AND revision <= ? AND prev_revision > 0)", (op.lo, op.hi))
    removed = txn.cur.rowcount
    txn.cur.execute("DELETE FROM log WHERE revision > ? AND revision <= ? AND deleted = 1",
                    (op.lo, op.hi))
    removed += txn.cur.rowcount
    txn.cur.execute("UPDATE meta SET value = ? WHERE name = 'compact_done' AND value < ?",
                    (op.hi, op.hi))
    return removed


_HANDLERS: dict[str, Callable[[_Txn, WriteOp], object]] = {
    "create": _create,
    "update": _update,
    "delete": _delete,
    "sweep": _sweep,
    "compact_mark": _compact_mark,
    "compact_chunk": _compact_chunk,
}

_STOP = object()


class Writer:
    """Owns the write connection and its thread."""

    def __init__(self, path: str, *, loop: asyncio.AbstractEventLoop, on_commit: CommitCallback) -> None:
        self._path = path
        self._loop = loop
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._revision = 0
        self._started: concurrent.futures.Future[dict[str, int]] = concurrent.futures.Future()

    async def start(self) -> dict[str, int]:
        """Open the database (creating the schema) on the writer thread; returns the meta values."""
        self._thread = threading.Thread(target=self._run, name=f"sqlite-writer:{self._path}",
                                        daemon=True)
        self._thread.start()
        return await asyncio.wrap_future(self._started)

    def submit(self, op: WriteOp) -> None:
        self._queue.put(op)

    async def stop(self) -> None:
        """Finish every op queued so far, then close the connection."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def _run(self) -> None:
        try:
            conn = sqlite_schema.connect(self._path)
            meta = sqlite_schema.initialise(conn)
        except Exception as exc:
            self._started.set_exception(interface.Unavailable(f"cannot open {self._path}: {exc}"))
            return
        self._revision = meta["revision"]
        self._started.set_result(meta)
        try:
            self._loop_batches(conn)
        finally:
            conn.close()

    def _loop_batches(self, conn: sqlite3.Connection) -> None:
        cur = conn.cursor()
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[WriteOp] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    op = self._queue.get_nowait()
                except queue.Empty:
                    break
                if op is _STOP:
                    stop = True
                    break
                batch.append(op)  # type: ignore[arg-type]
            self._apply(cur, batch)
            if stop:
                return

    def _apply(self, cur: sqlite3.Cursor, batch: list[WriteOp]) -> None:
        txn = _Txn(cur, self._revision)
        outcomes: list[Outcome] = []
        try:
            cur.execute("BEGIN IMMEDIATE")
            for op in batch:
                try:
                    outcomes.append((op, _HANDLERS[op.kind](txn, op), None))
                except interface.StorageError as exc:
                    outcomes.append((op, None, exc))
            if txn.revision != self._revision:
                cur.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (txn.revision,))
            cur.execute("COMMIT")
        except Exception as exc:  # SQLite failure or a bug: nothing of this batch is kept
            log.error("sqlite write batch of %d failed: %s", len(batch), exc)
            try:
                cur.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            outcomes = [(op, None, interface.Unavailable(f"sqlite write failed: {exc}")) for op in batch]
            txn.events = []
        else:
            self._revision = txn.revision
        try:
            self._loop.call_soon_threadsafe(self._on_commit, outcomes, txn.events, self._revision)
        except RuntimeError:  # the loop is gone; nobody is waiting any more
            log.warning("event loop closed; dropping results of %d writes", len(batch))
