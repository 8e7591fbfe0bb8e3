"""Each plugin on node arrays: which slots it rules out, with which reason, and how it scores."""

from __future__ import annotations

import numpy as np
import pytest
from sched_objects import cache_of, info, names, node

from scheduler.plugins import (
    balanced_allocation,
    inter_pod_affinity,
    least_allocated,
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
    workload_spread,
)
from scheduler.podinfo import PodSpecError


def rejected(rejections, cache) -> dict[str, set[str]]:
    return {r.reason: names(cache, r.mask & cache.valid) for r in rejections if (r.mask & cache.valid).any()}


def test_unschedulable_nodes_are_refused_unless_the_cordon_is_tolerated():
    cache = cache_of(node("a", unschedulable=True), node("b"))
    plugin = node_unschedulable.NodeUnschedulable()
    assert rejected(plugin.filter(info("p"), cache), cache) == {node_unschedulable.REASON: {"a"}}
    tolerant = info("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}])
    assert plugin.filter(tolerant, cache) == []


def test_node_name_keeps_only_the_named_node():
    cache = cache_of(node("a"), node("b"), node("c"))
    plugin = node_name.NodeName()
    assert plugin.filter(info("p"), cache) == []
    assert rejected(plugin.filter(info("p", nodeName="b"), cache), cache) == {node_name.REASON: {"a", "c"}}


def test_resources_fit_reports_each_short_resource():
    cache = cache_of(node("small", cpu="1", memory="1Gi"), node("big", cpu="8", memory="16Gi"),
                     node("full", pods="0"))
    plugin = node_resources_fit.NodeResourcesFit()
    got = rejected(plugin.filter(info("p", cpu="2", memory="2Gi"), cache), cache)
    assert got == {"Insufficient cpu": {"small"}, "Insufficient memory": {"small"}, "Too many pods": {"full"}}
    assert all(r.resolvable for r in plugin.filter(info("p", cpu="2"), cache))


def test_resources_fit_counts_assumed_pods():
    cache = cache_of(node("a", cpu="1"))
    plugin = node_resources_fit.NodeResourcesFit()
    assert plugin.filter(info("p1", cpu="600m"), cache) == []
    cache.assume(info("p1", cpu="600m"), "a")
    assert rejected(plugin.filter(info("p2", cpu="600m"), cache), cache) == {"Insufficient cpu": {"a"}}
    cache.forget("default/p1")
    assert plugin.filter(info("p2", cpu="600m"), cache) == []


def test_node_selector_and_required_affinity():
    cache = cache_of(node("a", labels={"disk": "ssd", "gen": "3"}), node("b", labels={"disk": "hdd", "gen": "5"}),
                     node("c"))
    plugin = node_affinity.NodeAffinity()
    assert plugin.filter(info("p"), cache) == []
    by_selector = plugin.filter(info("p", nodeSelector={"disk": "ssd"}), cache)
    assert rejected(by_selector, cache) == {node_affinity.REASON: {"b", "c"}}
    gt = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}]}}}
    assert rejected(plugin.filter(info("p", affinity=gt), cache), cache) == {node_affinity.REASON: {"a"}}
    bad = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gen", "operator": "Near", "values": ["4"]}]}]}}}
    with pytest.raises(PodSpecError, match="Near"):
        plugin.filter(info("p", affinity=bad), cache)


def test_preferred_node_affinity_scores_matching_nodes_higher():
    cache = cache_of(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}))
    pref = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}}]}}
    scores = node_affinity.NodeAffinity().score(info("p", affinity=pref), cache, cache.valid_slots())
    assert scores[cache.slot["b"]] == 100 and scores[cache.slot["a"]] == 0


def test_taints_filter_with_upstream_reason_and_tolerations():
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    cache = cache_of(node("a", taints=[taint]), node("b", taints=[{"key": "x", "effect": "NoExecute"}]), node("c"))
    plugin = taint_toleration.TaintToleration()
    assert rejected(plugin.filter(info("p"), cache), cache) == {
        "node(s) had untolerated taint {dedicated: gpu}": {"a"}, "node(s) had untolerated taint {x: }": {"b"}}
    equal = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    assert rejected(plugin.filter(info("p", tolerations=equal), cache), cache) == {
        "node(s) had untolerated taint {x: }": {"b"}}
    wrong_value = [{"key": "dedicated", "operator": "Equal", "value": "cpu"}]
    assert "a" in names(cache, plugin.filter(info("p", tolerations=wrong_value), cache)[0].mask)
    everything = [{"operator": "Exists"}]
    assert plugin.filter(info("p", tolerations=everything), cache) == []


def test_prefer_no_schedule_taint_lowers_the_score():
    cache = cache_of(node("a", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), node("b"))
    plugin = taint_toleration.TaintToleration()
    assert plugin.filter(info("p"), cache) == []
    scores = plugin.score(info("p"), cache, cache.valid_slots())
    assert scores[cache.slot["a"]] < scores[cache.slot["b"]]
    tolerated = plugin.score(info("p", tolerations=[{"key": "k", "operator": "Exists"}]), cache, cache.valid_slots())
    assert tolerated[cache.slot["a"]] == tolerated[cache.slot["b"]]


