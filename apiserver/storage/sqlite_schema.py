"""The on-disk layout of the SQLite backend and how its connections are opened.

kine-style: ``log`` is an append-only history, one row per write, whose integer primary key *is*
the store revision. A delete appends a tombstone row (``deleted = 1``) carrying the last value, so a
DELETED watch event can show what was deleted. ``prev_revision`` points at the key's previous live
row (0 for a create), which gives watch replay its ``prev`` object and compaction its "superseded"
test without a scan. ``current`` maps each live key to its latest row for O(log n) reads and
prefix lists of the present state; ``meta`` holds the revision counter (a tombstone may be
compacted away, so ``MAX(revision)`` is not enough) and the compaction marks.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    expires REAL
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS current (
    key TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    expires REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS current_expires ON current (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES
    ('schema', 1), ('revision', 0), ('compacted', 0), ('compact_done', 0);
"""

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
)


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit BEGIN/COMMIT)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


def read_meta(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT name, value FROM meta").fetchall())


def initialise(conn: sqlite3.Connection) -> dict[str, int]:
    """Create the tables if missing; return the meta values (revision, compaction marks)."""
    conn.executescript(SCHEMA)
    meta = read_meta(conn)
    if meta.get("schema") != SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"unsupported storage schema version {meta.get('schema')}")
    top = conn.execute("SELECT MAX(revision) FROM log").fetchone()[0] or 0
    meta["revision"] = max(meta["revision"], top)
    return meta
