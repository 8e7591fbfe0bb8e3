"""Watch-cache behaviour beyond the contract: memory serving, ring buffer, slow watchers, resets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from conftest import SQLITE_TEST_OPTIONS
from storage_testkit import pod, pod_key, rv, take

from apiserver.storage import interface, sqlite, watch_cache


class BreakableBackend(sqlite.SqliteStorage):
    """SQLite whose watches can be made to fail with Compacted, like a backend compacting past
    the cache's feed; counts the reads that reach it."""

    def __init__(self, path: str) -> None:
        super().__init__(path, **SQLITE_TEST_OPTIONS)
        self.broken = asyncio.Event()
        self.listed = asyncio.Event()
        self.lists = 0
        self.gets = 0

    async def list(self, prefix, **kwargs):
        self.lists += 1
        result = await super().list(prefix, **kwargs)
        self.listed.set()
        return result

    async def get(self, key):
        self.gets += 1
        return await super().get(key)

    def watch(self, prefix, *, revision):
        return self._breakable(super().watch(prefix, revision=revision), revision)

    async def _breakable(self, stream: AsyncIterator[interface.Event], revision: int):
        breaker = asyncio.ensure_future(self.broken.wait())
        step: asyncio.Future | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(stream))
                await asyncio.wait({step, breaker}, return_when=asyncio.FIRST_COMPLETED)
                if step.done():
                    yield step.result()
                    continue
                self.broken.clear()
                raise interface.Compacted(revision=revision, compacted=await self.current_revision())
        finally:
            breaker.cancel()
            if step is not None and not step.done():
                step.cancel()
                with contextlib.suppress(BaseException):
                    await step
            await stream.aclose()


@contextlib.asynccontextmanager
async def cached(tmp_path, **options):
    cache = watch_cache.WatchCache(BreakableBackend(str(tmp_path / "state.db")), relist_backoff=0.01,
                                   **options)
    await cache.start()
    try:
        yield cache
    finally:
        await cache.close()


async def test_writes_return_only_once_the_cache_has_them(tmp_path):
    async with cached(tmp_path) as cache:
        created = await cache.create(pod_key("ns", "a"), pod("a"))
        assert cache.revision >= rv(created)
        lists_before = cache.backend.lists
        assert (await cache.list("/registry/core/pods/ns/")).items == [created]
        deleted = await cache.delete(pod_key("ns", "a"))
        assert cache.revision >= rv(deleted)
        assert (await cache.list("/registry/core/pods/")).items == []
        assert cache.backend.lists == lists_before, "lists were served from memory"


async def test_reads_are_consistent_with_writes_made_behind_the_cache(tmp_path):
    async with cached(tmp_path) as cache:
        direct = await cache.backend.create(pod_key("ns", "a"), pod("a"))
        assert await cache.get(pod_key("ns", "a")) == direct
        assert cache.backend.gets == 0
        await cache.wait_for_revision(rv(direct))


async def test_list_at_an_older_revision_goes_to_the_backend(tmp_path):
    async with cached(tmp_path) as cache:
        a = await cache.create(pod_key("ns", "a"), pod("a"))
        b = await cache.create(pod_key("ns", "b"), pod("b"))
        lists = cache.backend.lists
        assert (await cache.list("/registry/", revision=rv(b))).items == [a, b]
        assert cache.backend.lists == lists
        assert (await cache.list("/registry/", revision=rv(a))).items == [a]
        assert cache.backend.lists == lists + 1


async def test_watch_resumes_from_the_ring_buffer_even_after_backend_compaction(tmp_path):
    async with cached(tmp_path, buffer_size=5) as cache:
        results = [await cache.create(pod_key("ns", f"p{i}"), pod(f"p{i}")) for i in range(8)]
        await cache.backend.compact(await cache.current_revision())  # the backend has no history now
        stream = cache.watch("/registry/core/pods/", revision=rv(results[3]))
        try:
            events = await take(stream, 4)
        finally:
            await stream.aclose()
        assert [e.obj for e in events] == results[4:]
        with pytest.raises(interface.Compacted) as err:
            await anext(cache.watch("/registry/core/pods/", revision=rv(results[1])))
        assert err.value.compacted == rv(results[2])


async def test_a_slow_watcher_is_ended_and_others_are_not_held_up(tmp_path):
    async with cached(tmp_path, watcher_queue_size=4) as cache:
        start = await cache.current_revision()
        slow = cache.watch("/registry/core/pods/", revision=start)
        fast = cache.watch("/registry/core/pods/", revision=start)
        first = await cache.create(pod_key("ns", "p0"), pod("p0"))
        [event] = await take(slow, 1)
        assert event.obj == first
        collected = asyncio.create_task(take(fast, 10))
        for i in range(1, 10):
            await cache.create(pod_key("ns", f"p{i}"), pod(f"p{i}"))
            await asyncio.sleep(0)
        assert len(await collected) == 10
        with pytest.raises(interface.WatchOverflow) as err:
            await anext(slow)
        assert err.value.revision == rv(first)
        resumed = cache.watch("/registry/core/pods/", revision=err.value.revision)
        try:
            assert len(await take(resumed, 9)) == 9
        finally:
            await resumed.aclose()
            await fast.aclose()


