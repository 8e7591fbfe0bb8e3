"""The etcd backend across an etcd crash (SIGKILL) and restart on the same data dir, at the storage
level: writes fail fast with Unavailable and work again after, watches resume without a gap, and a
watch cache whose feed gave up re-lists and carries on."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from apiserver.storage import interface, watch_cache
from apiserver.storage.etcd import EtcdStorage
from apiserver.storage.etcd_channel import EtcdConfig
from tests.etcd_fixture import SKIP_REASON, EtcdServer, etcd_binary


@pytest.fixture
def etcd_server(tmp_path):
    if etcd_binary() is None:
        pytest.skip(SKIP_REASON)
    server = EtcdServer(tmp_path / "etcd").start()
    yield server
    server.stop()


def _store(server: EtcdServer, **options) -> EtcdStorage:
    return EtcdStorage(EtcdConfig((("127.0.0.1", server.client_port),)), compact_interval=None, **options)


def _key(i: int) -> str:
    return f"/registry/core/configmaps/ns/cm-{i:03}"


async def _create_until_it_works(store: interface.Storage, i: int, *, within: float = 15) -> dict:
    deadline = time.monotonic() + within
    while True:
        try:
            return await store.create(_key(i), {"metadata": {"name": f"cm-{i:03}"}})
        except interface.KeyExists:  # an earlier attempt landed after all
            return await store.get(_key(i))
        except interface.Unavailable:
            assert time.monotonic() < deadline, f"create {i} did not work again within {within}s"
            await asyncio.sleep(0.05)


async def _restart(server: EtcdServer) -> None:
    await asyncio.to_thread(server.kill)
    await asyncio.sleep(0.3)
    await asyncio.to_thread(server.start)


async def test_writes_fail_fast_while_etcd_is_down_and_work_after(etcd_server):
    store = _store(etcd_server, request_timeout=3)
    await store.start()
    try:
        await store.create(_key(0), {"metadata": {"name": "cm-000"}})
        await asyncio.to_thread(etcd_server.kill)
        started = time.monotonic()
        with pytest.raises(interface.Unavailable):
            await store.create(_key(1), {"metadata": {"name": "cm-001"}})
        with pytest.raises(interface.Unavailable):
            await store.current_revision()
        assert time.monotonic() - started < 3.5, "a write during the outage must not hang"
        await asyncio.to_thread(etcd_server.start)
        await _create_until_it_works(store, 1)
        assert [o["metadata"]["name"] for o in (await store.list("/registry/")).items] == ["cm-000", "cm-001"]
    finally:
        await store.close()


async def test_a_watch_resumes_across_an_etcd_restart_without_a_gap(etcd_server):
    store = _store(etcd_server)
    await store.start()
    seen: list[interface.Event] = []
    all_seen = asyncio.Event()
    try:
        stream = store.watch("/registry/", revision=await store.current_revision())

        async def follow() -> None:
            async for event in stream:
                seen.append(event)
                if len(seen) == 20:
                    all_seen.set()

        following = asyncio.create_task(follow())
        revisions = [(await _create_until_it_works(store, i))["metadata"]["resourceVersion"] for i in range(10)]
        await _restart(etcd_server)
        revisions += [(await _create_until_it_works(store, i))["metadata"]["resourceVersion"] for i in range(10, 20)]
        await asyncio.wait_for(all_seen.wait(), 10)
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
    finally:
        await store.close()
    assert [e.key for e in seen] == [_key(i) for i in range(20)]
    assert [str(e.revision) for e in seen] == revisions
    assert all(e.type == "ADDED" for e in seen)


async def test_a_watch_cache_recovers_when_its_feed_gives_up(etcd_server):
    cache = watch_cache.WatchCache(_store(etcd_server, watch_retry_timeout=0.3), relist_backoff=0.1)
    await cache.start()
    try:
        await cache.create(_key(0), {"metadata": {"name": "cm-000"}})
        watcher = cache.watch("/registry/", revision=await cache.current_revision())
        reading = asyncio.create_task(anext(watcher))
        await asyncio.sleep(0.1)
        await asyncio.to_thread(etcd_server.kill)
        # past the feed's retry budget the cache ends its watchers (their clients re-watch, or
        # re-list on 410) and re-lists itself once etcd is back
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reading, 5)
        await asyncio.to_thread(etcd_server.start)
        await _create_until_it_works(cache, 1)
        listed = await cache.list("/registry/")
        assert [o["metadata"]["name"] for o in listed.items] == ["cm-000", "cm-001"]
        assert listed.revision == cache.revision, "served from the re-listed cache"
    finally:
        await cache.close()
