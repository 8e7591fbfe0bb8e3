"""SQLite-backend specifics: group commit speed, compaction against a model, log-backed watchers."""

from __future__ import annotations

import asyncio
import random
import sqlite3

import pytest
from conftest import make_sqlite
from storage_testkit import pod, pod_key, poll, rv, take

from apiserver.storage import interface
from apiserver.storage import sqlite as sqlite_storage


def _rows(path: str, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_32_concurrent_writers_all_land(tmp_path):
    async with make_sqlite(tmp_path) as store:
        body = {"containers": [{"name": "c", "image": "busybox", "args": ["x" * 1500]}]}

        async def writer(w: int) -> None:
            for i in range(100):
                await store.create(pod_key("ns", f"w{w}-{i}"), pod("p", **body))

        await asyncio.gather(*(writer(w) for w in range(32)))
        assert len((await store.list("/registry/core/pods/ns/")).items) == 3200


async def test_history_matches_a_model_across_compactions(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_storage, "COMPACT_CHUNK", 7)  # exercise many compaction chunks
    monkeypatch.setattr(sqlite_storage, "REPLAY_CHUNK", 4)  # and a watch replay in many reads
    rng = random.Random(7)
    keys = [pod_key("ns", f"k{i}") for i in range(6)] + ["/registry/core/nodes/n"]
    live: dict[str, dict] = {}
    states: dict[int, dict[str, dict]] = {}  # revision -> the whole store after it
    events: list[tuple[str, str, int]] = []
    async with make_sqlite(tmp_path) as store:
        states[0] = {}
        for step in range(400):
            key = rng.choice(keys)
            if key not in live:
                result, kind = await store.create(key, {"metadata": {"name": key}, "step": step}), "ADDED"
                live[key] = result
            elif rng.random() < 0.3:
                result, kind = await store.delete(key, expected_revision=rv(live.pop(key))), "DELETED"
            else:
                result = await store.update(key, {"metadata": {"name": key}, "step": step},
                                            expected_revision=rv(live[key]))
                kind = "MODIFIED"
                live[key] = result
            states[rv(result)] = dict(live)
            events.append((kind, key, rv(result)))
            if step % 60 == 59:
                await store.compact(rv(result) - rng.randrange(0, 30))
        compacted = rv(result) - 25
        await store.compact(compacted)

        for revision, state in states.items():
            if revision < compacted:
                continue
            listed = await store.list("/registry/", revision=revision)
            assert listed.keys == sorted(state)
            assert listed.items == [state[k] for k in sorted(state)]
        stream = store.watch("/registry/", revision=compacted)
        try:
            replayed = await take(stream, len([e for e in events if e[2] > compacted]))
        finally:
            await stream.aclose()
        assert [(e.type, e.key, e.revision) for e in replayed] == [e for e in events if e[2] > compacted]
        path = str(tmp_path / "state.db")

    # nothing superseded at or before the compaction mark is left, and no tombstone up to it
    rows = await asyncio.to_thread(_rows, path, "SELECT key, revision, deleted FROM log ORDER BY revision")
    assert not [r for r in rows if r[2] and r[1] <= compacted]
    for key in keys:
        old = [r for r in rows if r[0] == key and r[1] <= compacted]
        assert len(old) <= 1


async def test_unfinished_compaction_is_finished_on_reopen(tmp_path):
    path = str(tmp_path / "state.db")
    async with make_sqlite(tmp_path) as store:
        obj = await store.create(pod_key("ns", "a"), pod("a"))
        for i in range(20):
            obj = await store.update(pod_key("ns", "a"), pod("a", v=i), expected_revision=rv(obj))
        await store.compact(rv(obj))
    # pretend the process died right after raising the mark
    def rewind() -> None:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("INSERT INTO log SELECT revision - 10, key, created, deleted, create_revision, "
                         "prev_revision - 10, value, expires FROM log WHERE revision = ?", (rv(obj),))
            conn.execute("UPDATE log SET prev_revision = ? WHERE revision = ?", (rv(obj) - 10, rv(obj)))
            conn.execute("UPDATE meta SET value = 0 WHERE name = 'compact_done'")
        conn.close()
    await asyncio.to_thread(rewind)
    assert len(await asyncio.to_thread(_rows, path, "SELECT revision FROM log")) == 2
    async with make_sqlite(tmp_path) as store:
        async def cleaned() -> bool:
            return len(await asyncio.to_thread(_rows, path, "SELECT revision FROM log")) == 1

        await poll(cleaned)
        assert await store.get(pod_key("ns", "a")) == obj


async def test_a_slow_watcher_catches_up_from_the_log(tmp_path):
    async with make_sqlite(tmp_path, watch_queue_size=2) as store:
        start = await store.current_revision()
        stream = store.watch("/registry/", revision=start)
        try:
            await store.create(pod_key("ns", "p0"), pod("p0"))
            await take(stream, 1)
            made = [await store.create(pod_key("ns", f"p{i}"), pod(f"p{i}")) for i in range(1, 30)]
            assert [e.obj for e in await take(stream, 29)] == made
            later = await store.create(pod_key("ns", "later"), pod("later"))
            assert [e.obj for e in await take(stream, 1)] == [later]
        finally:
            await stream.aclose()


async def test_periodic_compaction_keeps_recent_revisions(tmp_path):
    async with make_sqlite(tmp_path, compact_interval=0.05, compact_keep=5) as store:
        obj = await store.create(pod_key("ns", "a"), pod("a"))
        for i in range(20):
            obj = await store.update(pod_key("ns", "a"), pod("a", v=i), expected_revision=rv(obj))
        async def compacted() -> bool:
            try:
                await store.list("/registry/", revision=1)
            except interface.Compacted:
                return True
            return False

        await poll(compacted)
        assert (await store.list("/registry/", revision=rv(obj) - 5)).items[0]["spec"] == {"v": 14}


async def test_closing_ends_watches_and_refuses_calls(tmp_path):
    async with make_sqlite(tmp_path) as store:
        stream = store.watch("/registry/", revision=0)
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)
    for call in (store.get(pod_key("ns", "a")), store.create(pod_key("ns", "a"), pod("a")),
                 store.current_revision()):
        with pytest.raises(interface.Unavailable):
            await call


async def test_a_file_that_cannot_be_opened_is_unavailable(tmp_path):
    store = sqlite_storage.SqliteStorage(str(tmp_path / "missing-dir" / "state.db"))
    with pytest.raises(interface.Unavailable):
        await store.start()