def test_host_ports_conflict_per_protocol_and_ip():
    cache = cache_of(node("a"), node("b"))
    cache.add_bound(info("web", ports=[{"containerPort": 80, "hostPort": 8080}]), "a")
    plugin = node_ports.NodePorts()
    same = info("p", ports=[{"containerPort": 80, "hostPort": 8080}])
    assert rejected(plugin.filter(same, cache), cache) == {node_ports.REASON: {"a"}}
    udp = info("p", ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}])
    assert plugin.filter(udp, cache) == []
    assert plugin.filter(info("p", ports=[{"containerPort": 80, "hostPort": 9090}]), cache) == []


def _anti(app: str, key: str = "kubernetes.io/hostname") -> dict:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}


def test_required_anti_affinity_keeps_replicas_apart_including_assumed_ones():
    cache = cache_of(node("a"), node("b"))
    plugin = inter_pod_affinity.InterPodAffinity()
    cache.assume(info("w1", labels={"app": "web"}, affinity=_anti("web")), "a")
    got = rejected(plugin.filter(info("w2", labels={"app": "web"}, affinity=_anti("web")), cache), cache)
    assert got == {inter_pod_affinity.ANTI_AFFINITY_REASON: {"a"}}
    # a pod without rules is still kept off by the existing pod's anti-affinity
    got = rejected(plugin.filter(info("x", labels={"app": "web"}), cache), cache)
    assert got == {inter_pod_affinity.EXISTING_ANTI_AFFINITY_REASON: {"a"}}
    assert plugin.filter(info("y", labels={"app": "db"}), cache) == []


def test_anti_affinity_by_zone_blocks_the_whole_zone():
    cache = cache_of(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}),
                     node("c", labels={"zone": "z2"}))
    cache.add_bound(info("w1", labels={"app": "web"}), "a")
    got = rejected(inter_pod_affinity.InterPodAffinity().filter(info("w2", affinity=_anti("web", "zone")), cache),
                   cache)
    assert got == {inter_pod_affinity.ANTI_AFFINITY_REASON: {"a", "b"}}


def test_required_affinity_follows_matching_pods_and_lets_the_first_one_anywhere():
    cache = cache_of(node("a"), node("b"))
    together = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    plugin = inter_pod_affinity.InterPodAffinity()
    assert plugin.filter(info("c1", labels={"app": "cache"}, affinity=together), cache) == []
    stranger = plugin.filter(info("s", labels={"app": "other"}, affinity=together), cache)
    assert rejected(stranger, cache) == {inter_pod_affinity.AFFINITY_REASON: {"a", "b"}}
    cache.add_bound(info("c1", labels={"app": "cache"}), "b")
    got = rejected(plugin.filter(info("c2", labels={"app": "cache"}, affinity=together), cache), cache)
    assert got == {inter_pod_affinity.AFFINITY_REASON: {"a"}}


def _spread(skew: int, mode: str = "DoNotSchedule", key: str = "zone") -> list[dict]:
    return [{"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": mode,
             "labelSelector": {"matchLabels": {"app": "web"}}}]


def test_topology_spread_refuses_domains_that_would_exceed_max_skew():
    cache = cache_of(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}), node("c"))
    cache.add_bound(info("w1", labels={"app": "web"}), "a")
    plugin = pod_topology_spread.PodTopologySpread()
    got = rejected(plugin.filter(info("w2", labels={"app": "web"}, topologySpreadConstraints=_spread(1)), cache),
                   cache)
    assert got == {pod_topology_spread.REASON: {"a"}, pod_topology_spread.MISSING_LABEL_REASON: {"c"}}
    loose = plugin.filter(info("w2", labels={"app": "web"}, topologySpreadConstraints=_spread(2)), cache)
    assert rejected(loose, cache) == {pod_topology_spread.MISSING_LABEL_REASON: {"c"}}


def test_topology_spread_schedule_anyway_scores_emptier_domains_higher():
    cache = cache_of(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}))
    cache.add_bound(info("w1", labels={"app": "web"}), "a")
    pod = info("w2", labels={"app": "web"}, topologySpreadConstraints=_spread(1, "ScheduleAnyway"))
    plugin = pod_topology_spread.PodTopologySpread()
    assert plugin.filter(pod, cache) == []
    scores = plugin.score(pod, cache, cache.valid_slots())
    assert scores[cache.slot["b"]] > scores[cache.slot["a"]]


def test_least_allocated_and_balanced_allocation():
    cache = cache_of(node("busy", cpu="4", memory="8Gi"), node("idle", cpu="4", memory="8Gi"))
    cache.add_bound(info("x", cpu="3", memory="1Gi"), "busy")
    pod = info("p", cpu="500m", memory="1Gi")
    slots = np.array([cache.slot["busy"], cache.slot["idle"]])
    least = least_allocated.LeastAllocated().score(pod, cache, slots)
    assert least[1] > least[0]
    # idle after the pod: cpu 1/8, memory 1/8 -> perfectly balanced
    balanced = balanced_allocation.BalancedAllocation().score(pod, cache, slots)
    assert balanced[1] == pytest.approx(100.0) and balanced[0] < balanced[1]


def test_workload_spread_prefers_nodes_without_the_workloads_pods():
    cache = cache_of(node("a"), node("b"))
    cache.add_bound(info("r1", owner_uid="rs-1"), "a")
    plugin = workload_spread.WorkloadSpread()
    scores = plugin.score(info("r2", owner_uid="rs-1"), cache, cache.valid_slots())
    assert scores[cache.slot["b"]] > scores[cache.slot["a"]]
    assert plugin.score(info("other", owner_uid="rs-2"), cache, cache.valid_slots()) is None
