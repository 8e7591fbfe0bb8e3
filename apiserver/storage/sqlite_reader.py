"""Read queries of the SQLite backend, run on a small pool of reader threads.

WAL mode lets readers work beside the writer thread, each on its own connection (one per reader
thread, kept in a thread-local). A read that needs several statements runs them in one read
transaction, so the revision it reports, the compaction mark it checks and the rows it returns all
come from the same snapshot.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from apiserver.storage import codec, interface, sqlite_schema

T = TypeVar("T")

_EVENT_TYPES: dict[tuple[int, int], interface.EventType] = {
    (1, 0): "ADDED", (0, 0): "MODIFIED", (0, 1): "DELETED",
}


class Reader:
    """A pool of threads, each with its own read-only connection."""

    def __init__(self, path: str, *, threads: int = 2) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite_schema.connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    async def run(self, fn: Callable[..., T], /, **kwargs: object) -> T:
        """``fn(conn, **kwargs)`` on a reader thread; SQLite errors become Unavailable."""
        def call() -> T:
            try:
                return fn(self._conn(), **kwargs)
            except sqlite3.Error as exc:
                raise interface.Unavailable(f"sqlite read failed: {exc}") from exc
        try:
            pending = asyncio.get_running_loop().run_in_executor(self._pool, call)
        except RuntimeError as exc:  # the pool is shut down
            raise interface.Unavailable("storage is closed") from exc
        return await pending

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()


class _Snapshot:
    """A read transaction: BEGIN on entry, the meta values read inside it, COMMIT on exit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> dict[str, int]:
        self.conn.execute("BEGIN")
        return sqlite_schema.read_meta(self.conn)

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT")


def _key_range(column: str, *, prefix: str, start_after: str | None) -> tuple[str, list[object]]:
    """SQL condition and parameters selecting keys under ``prefix`` after ``start_after``."""
    conds, params = [f"{column} >= ?"], [prefix]
    if start_after is not None:
        conds.append(f"{column} > ?")
        params.append(start_after)
    end = codec.prefix_end(prefix)
    if end is not None:
        conds.append(f"{column} < ?")
        params.append(end)
    return " AND ".join(conds), params


def get(conn: sqlite3.Connection, *, key: str) -> dict:
    row = conn.execute("SELECT c.revision, l.value FROM current c JOIN log l ON l.revision = c.revision "
                       "WHERE c.key = ?", (key,)).fetchone()
    if row is None:
        raise interface.KeyNotFound(key)
    return codec.decode(row[1], row[0])


def list_page(conn: sqlite3.Connection, *, prefix: str, start_after: str | None, limit: int,
              revision: int | None) -> interface.ListResult:
    fetch = limit + 1 if limit else -1
    with _Snapshot(conn) as meta:
        current = meta["revision"]
        at = current if revision is None else revision
        if at > current:
            raise interface.FutureRevision(revision=at, current=current)
        if at < meta["compacted"]:
            raise interface.Compacted(revision=at, compacted=meta["compacted"])
        if at == current:
            cond, params = _key_range("c.key", prefix=prefix, start_after=start_after)
            rows = conn.execute(
                f"SELECT c.key, c.revision, l.value FROM current c JOIN log l ON l.revision = c.revision "
                f"WHERE {cond} ORDER BY c.key LIMIT ?", [*params, fetch]).fetchall()
        else:
            cond, params = _key_range("key", prefix=prefix, start_after=start_after)
            rows = conn.execute(
                f"SELECT key, rev, value FROM (SELECT key, MAX(revision) AS rev, deleted, value FROM log "
                f"WHERE {cond} AND revision <= ? GROUP BY key) WHERE deleted = 0 ORDER BY key LIMIT ?",
                [*params, at, fetch]).fetchall()
    more = bool(limit) and len(rows) > limit
    if more:
        rows = rows[:limit]
    items = [codec.decode(value, rev) for _key, rev, value in rows]
    return interface.ListResult(items, at, rows[-1][0] if more else None, [row[0] for row in rows])


def replay(conn: sqlite3.Connection, *, prefix: str, after: int,
           limit: int) -> tuple[list[interface.Event], int]:
    """Up to ``limit`` events after revision ``after`` under ``prefix``, and the snapshot's revision.

    Fewer than ``limit`` events means everything up to that revision has been returned.
    """
    cond, params = _key_range("l.key", prefix=prefix, start_after=None)
    with _Snapshot(conn) as meta:
        if after < meta["compacted"]:
            raise interface.Compacted(revision=after, compacted=meta["compacted"])
        rows = conn.execute(
            f"SELECT l.revision, l.key, l.created, l.deleted, l.value, p.revision, p.value FROM log l "
            f"LEFT JOIN log p ON p.revision = l.prev_revision AND l.prev_revision > 0 "
            f"WHERE l.revision > ? AND {cond} ORDER BY l.revision LIMIT ?",
            [after, *params, limit]).fetchall()
    events = [
        interface.Event(_EVENT_TYPES[(created, deleted)], key, codec.decode(value, rev), rev,
                        codec.decode(prev_value, prev_rev) if prev_value is not None else None)
        for rev, key, created, deleted, value, prev_rev, prev_value in rows
    ]
    return events, meta["revision"]
