"""Unit tests of the controllers' pure parts: condition wording, owner-reference edits, policies,
the resource tables, and the WorkLoop's retry and requeue behaviour (no API server needed)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from apiserver import registry
from controllers import garbage_collector as gc
from controllers import manager
from controllers.base import WorkLoop, resource_for, resource_of_kind
from controllers.namespace import CONDITIONS, Tally, conditions_for, problems
from machinery.client import NotFound, TransportError, make_status

# --- namespace status conditions -----------------------------------------------------------------


def _by_type(conds: list[dict]) -> dict[str, dict]:
    return {c["type"]: c for c in conds}


def test_empty_namespace_has_all_conditions_false() -> None:
    conds = conditions_for(Tally(), [], now="2024-01-01T00:00:00Z")
    assert [c["type"] for c in conds] == [r.type for r in CONDITIONS]
    assert {c["status"] for c in conds} == {"False"}
    assert _by_type(conds)["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
    assert _by_type(conds)["NamespaceContentRemaining"]["message"] == "All content successfully removed"


def test_remaining_content_and_finalizers_are_reported_like_kubernetes() -> None:
    tally = Tally(remaining=Counter({"pods.": 2, "deployments.apps": 1}),
                  finalizers=Counter({"example.com/hold": 3}))
    conds = _by_type(conditions_for(tally, [], now="t0"))
    remaining = conds["NamespaceContentRemaining"]
    assert (remaining["status"], remaining["reason"]) == ("True", "SomeResourcesRemain")
    assert remaining["message"] == ("Some resources are remaining: deployments.apps has 1 resource instances, "
                                    "pods. has 2 resource instances")
    fins = conds["NamespaceFinalizersRemaining"]
    assert (fins["status"], fins["reason"]) == ("True", "SomeFinalizersRemain")
    assert fins["message"].endswith("example.com/hold in 3 resource instances")
    assert conds["NamespaceDeletionContentFailure"]["status"] == "False"


def test_failures_set_content_failure() -> None:
    wrong = problems(Tally(failures=["pods: 500 InternalError: boom"]))
    assert wrong["NamespaceDeletionContentFailure"].startswith("Failed to delete all resource types, 1 remaining")
    assert not Tally(failures=["x"]).empty and not Tally(remaining=Counter({"a.": 1})).empty
    assert Tally().empty


def test_transition_time_kept_until_status_flips_and_foreign_conditions_stay() -> None:
    first = conditions_for(Tally(remaining=Counter({"pods.": 1})), [{"type": "Other", "status": "True"}],
                           now="t0")
    assert _by_type(first)["Other"] == {"type": "Other", "status": "True"}
    same = conditions_for(Tally(remaining=Counter({"pods.": 5})), first, now="t1")
    assert _by_type(same)["NamespaceContentRemaining"]["lastTransitionTime"] == "t0"
    assert _by_type(same)["NamespaceContentRemaining"]["message"].endswith("5 resource instances")
    flipped = conditions_for(Tally(), same, now="t2")
    assert _by_type(flipped)["NamespaceContentRemaining"]["lastTransitionTime"] == "t2"
    assert _by_type(flipped)["NamespaceFinalizersRemaining"]["lastTransitionTime"] == "t0"


# --- garbage collector helpers -------------------------------------------------------------------

def _obj(*, refs: list[dict] | None = None, finalizers: list[str] | None = None) -> dict:
    md: dict = {"name": "x", "namespace": "ns", "uid": "u-x"}
    if refs is not None:
        md["ownerReferences"] = refs
    if finalizers is not None:
        md["finalizers"] = finalizers
    return {"metadata": md}


REF_A = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "u-a"}
REF_B = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "u-b"}


def test_owner_index_files_object_under_each_owner_uid() -> None:
    assert gc.owner_uids(_obj(refs=[REF_A, REF_B])) == ["u-a", "u-b"]
    assert gc.owner_uids(_obj(refs=[{"kind": "X", "name": "no-uid"}, "junk"])) == []  # type: ignore[list-item]
    assert gc.owner_uids(_obj()) == []


def test_without_owners_drops_only_named_uids() -> None:
    edit = gc.without_owners({"u-a"})
    assert edit(_obj(refs=[REF_A, REF_B])["metadata"]) == {"ownerReferences": [REF_B]}
    assert edit(_obj(refs=[REF_A])["metadata"]) == {"ownerReferences": None}  # null deletes the field
    assert edit(_obj(refs=[REF_B])["metadata"]) is None


def test_without_finalizer() -> None:
    edit = gc.without_finalizer(gc.FOREGROUND)
    assert edit({"finalizers": ["a", gc.FOREGROUND]}) == {"finalizers": ["a"]}
    assert edit({"finalizers": [gc.FOREGROUND]}) == {"finalizers": None}
    assert edit({"finalizers": ["a"]}) is None
    assert edit({}) is None


@pytest.mark.parametrize(("finalizers", "waiting", "policy"), [
    ([], False, "Background"),
    ([], True, "Foreground"),
    ([gc.FOREGROUND], False, "Foreground"),
    ([gc.ORPHAN], True, "Orphan"),
])
def test_deletion_policy(finalizers: list[str], waiting: bool, policy: str) -> None:
    assert gc.deletion_policy(_obj(finalizers=finalizers), owner_waiting=waiting) == policy


def test_collected_types_cover_stored_resources_but_not_events() -> None:
    names = {(rt.group, rt.plural) for rt in gc.collected_types()}
    assert {("", "pods"), ("apps", "replicasets"), ("", "namespaces"), ("", "configmaps")} <= names
    assert not names & gc.IGNORED
    assert all(rt.stored for rt in gc.collected_types())
    assert not any(rt.kind.endswith("Review") for rt in gc.collected_types())


def test_resource_helpers_follow_the_registry() -> None:
    rt = registry.lookup("apps", "v1", "deployments")
    assert rt is not None
    res = resource_for(rt)
    assert (res.api_version, res.plural, res.namespaced) == ("apps/v1", "deployments", True)
    assert resource_of_kind("v1", "Namespace").path(name="a", subresource="finalize") == \
        "/api/v1/namespaces/a/finalize"
    with pytest.raises(KeyError, match="Gadget"):
        resource_of_kind("v1", "Gadget")


def test_unknown_controller_name_is_rejected() -> None:
    assert manager.select(None) == list(manager.CONTROLLERS)
    assert manager.select(["namespace", "namespace"]) == ["namespace"]
    with pytest.raises(ValueError, match="nope"):
        manager.select(["namespace", "nope"])


# --- WorkLoop ------------------------------------------------------------------------------------

async def _until(check: Callable[[], bool], within: float = 3.0) -> None:
    for _ in range(int(within / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"condition not met within {within}s")


@pytest.mark.parametrize("error", [TransportError("down"), NotFound(make_status(404, "gone")), ValueError("bug")])
async def test_workloop_retries_failures_with_backoff_then_forgets(error: Exception) -> None:
    calls: list[str] = []

    async def reconcile(key: str) -> float | None:
        calls.append(key)
        if len(calls) < 3:
            raise error
        return None

    loop: WorkLoop[str] = WorkLoop("t", reconcile, workers=2, base_delay=0.01)
    loop.start()
    try:
        loop.add("a")
        await _until(lambda: len(calls) == 3)
        await asyncio.sleep(0.05)
        assert calls == ["a", "a", "a"]
        assert loop.queue.num_requeues("a") == 0
    finally:
        await loop.stop()


async def test_workloop_requeues_after_the_delay_reconcile_returns() -> None:
    stamps: list[float] = []

    async def reconcile(key: str) -> float | None:
        stamps.append(asyncio.get_running_loop().time())
        return 0.1 if len(stamps) == 1 else None

    loop: WorkLoop[str] = WorkLoop("t", reconcile, workers=1)
    loop.start()
    try:
        loop.add("k")
        await _until(lambda: len(stamps) == 2)
        assert stamps[1] - stamps[0] >= 0.09
        await asyncio.sleep(0.15)
        assert len(stamps) == 2
    finally:
        await loop.stop()


async def test_workloop_stop_cancels_busy_workers() -> None:
    started = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        started.set()
        await asyncio.sleep(60)
        return None

    loop: WorkLoop[str] = WorkLoop("t", reconcile, workers=1)
    loop.start()
    loop.add("k")
    await asyncio.wait_for(started.wait(), 2)
    await asyncio.wait_for(loop.stop(), 2)
    assert loop.queue.shutting_down
    with pytest.raises(ValueError):
        WorkLoop("t", reconcile, workers=0)
