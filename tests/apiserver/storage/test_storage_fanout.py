"""Fanout: prefix filtering, one batch per wake-up, bounded queues, closing."""

from __future__ import annotations

import asyncio

import pytest

from apiserver.storage import fanout, interface


def _event(key: str, revision: int) -> interface.Event:
    return interface.Event("ADDED", key, {"metadata": {"resourceVersion": str(revision)}}, revision)


async def test_subscribers_get_matching_events_in_one_batch():
    hub = fanout.Fanout()
    pods = hub.subscribe("/r/pods/", maxsize=10)
    every = hub.subscribe("/r/", maxsize=10)
    events = [_event("/r/pods/a", 1), _event("/r/nodes/n", 2), _event("/r/pods/b", 3)]
    hub.publish(events)
    assert await pods.next_batch() == [events[0], events[2]]
    batch = await every.next_batch()
    assert batch == events and all(a is b for a, b in zip(batch, events, strict=True))


async def test_a_waiting_subscriber_wakes_on_publish():
    hub = fanout.Fanout()
    sub = hub.subscribe("/", maxsize=10)
    waiting = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.publish([_event("/a", 1)])
    assert [e.revision for e in await asyncio.wait_for(waiting, 1)] == [1]


async def test_overflow_drops_the_queue_and_raises():
    hub = fanout.Fanout()
    sub = hub.subscribe("/", maxsize=3)
    hub.publish([_event(f"/k{i}", i) for i in range(1, 5)])
    with pytest.raises(fanout.Overflowed):
        await sub.next_batch()
    hub.publish([_event("/k9", 9)])
    with pytest.raises(fanout.Overflowed):
        await sub.next_batch()


async def test_close_all_drains_then_ends_subscriptions():
    hub = fanout.Fanout()
    sub = hub.subscribe("/", maxsize=3)
    hub.publish([_event("/a", 1)])
    hub.close_all()
    assert len(hub) == 0
    assert [e.revision for e in await sub.next_batch()] == [1]
    assert await sub.next_batch() is None
    hub.publish([_event("/b", 2)])
    assert await sub.next_batch() is None


async def test_unsubscribed_get_nothing_more():
    hub = fanout.Fanout()
    sub = hub.subscribe("/", maxsize=3)
    hub.unsubscribe(sub)
    hub.publish([_event("/a", 1)])
    assert await sub.next_batch() is None
