"""Quantities, the node cache, the framework's decision and message, and the scheduling queue."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import numpy as np
import pytest
from sched_objects import cache_of, info, node, pod

from machinery.client import ApiClient
from machinery.kubeconfig import ClusterConfig
from scheduler import fit_error, podinfo, resources
from scheduler.fit_error import Diagnosis, fit_error_message
from scheduler.plugins.registry import default_framework
from scheduler.queue import SchedulingQueue, Where
from scheduler.scheduler import Scheduler


@pytest.mark.parametrize(("text", "resource", "want"), [
    ("500m", "cpu", 500), ("2", "cpu", 2000), ("0.5", "cpu", 500), (1, "cpu", 1000),
    ("128Mi", "memory", 128 * 2**20), ("1G", "memory", 10**9), ("1e3", "memory", 1000), ("110", "pods", 110),
])
def test_parse_quantity(text, resource, want):
    assert resources.parse_quantity(text, resource=resource) == want


@pytest.mark.parametrize("bad", ["", "12Q", "abc", "-1", True, None, [1]])
def test_bad_quantity_is_a_quantity_error(bad):
    with pytest.raises(resources.QuantityError):
        resources.parse_quantity(bad, resource="cpu")


def test_pod_requests_take_init_containers_limits_and_overhead_into_account():
    spec = {"containers": [{"resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}},
                           {"resources": {"requests": {"cpu": "200m", "memory": "100Mi"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1"}}}],
            "overhead": {"cpu": "10m"}}
    got = resources.pod_requests(spec)
    assert list(got) == [1010, 2**30 + 100 * 2**20, 1]


def test_malformed_pod_is_a_pod_spec_error():
    with pytest.raises(podinfo.PodSpecError, match="cpu"):
        podinfo.read_pod(pod("p", cpu="lots"))


def test_cache_counts_pods_on_nodes_that_appear_later_and_reuses_slots():
    cache = cache_of(node("a"), capacity=1)
    cache.add_bound(info("early", cpu="1"), "b")  # b not known yet
    cache.upsert_node(node("b"))  # grows the arrays
    assert cache.capacity == 2
    assert cache.requested[cache.slot["b"], resources.CPU] == 1000
    slot_a = cache.slot["a"]
    cache.remove_node("a")
    assert not cache.valid[slot_a]
    cache.upsert_node(node("c"))
    assert cache.slot["c"] == slot_a and cache.requested[slot_a].sum() == 0


def test_cache_confirms_assumed_pod_and_forgets():
    cache = cache_of(node("a"))
    pod_info = info("p", cpu="1", owner_uid="rs")
    cache.assume(pod_info, "a")
    assert cache.is_assumed("default/p")
    cache.add_bound(pod_info, "a")
    assert not cache.is_assumed("default/p")
    assert cache.requested[cache.slot["a"], resources.CPU] == 1000  # counted once
    assert cache.owner_counts["rs"][cache.slot["a"]] == 1
    cache.forget("default/p")
    assert cache.requested[cache.slot["a"]].sum() == 0 and "rs" not in cache.owner_counts


def test_message_has_upstream_shape():
    diagnosis = Diagnosis(total=3, reasons=Counter({"Insufficient cpu": 1, "node(s) had untolerated taint {k: v}": 2}),
                          unresolvable=2, resolvable=1)
    assert fit_error_message(diagnosis) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling.")
    assert fit_error_message(Diagnosis(total=0)) == fit_error.NO_NODES


def test_framework_reports_the_first_failing_plugin_per_node():
    cache = cache_of(node("tainted", cpu="1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
                     node("small", cpu="1"), node("cordoned", unschedulable=True))
    decision = default_framework().decide(info("p", cpu="2"), cache)
    assert decision.node is None
    assert decision.diagnosis.reasons == Counter({"node(s) had untolerated taint {k: v}": 1, "Insufficient cpu": 1,
                                                  "node(s) were unschedulable": 1})
    assert (decision.diagnosis.unresolvable, decision.diagnosis.resolvable) == (2, 1)


def test_back_to_back_decisions_see_assumed_pods():
    cache = cache_of(node("a", cpu="1"), node("b", cpu="1"))
    framework = default_framework(rng=random.Random(1))
    chosen = []
    for i in range(3):
        pod_info = info(f"p{i}", cpu="700m")
        decision = framework.decide(pod_info, cache)
        if decision.node:
            cache.assume(pod_info, decision.node)
        chosen.append(decision.node)
    assert sorted(chosen[:2]) == ["a", "b"] and chosen[2] is None


def test_pods_spread_over_equal_nodes():
    cache = cache_of(node("a"), node("b"), node("c"))
    framework = default_framework(rng=random.Random(7))
    for i in range(6):
        pod_info = info(f"p{i}", cpu="100m", owner_uid="rs")
        cache.assume(pod_info, framework.decide(pod_info, cache).node)
    assert sorted(np.asarray(cache.owner_counts["rs"])[cache.valid_slots()]) == [2, 2, 2]


# -- queue -----------------------------------------------------------------------------------------

async def test_queue_pops_by_priority_then_fifo():
    q = SchedulingQueue()
    for key, prio in [("low1", 0), ("high", 10), ("low2", 0), ("mid", 5)]:
        q.add(key, priority=prio)
    q.add("low1", priority=0)  # duplicate: ignored
    assert [await q.pop() for _ in range(4)] == ["high", "mid", "low1", "low2"]


async def test_unschedulable_waits_for_a_cluster_change_then_backs_off():
    q = SchedulingQueue(initial_backoff=0.05, max_backoff=0.1)
    q.add("p")
    assert await q.pop() == "p"
    q.unschedulable("p")
    assert q.where("p") is Where.UNSCHEDULABLE
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await q.pop()
    q.move_all_to_active("node added")
    assert q.where("p") in (Where.BACKOFF, Where.ACTIVE)
    async with asyncio.timeout(1):
        assert await q.pop() == "p"


async def test_change_during_an_attempt_sends_the_pod_to_backoff_not_unschedulable():
    q = SchedulingQueue(initial_backoff=0.01, max_backoff=0.02)
    q.add("p")
    await q.pop()
    q.move_all_to_active("node added")
    q.unschedulable("p")
    assert q.where("p") is Where.BACKOFF
    async with asyncio.timeout(1):
        assert await q.pop() == "p"


async def test_backoff_doubles_is_capped_and_removed_pods_vanish():
    q = SchedulingQueue(initial_backoff=0.01, max_backoff=0.04)
    q.add("p")
    for want in (0.01, 0.02, 0.04, 0.04):
        async with asyncio.timeout(1):
            assert await q.pop() == "p"
        q.retry_later("p")
        assert q.backoff_for("p") == want
        assert q.where("p") is Where.BACKOFF
    q.remove("p")
    assert q.where("p") is None and len(q) == 0
    q.close()
    with pytest.raises(asyncio.CancelledError):
        await q.pop()


def test_queue_rejects_bad_backoff():
    with pytest.raises(ValueError):
        SchedulingQueue(initial_backoff=0)


def test_confirm_only_matches_the_assumed_node():
    cache = cache_of(node("a"), node("b"))
    cache.assume(info("p", cpu="1"), "a")
    assert not cache.confirm("default/p", "b") and cache.is_assumed("default/p")
    assert cache.confirm("default/p", "a") and not cache.is_assumed("default/p")
    assert not cache.confirm("default/other", "a")


async def test_a_node_with_unreadable_capacity_is_left_out_not_fatal():
    async with ApiClient(ClusterConfig(server="http://127.0.0.1:1")) as client:
        sched = Scheduler(client)
        good, bad = node("good"), node("bad")
        sched._node_added(good)
        sched._node_added(bad)
        bad_again = node("bad", cpu="four")
        sched._node_updated(bad, bad_again)
        assert set(sched.cache.slot) == {"good"}