async def test_a_watcher_starting_between_apply_and_publish_gets_the_event_once(tmp_path):
    # events are applied at once but published once per loop iteration; drive that window directly
    async with cached(tmp_path) as cache:
        start = cache.revision
        first, second = (
            interface.Event("ADDED", pod_key("ns", f"p{i}"), {"metadata": {"resourceVersion": str(start + i)}},
                            start + i)
            for i in (1, 2))
        cache._apply(first)
        stream = cache.watch("/registry/core/pods/", revision=start)
        try:
            got = await take(stream, 1)
            cache._apply(second)
            got += await take(stream, 1)
        finally:
            await stream.aclose()
        assert got == [first, second]


async def test_a_failed_backend_watch_ends_watchers_and_the_cache_relists(tmp_path):
    async with cached(tmp_path) as cache:
        a = await cache.create(pod_key("ns", "a"), pod("a"))
        watcher = cache.watch("/registry/core/pods/", revision=rv(a))
        pending = asyncio.ensure_future(anext(watcher))
        await asyncio.sleep(0.05)
        cache.backend.listed.clear()
        cache.backend.broken.set()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, 5)
        await asyncio.wait_for(cache.backend.listed.wait(), 5)
        b = await cache.create(pod_key("ns", "b"), pod("b"))
        assert (await cache.list("/registry/core/pods/")).items == [a, b]
        again = cache.watch("/registry/core/pods/", revision=await cache.current_revision())
        try:
            c = await cache.create(pod_key("ns", "c"), pod("c"))
            [event] = await take(again, 1)
        finally:
            await again.aclose()
        assert event.obj == c


async def test_encoded_is_computed_once_per_event(tmp_path):
    async with cached(tmp_path) as cache:
        stream = cache.watch("/registry/", revision=await cache.current_revision())
        other = cache.watch("/registry/", revision=await cache.current_revision())
        try:
            await cache.create(pod_key("ns", "a"), pod("a", image="x"))
            [mine], [theirs] = await take(stream, 1), await take(other, 1)
        finally:
            await stream.aclose()
            await other.aclose()
        assert mine is theirs, "one Event object is shared by all watchers"
        data = cache.encoded(mine)
        assert orjson.loads(data) == mine.obj
        assert cache.encoded(theirs) is data


async def test_keys_outside_the_prefix_pass_through(tmp_path):
    async with cached(tmp_path) as cache:
        made = await cache.create("/other/thing", {"metadata": {"name": "thing"}})
        assert await cache.get("/other/thing") == made
        assert cache.backend.gets == 1
        assert (await cache.list("/other/")).items == [made]


async def test_closed_cache_refuses_reads(tmp_path):
    async with cached(tmp_path) as cache:
        pass
    with pytest.raises(interface.Unavailable):
        await cache.get(pod_key("ns", "a"))


async def test_list_of_ten_thousand_objects(tmp_path):
    async with cached(tmp_path) as cache:
        for chunk in range(10):
            await asyncio.gather(*(cache.backend.create(pod_key("big", f"p{chunk}-{i:04}"), pod("p"))
                                   for i in range(1000)))
        await cache.create(pod_key("small", "a"), pod("a"))
        await cache.list("/registry/core/pods/big/")  # warm up
        result = await cache.list("/registry/core/pods/big/")
        assert len(result.items) == 10_000


async def test_a_hundred_watchers_get_every_event(tmp_path):
    async with cached(tmp_path) as cache:
        keys = [pod_key("ns", f"p{i}") for i in range(20)]
        objs = {k: await cache.create(k, pod("p")) for k in keys}
        sent: dict[int, float] = {}
        latencies: list[float] = []
        rounds = 10

        async def watcher(stream):
            async for event in stream:
                latencies.append(time.perf_counter() - sent[event.revision])
                if event.revision == last_revision:
                    return

        start = await cache.current_revision()
        last_revision = start + rounds * len(keys)
        streams = [cache.watch("/registry/core/pods/", revision=start) for _ in range(100)]
        tasks = [asyncio.create_task(watcher(s)) for s in streams]
        await asyncio.sleep(0.05)
        for _ in range(rounds):
            for key in keys:  # stamp the time before the revision is known: write order is revision order
                sent[await cache.current_revision() + 1] = time.perf_counter()
                objs[key] = await cache.update(key, pod("p"), expected_revision=rv(objs[key]))
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert len(latencies) == 100 * rounds * len(keys)
