"""Tests of the work queue contract: dedup, exclusive processing, back-off, delays, shutdown."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.workqueue import ShutDown, WorkQueue


async def _get_now(q: WorkQueue[str]) -> str:
    return await asyncio.wait_for(q.get(), 1)


async def test_keys_are_deduplicated_and_fifo() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3 and q.len() == 3
    assert [await _get_now(q) for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


async def test_a_key_in_processing_is_not_handed_out_twice() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await _get_now(q) == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # held back while "a" is processing
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0.02)
    assert not second.done()
    q.done("a")  # re-queued exactly once
    assert await asyncio.wait_for(second, 1) == "a"
    q.done("a")
    assert len(q) == 0
    q.done("a")  # a stray done() does not resurrect it
    assert len(q) == 0


async def test_done_without_readd_drops_the_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    await _get_now(q)
    q.done("a")
    assert len(q) == 0
    q.add("a")
    assert await _get_now(q) == "a"


async def test_waiting_getters_are_woken_one_per_key() -> None:
    q: WorkQueue[int] = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.add(1)
    q.add(2)
    done, pending = await asyncio.wait(getters, timeout=0.2)
    assert sorted(t.result() for t in done) == [1, 2] and len(pending) == 1
    q.add(3)
    assert await asyncio.wait_for(pending.pop(), 1) == 3


async def test_cancelled_getter_does_not_swallow_a_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("a")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "a"


async def test_add_after_delays_and_keeps_the_earliest() -> None:
    q: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 0.3)
    q.add_after("a", 0.05)  # earlier wins
    q.add_after("a", 0.5)  # later is ignored
    assert len(q) == 0
    assert await _get_now(q) == "a"
    assert 0.04 <= loop.time() - start < 0.25
    q.done("a")
    await asyncio.sleep(0.5)
    assert len(q) == 0  # the superseded timers did not fire


async def test_add_after_zero_adds_now() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0)
    assert len(q) == 1


async def test_rate_limited_back_off_doubles_until_forget() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.08)
    assert [q.next_delay("a") for _ in range(6)] == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]
    assert q.num_requeues("a") == 6
    q.forget("a")
    assert q.num_requeues("a") == 0 and q.next_delay("a") == 0.01
    assert q.next_delay("b") == 0.01  # per key
    q.forget("a")
    q.forget("b")

    loop = asyncio.get_running_loop()
    q.add_rate_limited("a")  # 10 ms
    q.add_rate_limited("a")  # would be 20 ms: the pending earlier add stays
    start = loop.time()
    assert await _get_now(q) == "a"
    assert loop.time() - start < 0.05
    q.done("a")
    start = loop.time()
    q.add_rate_limited("a")  # third failure: 40 ms
    assert await _get_now(q) == "a"
    assert loop.time() - start >= 0.035


def test_huge_failure_counts_stay_capped() -> None:
    q: WorkQueue[str] = WorkQueue()
    delays = [q.next_delay("a") for _ in range(200)]
    assert delays[0] == 0.005 and delays[-1] == 1000.0 and max(delays) == 1000.0


async def test_shutdown_drains_then_raises() -> None:
    q: WorkQueue[str] = WorkQueue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add_after("later", 0.05)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 1)

    q2: WorkQueue[str] = WorkQueue()
    q2.add("a")
    q2.shutdown()
    q2.add("b")  # ignored
    assert q2.shutting_down
    assert await _get_now(q2) == "a"
    with pytest.raises(ShutDown):
        await _get_now(q2)
    await asyncio.sleep(0.08)
    assert len(q) == 0  # the cancelled delayed add never arrived


def test_bad_delays_are_rejected() -> None:
    with pytest.raises(ValueError):
        WorkQueue(base_delay=0)
    with pytest.raises(ValueError):
        WorkQueue(base_delay=2, max_delay=1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "get", "done"]), st.integers(0, 3)), max_size=40))
def test_model_invariants(ops: list[tuple[str, int]]) -> None:
    """Against a simple model: no key is queued twice, none is out twice, re-adds are not lost."""

    async def run() -> None:
        q: WorkQueue[int] = WorkQueue()
        processing: set[int] = set()
        wanted: set[int] = set()  # added since it was last handed out
        for op, key in ops:
            if op == "add":
                q.add(key)
                wanted.add(key)
            elif op == "get" and len(q):
                got = await q.get()
                assert got not in processing
                processing.add(got)
                wanted.discard(got)
            elif op == "done" and key in processing:
                q.done(key)
                processing.discard(key)
            assert len(q) == len(wanted - processing)
        for key in processing:
            q.done(key)
        drained = [await q.get() for _ in range(len(q))]
        assert sorted(drained) == sorted(wanted)

    asyncio.run(run())
