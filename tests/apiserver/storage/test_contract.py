"""The storage contract, run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import asyncio
import copy

import pytest
from storage_testkit import pod, pod_key, rv, take

from apiserver.storage import interface

# ---- create / get


async def test_create_stamps_revision_and_ignores_the_given_one(storage):
    before = await storage.current_revision()
    obj = pod("a")
    obj["metadata"]["resourceVersion"] = "12345"
    created = await storage.create(pod_key("ns", "a"), obj)
    assert rv(created) == before + 1
    assert created["spec"] == {} and created["metadata"]["name"] == "a"
    got = await storage.get(pod_key("ns", "a"))
    assert got == created
    assert obj["metadata"]["resourceVersion"] == "12345", "the input must not be mutated"


async def test_object_without_metadata_gets_one(storage):
    created = await storage.create("/registry/x/things/t", {"kind": "Thing"})
    assert created == {"kind": "Thing", "metadata": {"resourceVersion": str(rv(created))}}


async def test_create_of_an_existing_key_raises_key_exists(storage):
    await storage.create(pod_key("ns", "a"), pod("a"))
    revision = await storage.current_revision()
    with pytest.raises(interface.KeyExists) as err:
        await storage.create(pod_key("ns", "a"), pod("a", image="other"))
    assert err.value.key == pod_key("ns", "a")
    assert await storage.current_revision() == revision, "a failed write takes no revision"
    assert (await storage.get(pod_key("ns", "a")))["spec"] == {}


async def test_get_of_a_missing_key_raises_key_not_found(storage):
    with pytest.raises(interface.KeyNotFound) as err:
        await storage.get(pod_key("ns", "nope"))
    assert err.value.key == pod_key("ns", "nope")


# ---- update (compare-and-swap)


async def test_update_swaps_when_the_revision_matches(storage):
    created = await storage.create(pod_key("ns", "a"), pod("a"))
    updated = await storage.update(pod_key("ns", "a"), pod("a", image="v2"), expected_revision=rv(created))
    assert rv(updated) > rv(created)
    assert updated["spec"] == {"image": "v2"}
    assert await storage.get(pod_key("ns", "a")) == updated


async def test_update_with_a_stale_revision_raises_conflict_with_current_state(storage):
    created = await storage.create(pod_key("ns", "a"), pod("a"))
    updated = await storage.update(pod_key("ns", "a"), pod("a", image="v2"), expected_revision=rv(created))
    with pytest.raises(interface.RevisionConflict) as err:
        await storage.update(pod_key("ns", "a"), pod("a", image="v3"), expected_revision=rv(created))
    assert err.value.key == pod_key("ns", "a")
    assert err.value.current == updated
    assert (await storage.get(pod_key("ns", "a")))["spec"] == {"image": "v2"}


async def test_update_of_a_missing_key_raises_key_not_found(storage):
    with pytest.raises(interface.KeyNotFound):
        await storage.update(pod_key("ns", "a"), pod("a"), expected_revision=1)


async def test_returned_objects_are_not_changed_by_later_writes(storage):
    created = await storage.create(pod_key("ns", "a"), pod("a", image="v1"))
    snapshot = copy.deepcopy(created)
    got = await storage.get(pod_key("ns", "a"))
    await storage.update(pod_key("ns", "a"), pod("a", image="v2"), expected_revision=rv(created))
    await storage.delete(pod_key("ns", "a"))
    assert created == snapshot and got == snapshot


# ---- delete


async def test_delete_returns_the_last_state_at_the_deletion_revision(storage):
    created = await storage.create(pod_key("ns", "a"), pod("a", image="v1"))
    deleted = await storage.delete(pod_key("ns", "a"))
    assert rv(deleted) == rv(created) + 1 == await storage.current_revision()
    assert deleted["spec"] == {"image": "v1"}
    with pytest.raises(interface.KeyNotFound):
        await storage.get(pod_key("ns", "a"))
    with pytest.raises(interface.KeyNotFound):
        await storage.delete(pod_key("ns", "a"))
    recreated = await storage.create(pod_key("ns", "a"), pod("a", image="v2"))
    assert rv(recreated) > rv(deleted)


async def test_delete_with_a_stale_revision_raises_conflict_and_keeps_the_object(storage):
    created = await storage.create(pod_key("ns", "a"), pod("a"))
    updated = await storage.update(pod_key("ns", "a"), pod("a", image="v2"), expected_revision=rv(created))
    with pytest.raises(interface.RevisionConflict) as err:
        await storage.delete(pod_key("ns", "a"), expected_revision=rv(created))
    assert err.value.current == updated
    deleted = await storage.delete(pod_key("ns", "a"), expected_revision=rv(updated))
    assert rv(deleted) > rv(updated)


# ---- revisions


async def test_revisions_are_one_global_monotonic_counter(storage):
    start = await storage.current_revision()
    seen = []
    for i in range(5):
        seen.append(rv(await storage.create(pod_key(f"ns{i}", "a"), pod("a"))))
        seen.append(rv(await storage.create(f"/registry/core/nodes/n{i}", {"metadata": {"name": f"n{i}"}})))
    seen.append(rv(await storage.delete(pod_key("ns0", "a"))))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[0] > start
    assert await storage.current_revision() == seen[-1]


# ---- list


async def _fill_namespaces(storage) -> dict[str, dict]:
    made = {}
    for namespace, name in [("b", "x"), ("a", "z"), ("ab", "y"), ("a", "x"), ("a", "y"), ("ab", "a")]:
        made[pod_key(namespace, name)] = await storage.create(pod_key(namespace, name), pod(name, namespace))
    await storage.create("/registry/core/nodes/n1", {"metadata": {"name": "n1"}})
    return made


async def test_list_returns_sorted_items_of_the_prefix_only(storage):
    made = await _fill_namespaces(storage)
    result = await storage.list("/registry/core/pods/a/")
    assert result.keys == [pod_key("a", n) for n in ("x", "y", "z")]
    assert result.items == [made[k] for k in result.keys]
    assert result.continue_key is None
    assert result.revision == await storage.current_revision()

    everything = await storage.list("/registry/core/pods/")
    assert everything.keys == sorted(made)
    assert [o["metadata"]["namespace"] for o in everything.items] == ["a", "a", "a", "ab", "ab", "b"]
    assert (await storage.list("/registry/core/pods/c/")).items == []
    assert [o["metadata"]["name"] for o in (await storage.list("/registry/")).items][-1] == "x"


async def test_list_pages_are_consistent_at_the_first_pages_revision(storage):
    for i in range(7):
        await storage.create(pod_key("ns", f"p{i}"), pod(f"p{i}"))
    full = await storage.list("/registry/core/pods/ns/")
    first = await storage.list("/registry/core/pods/ns/", limit=3)
    assert first.items == full.items[:3] and first.continue_key == pod_key("ns", "p2")

    # the world moves on between pages
    await storage.create(pod_key("ns", "p3a"), pod("p3a"))
    await storage.delete(pod_key("ns", "p4"))
    p5 = full.items[5]
    await storage.update(pod_key("ns", "p5"), pod("p5", image="new"), expected_revision=rv(p5))

    pages, cont = [first], first.continue_key
    while cont is not None:
        page = await storage.list("/registry/core/pods/ns/", limit=3, start_after=cont, revision=first.revision)
        assert page.revision == first.revision
        pages.append(page)
        cont = page.continue_key
    assert [item for page in pages for item in page.items] == full.items
    assert [len(page.items) for page in pages] == [3, 3, 1]
    now = await storage.list("/registry/core/pods/ns/")
    assert pod_key("ns", "p3a") in now.keys and pod_key("ns", "p4") not in now.keys


async def test_limit_equal_to_the_count_has_no_continue(storage):
    for i in range(3):
        await storage.create(pod_key("ns", f"p{i}"), pod(f"p{i}"))
    result = await storage.list("/registry/core/pods/ns/", limit=3)
    assert len(result.items) == 3 and result.continue_key is None


async def test_list_at_a_past_revision_shows_that_state(storage):
    a1 = await storage.create(pod_key("ns", "a"), pod("a", v=1))
    b1 = await storage.create(pod_key("ns", "b"), pod("b", v=1))
    a2 = await storage.update(pod_key("ns", "a"), pod("a", v=2), expected_revision=rv(a1))
    b_gone = await storage.delete(pod_key("ns", "b"))
    await storage.create(pod_key("ns", "c"), pod("c", v=1))

    async def at(revision):
        result = await storage.list("/registry/core/pods/ns/", revision=revision)
        assert result.revision == revision
        return result.items

    assert await at(rv(a1)) == [a1]
    assert await at(rv(b1)) == [a1, b1]
    assert await at(rv(a2)) == [a2, b1]
    assert await at(rv(b_gone)) == [a2]
    assert [o["metadata"]["name"] for o in await at(rv(b_gone) + 1)] == ["a", "c"]


async def test_list_at_a_future_revision_raises(storage):
    await storage.create(pod_key("ns", "a"), pod("a"))
    with pytest.raises(interface.FutureRevision):
        await storage.list("/registry/core/pods/", revision=await storage.current_revision() + 5)


# ---- watch


async def test_watch_replays_from_a_revision_then_follows_live_changes(storage):
    first = await storage.create(pod_key("ns", "a"), pod("a"))
    await storage.create(pod_key("ns", "b"), pod("b"))
    await storage.create(pod_key("ns", "c"), pod("c"))
    stream = storage.watch("/registry/core/pods/", revision=rv(first))
    try:
        replayed = await take(stream, 2)
        assert [(e.type, e.key) for e in replayed] == [("ADDED", pod_key("ns", "b")), ("ADDED", pod_key("ns", "c"))]
        b = await storage.get(pod_key("ns", "b"))
        updated = await storage.update(pod_key("ns", "b"), pod("b", v=2), expected_revision=rv(b))
        deleted = await storage.delete(pod_key("ns", "a"))
        live = await take(stream, 2)
    finally:
        await stream.aclose()
    assert [(e.type, e.revision) for e in live] == [("MODIFIED", rv(updated)), ("DELETED", rv(deleted))]
    assert live[0].obj == updated and live[0].prev == b
    revisions = [e.revision for e in replayed + live]
    assert revisions == sorted(revisions)
    assert all(rv(e.obj) == e.revision for e in replayed + live)


async def test_watch_from_the_current_revision_sees_only_future_events(storage):
    await storage.create(pod_key("ns", "old"), pod("old"))
    stream = storage.watch("/registry/core/pods/", revision=await storage.current_revision())
    try:
        await asyncio.sleep(0.05)
        new = await storage.create(pod_key("ns", "new"), pod("new"))
        [event] = await take(stream, 1)
    finally:
        await stream.aclose()
    assert (event.type, event.key, event.obj, event.prev) == ("ADDED", pod_key("ns", "new"), new, None)


async def test_watch_sees_its_prefix_only(storage):
    start = await storage.current_revision()
    await storage.create(pod_key("ab", "x"), pod("x", "ab"))
    mine = await storage.create(pod_key("a", "x"), pod("x", "a"))
    await storage.create("/registry/core/nodes/a", {"metadata": {"name": "a"}})
    stream = storage.watch("/registry/core/pods/a/", revision=start)
    try:
        await storage.create(pod_key("ab", "y"), pod("y", "ab"))
        mine2 = await storage.create(pod_key("a", "y"), pod("y", "a"))
        events = await take(stream, 2)
    finally:
        await stream.aclose()
    assert [e.obj for e in events] == [mine, mine2]


async def test_deleted_event_carries_the_last_state(storage):
    created = await storage.create(pod_key("ns", "a"), pod("a", image="v1"))
    deleted = await storage.delete(pod_key("ns", "a"))
    stream = storage.watch("/registry/core/pods/ns/", revision=rv(created))
    try:
        [event] = await take(stream, 1)
    finally:
        await stream.aclose()
    assert event.type == "DELETED" and event.revision == rv(deleted)
    assert event.obj == deleted and event.obj["spec"] == {"image": "v1"}
    assert event.prev == created


async def test_watch_delivers_concurrent_writes_in_revision_order(storage):
    stream = storage.watch("/registry/core/pods/", revision=await storage.current_revision())
    try:
        results = await asyncio.gather(*(storage.create(pod_key("ns", f"p{i}"), pod(f"p{i}")) for i in range(50)))
        events = await take(stream, 50)
    finally:
        await stream.aclose()
    assert [e.revision for e in events] == sorted(rv(r) for r in results)


async def test_a_watch_started_during_a_burst_sees_each_event_once(storage):
    start = await storage.current_revision()
    for _ in range(3):
        writes = [asyncio.create_task(storage.create(pod_key("ns", f"p{start}-{i}"), pod("p"))) for i in range(60)]
        await asyncio.sleep(0)  # some writes are queued or committed, others not yet
        stream = storage.watch("/registry/core/pods/", revision=start)
        try:
            reading = asyncio.create_task(take(stream, 60))
            results = await asyncio.gather(*writes)
            events = await reading
            marker = await storage.create(pod_key("ns", f"marker{start}"), pod("m"))
            [after] = await take(stream, 1)
        finally:
            await stream.aclose()
        assert [e.revision for e in events] == sorted(rv(r) for r in results)
        assert after.obj == marker, "no event was delivered twice"
        start = rv(marker)


async def test_watch_from_an_invalid_revision_is_rejected(storage):
    with pytest.raises(interface.InvalidObject):  # at the call or at the first read
        await anext(storage.watch("/registry/", revision=-1))


# ---- compaction


async def test_compaction_makes_old_revisions_answer_compacted(storage):
    a = await storage.create(pod_key("ns", "a"), pod("a", v=1))
    for v in range(2, 5):
        a = await storage.update(pod_key("ns", "a"), pod("a", v=v), expected_revision=rv(a))
    b = await storage.create(pod_key("ns", "b"), pod("b"))
    await storage.delete(pod_key("ns", "b"))
    mark = rv(b)
    await storage.compact(mark)

    with pytest.raises(interface.Compacted) as err:
        await storage.list("/registry/core/pods/", revision=mark - 1)
    assert err.value.revision == mark - 1 and err.value.compacted >= mark
    stream = storage.watch("/registry/core/pods/", revision=mark - 1)
    with pytest.raises(interface.Compacted):
        await anext(stream)

    assert (await storage.list("/registry/core/pods/", revision=mark)).items == [a, b]
    assert (await storage.list("/registry/core/pods/")).items == [a]
    stream = storage.watch("/registry/core/pods/", revision=mark)
    try:
        [event] = await take(stream, 1)
    finally:
        await stream.aclose()
    assert event.type == "DELETED" and event.prev == b
    updated = await storage.update(pod_key("ns", "a"), pod("a", v=9), expected_revision=rv(a))
    assert await storage.get(pod_key("ns", "a")) == updated


async def test_compaction_beyond_the_current_revision_is_refused(storage):
    await storage.create(pod_key("ns", "a"), pod("a"))
    with pytest.raises(interface.FutureRevision):
        await storage.compact(await storage.current_revision() + 1)


# ---- TTL


async def test_ttl_expires_a_key_with_a_deleted_event(storage):
    start = await storage.current_revision()
    stream = storage.watch("/registry/core/events/", revision=start)
    try:
        await storage.create("/registry/core/events/ns/short", {"metadata": {"name": "short"}}, ttl=1)
        kept = await storage.create("/registry/core/events/ns/kept", {"metadata": {"name": "kept"}}, ttl=1)
        kept = await storage.update("/registry/core/events/ns/kept", {"metadata": {"name": "kept"}, "n": 2},
                                    expected_revision=rv(kept))  # no ttl: expiry dropped
        events = await take(stream, 4, within=5)
    finally:
        await stream.aclose()
    assert [(e.type, e.key.rsplit("/", 1)[1]) for e in events][-1] == ("DELETED", "short")
    with pytest.raises(interface.KeyNotFound):
        await storage.get("/registry/core/events/ns/short")
    await asyncio.sleep(0.3)
    assert await storage.get("/registry/core/events/ns/kept") == kept


# ---- persistence


async def test_reopening_resumes_data_and_revisions(persistent, open_storage):
    if not persistent:
        pytest.skip("backend does not persist")
    async with open_storage() as store:
        a = await store.create(pod_key("ns", "a"), pod("a", v=1))
        a = await store.update(pod_key("ns", "a"), pod("a", v=2), expected_revision=rv(a))
        b = await store.create(pod_key("ns", "b"), pod("b"))
        await store.delete(pod_key("ns", "b"))
        last = await store.current_revision()
        await store.compact(last)  # the last row (a tombstone) may go: the counter must not
    async with open_storage() as store:
        assert await store.current_revision() == last
        assert await store.get(pod_key("ns", "a")) == a
        assert (await store.list("/registry/")).items == [a]
        with pytest.raises(interface.Compacted):
            await store.list("/registry/", revision=rv(b) - 1)
        c = await store.create(pod_key("ns", "c"), pod("c"))
        assert rv(c) == last + 1


# ---- concurrency


async def test_concurrent_compare_and_swap_has_exactly_one_winner(storage):
    created = await storage.create(pod_key("ns", "a"), pod("a"))
    outcomes = await asyncio.gather(
        *(storage.update(pod_key("ns", "a"), pod("a", writer=i), expected_revision=rv(created)) for i in range(20)),
        return_exceptions=True)
    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(winners) == 1
    assert all(isinstance(o, interface.RevisionConflict) for o in outcomes if not isinstance(o, dict))
    assert await storage.get(pod_key("ns", "a")) == winners[0]


async def test_200_concurrent_creates_all_land(storage):
    results = await asyncio.gather(*(storage.create(pod_key("ns", f"p{i:03}"), pod(f"p{i:03}")) for i in range(200)))
    assert len({rv(r) for r in results}) == 200
    listed = await storage.list("/registry/core/pods/ns/")
    assert listed.keys == [pod_key("ns", f"p{i:03}") for i in range(200)]
    assert listed.revision == max(rv(r) for r in results)


# ---- bad input


@pytest.mark.parametrize(("key", "obj"), [
    ("/registry/core/pods/ns/a", ["not", "a", "dict"]),
    ("/registry/core/pods/ns/a", {"metadata": "not a dict"}),
    ("/registry/core/pods/ns/a", {"metadata": {}, "spec": {1, 2}}),
    ("registry/core/pods/ns/a", {}),
    ("/registry/core/pods/ns/", {}),
    (42, {}),
])
async def test_bad_input_raises_invalid_object(storage, key, obj):
    with pytest.raises(interface.InvalidObject):
        await storage.create(key, obj)


async def test_bad_arguments_raise_invalid_object(storage):
    with pytest.raises(interface.InvalidObject):
        await storage.list("/registry/", limit=-1)
    with pytest.raises(interface.InvalidObject):
        await storage.create(pod_key("ns", "a"), pod("a"), ttl=0)
    with pytest.raises(interface.InvalidObject):
        await storage.update(pod_key("ns", "a"), pod("a"), expected_revision="7")
