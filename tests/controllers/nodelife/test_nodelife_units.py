"""The pure parts of node lifecycle, taint eviction, DaemonSet, disruption and eviction logic."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from apiserver import errors
from apiserver.eviction import ignores_budgets, selects, spend_disruption
from controllers.daemonset import (
    HASH_LABEL,
    daemon_pod,
    daemon_status,
    max_unavailable,
    placement,
    plan_rollout,
    target_node,
    template_hash,
)
from controllers.disruption import BudgetError, desired_and_expected, live_disruptions, merge_map, scaled
from controllers.main import duration
from controllers.node_lifecycle import eviction_delay, silent_for, unknown_conditions, wanted_taints
from machinery import meta

T0 = 1_800_000_000.0


def stamp(epoch: float) -> str:
    from datetime import UTC, datetime
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node(name: str = "n1", *, conditions: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
         labels: dict[str, str] | None = None, unschedulable: bool = False, created: float = T0) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels or {}, "creationTimestamp": stamp(created)}, "spec": spec,
            "status": {"conditions": [{"type": t, "status": s} for t, s in (conditions or {}).items()]}}


def lease(renewed: float) -> dict[str, Any]:
    return {"spec": {"renewTime": stamp(renewed)}}


# --- node health -----------------------------------------------------------------------------------

def test_silence_is_measured_from_the_latest_lease_renewal() -> None:
    n = node(conditions={"Ready": "True"})
    assert silent_for(n, lease(T0 + 100), grace=40, now=T0 + 120) == (False, pytest.approx(20))
    assert silent_for(n, lease(T0 + 100), grace=40, now=T0 + 141)[0]
    # never heard from: the startup grace (60 s) counts from creation
    assert not silent_for(n, None, grace=2, now=T0 + 59)[0]
    assert silent_for(n, None, grace=2, now=T0 + 61)[0]


def test_unknown_conditions_reword_the_monitored_ones_and_fill_missing() -> None:
    n = node(conditions={"Ready": "True", "MemoryPressure": "False", "NetworkUnavailable": "False"})
    out = {c["type"]: c for c in unknown_conditions(n, now="2027-01-01T00:00:00Z") or []}
    assert out["Ready"]["status"] == "Unknown" and out["Ready"]["reason"] == "NodeStatusUnknown"
    assert out["Ready"]["message"] == "Kubelet stopped posting node status."
    assert out["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
    assert out["NetworkUnavailable"]["status"] == "False", "only the kubelet-owned conditions change"
    already = node(conditions={t: "Unknown" for t in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")})
    assert unknown_conditions(already, now="x") is None


@pytest.mark.parametrize(("conditions", "unschedulable", "expected"), [
    ({"Ready": "True"}, False, set()),
    ({"Ready": "False"}, False, {("node.kubernetes.io/not-ready", "NoSchedule"),
                                 ("node.kubernetes.io/not-ready", "NoExecute")}),
    ({"Ready": "Unknown"}, False, {("node.kubernetes.io/unreachable", "NoSchedule"),
                                   ("node.kubernetes.io/unreachable", "NoExecute")}),
    ({"Ready": "True", "DiskPressure": "True"}, True, {("node.kubernetes.io/disk-pressure", "NoSchedule"),
                                                       ("node.kubernetes.io/unschedulable", "NoSchedule")}),
])
def test_taints_follow_conditions(conditions: dict[str, str], unschedulable: bool,
                                  expected: set[tuple[str, str]]) -> None:
    foreign = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    stale = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2020-01-01T00:00:00Z"}
    taints = wanted_taints(node(conditions=conditions, unschedulable=unschedulable, taints=[foreign, stale]),
                           now="2027-01-01T00:00:00Z")
    assert {(t["key"], t["effect"]) for t in taints} == expected | {("dedicated", "NoSchedule")}
    for t in taints:
        if (t["key"], t["effect"]) == ("node.kubernetes.io/unreachable", "NoExecute"):
            assert t["timeAdded"] == "2020-01-01T00:00:00Z", "an existing taint keeps its timeAdded"
        if t["key"] == "node.kubernetes.io/not-ready" and t["effect"] == "NoExecute":
            assert t["timeAdded"] == "2027-01-01T00:00:00Z"


def test_eviction_delay_from_tolerations() -> None:
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": meta.now()}
    now = meta.parse_time(taint["timeAdded"])
    assert eviction_delay([], [taint], now=now) == 0.0
    forever = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert eviction_delay([forever], [taint], now=now) is None
    short = {**forever, "tolerationSeconds": 5}
    longer = {"operator": "Exists", "tolerationSeconds": 300}
    assert eviction_delay([short, longer], [taint], now=now + 1) == pytest.approx(4)
    assert eviction_delay([short], [taint], now=now + 9) == 0.0
    assert eviction_delay([], [{"key": "x", "effect": "NoSchedule"}], now=now) is None


# --- DaemonSet -------------------------------------------------------------------------------------

def test_placement_rules() -> None:
    spec: dict[str, Any] = {"containers": [], "nodeSelector": {"role": "edge"}}
    assert placement(spec, node(labels={"role": "core"})) == (False, False)
    edge = {"role": "edge"}
    assert placement(spec, node(labels=edge)) == (True, True)
    assert placement(spec, node(labels=edge, taints=[{"key": "x", "effect": "NoSchedule"}])) == (False, True)
    assert placement(spec, node(labels=edge, taints=[{"key": "x", "effect": "NoExecute"}])) == (False, False)
    cordoned = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    assert placement(spec, node(labels=edge, taints=cordoned)) == (True, True), "daemon pods tolerate these"
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
    assert placement({"affinity": affinity}, node(labels={"zone": "b"}))[0] is False
    assert placement({"affinity": affinity}, node(labels={"zone": "a"}))[0] is True


def ds_obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "ns", "uid": "u1", "generation": 3},
            "spec": {"template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "a", "image": "i"}],
                                           "affinity": {"nodeAffinity": {"preferred": "kept"}}}}, **spec}}


def test_daemon_pod_is_pinned_by_match_fields_and_labelled() -> None:
    pod = daemon_pod(ds_obj(), node="n7", revision_hash="abc")
    assert target_node(pod) == "n7"
    assert pod["metadata"]["labels"] == {"app": "agent", HASH_LABEL: "abc", "pod-template-generation": "3"}
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert pod["spec"]["affinity"]["nodeAffinity"]["preferred"] == "kept"
    assert target_node({"spec": {"nodeName": "n2"}}) == "n2"
    assert target_node({"spec": {}}) is None


def test_template_hash_is_stable_and_changes_with_the_template() -> None:
    t = ds_obj()["spec"]["template"]
    assert template_hash(t) == template_hash(dict(reversed(list(t.items()))))
    changed = {**t, "spec": {**t["spec"], "containers": [{"name": "a", "image": "j"}]}}
    assert template_hash(changed) != template_hash(t)
    assert template_hash(t, 1) != template_hash(t)
    assert len(template_hash(t)) == 10


def daemon(name: str, *, revision: str, ready: bool = True) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp(T0)}]
    return {"metadata": {"name": name, "uid": name, "labels": {HASH_LABEL: revision}, "creationTimestamp": "t"},
            "status": {"phase": "Running", "conditions": conditions}}


def test_rolling_update_respects_max_unavailable() -> None:
    ds = ds_obj(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}})
    nodes = {"a", "b", "c"}
    old = {n: [daemon(f"p-{n}", revision="old")] for n in nodes}
    plan = plan_rollout(ds, old, should_run=nodes, current="new", now=T0 + 10)
    assert len(plan.delete) == 1 and not plan.create
    # one node is already down (its new pod not ready): nothing more may go
    mid = {**old, "a": [daemon("p-a2", revision="new", ready=False)]}
    assert plan_rollout(ds, mid, should_run=nodes, current="new", now=T0 + 10).delete == []
    # an old pod that is unavailable anyway is replaced regardless
    sick = {**mid, "b": [daemon("p-b", revision="old", ready=False)]}
    assert [p["metadata"]["name"] for p in plan_rollout(ds, sick, should_run=nodes, current="new",
                                                        now=T0 + 10).delete] == ["p-b"]
    on_delete = ds_obj(updateStrategy={"type": "OnDelete"})
    assert plan_rollout(on_delete, old, should_run=nodes, current="new", now=T0).delete == []


def test_rolling_update_with_surge_creates_before_deleting() -> None:
    ds = ds_obj(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    nodes = {"a", "b"}
    old = {n: [daemon(f"p-{n}", revision="old")] for n in nodes}
    plan = plan_rollout(ds, old, should_run=nodes, current="new", now=T0 + 10)
    assert plan.create == ["a"] and plan.delete == []
    both = {**old, "a": [daemon("p-a", revision="old"), daemon("p-a2", revision="new")]}
    plan = plan_rollout(ds, both, should_run=nodes, current="new", now=T0 + 10)
    assert [p["metadata"]["name"] for p in plan.delete] == ["p-a"] and plan.create == []


def test_max_unavailable_scales_percentages() -> None:
    pct = ds_obj(updateStrategy={"rollingUpdate": {"maxUnavailable": "25%"}})
    assert max_unavailable(pct, 10) == (3, 0)
    zero = ds_obj(updateStrategy={"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    assert max_unavailable(zero, 10) == (1, 0)


def test_daemon_status_counts() -> None:
    by_node = {"a": [daemon("pa", revision="new")], "b": [daemon("pb", revision="old", ready=False)],
               "x": [daemon("px", revision="new")]}
    status, recheck = daemon_status(ds_obj(), by_node, should_run={"a", "b", "c"}, current="new", now=T0 + 5)
    assert status == {"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberMisscheduled": 1,
                      "numberReady": 1, "numberAvailable": 1, "updatedNumberScheduled": 1,
                      "observedGeneration": 3, "numberUnavailable": 2}
    assert recheck is None
    _, later = daemon_status(ds_obj(minReadySeconds=10), by_node, should_run={"a"}, current="new", now=T0 + 4)
    assert later == pytest.approx(6.05)


# --- disruption budgets ----------------------------------------------------------------------------

def test_scaled_int_or_percent() -> None:
    assert scaled("50%", 5, round_up=True) == 3
    assert scaled("50%", 5, round_up=False) == 2
    assert scaled(2, 5, round_up=True) == 2
    with pytest.raises(BudgetError):
        scaled("half", 5, round_up=True)


def test_desired_and_expected() -> None:
    pods = [{}, {}, {}]
    assert desired_and_expected({"minAvailable": 2}, pods, scale_of=lambda _: 99) == (2, 3)
    assert desired_and_expected({"minAvailable": "50%"}, pods, scale_of=lambda _: 5) == (3, 5)
    assert desired_and_expected({"maxUnavailable": 1}, pods, scale_of=lambda _: 4) == (3, 4)
    assert desired_and_expected({"maxUnavailable": "30%"}, pods, scale_of=lambda _: 4) == (2, 4)
    assert desired_and_expected({"maxUnavailable": 9}, pods, scale_of=lambda _: 4) == (0, 4)
    assert desired_and_expected({}, pods, scale_of=lambda _: 4) == (0, 0)


def test_live_disruptions_drop_expired_and_deleted_pods() -> None:
    pods = {"a": {"metadata": {}}, "b": {"metadata": {"deletionTimestamp": "t"}}, "c": {"metadata": {}}}
    recorded = {"a": stamp(T0), "b": stamp(T0), "c": stamp(T0 - 500), "gone": stamp(T0)}
    kept, first = live_disruptions(recorded, pods, now=T0 + 20)
    assert kept == {"a": stamp(T0)} and first == pytest.approx(100)


def test_merge_map_nulls_removed_keys() -> None:
    assert merge_map({"a": 1, "b": 2}, {"b": 3}) == {"a": None, "b": 3}
    assert merge_map({"a": 1}, {}) is None


def budget(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "b", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "x"}}}, "status": {"observedGeneration": 1, **status}}


def test_spend_disruption() -> None:
    spent = spend_disruption(budget(disruptionsAllowed=1, desiredHealthy=1, currentHealthy=2), "p1", now="T")
    assert spent["status"]["disruptionsAllowed"] == 0
    assert spent["status"]["disruptedPods"] == {"p1": "T"}
    assert spent["status"]["conditions"][0]["status"] == "False"
    with pytest.raises(errors.ApiError) as none_left:
        spend_disruption(budget(disruptionsAllowed=0, desiredHealthy=2, currentHealthy=2), "p1", now="T")
    assert none_left.value.code == 429
    assert none_left.value.details == {"causes": [{"reason": "DisruptionBudget", "message":
                                                   "The disruption budget b needs 2 healthy pods and has 2 currently"}]}
    stale = budget(disruptionsAllowed=3)
    stale["metadata"]["generation"] = 2
    with pytest.raises(errors.ApiError) as behind:
        spend_disruption(stale, "p1", now="T")
    assert "still being processed" in behind.value.details["causes"][0]["message"]
    with pytest.raises(errors.ApiError) as negative:
        spend_disruption(budget(disruptionsAllowed=-1), "p1", now="T")
    assert negative.value.code == 403


def test_which_pods_and_budgets_count() -> None:
    pod = {"metadata": {"labels": {"app": "x"}}, "status": {"phase": "Running"}}
    assert selects(budget(), pod)
    assert not selects({"spec": {}}, pod), "a null selector selects nothing"
    assert selects({"spec": {"selector": {}}}, pod), "an empty selector selects everything"
    assert not ignores_budgets(pod)
    assert ignores_budgets({"status": {"phase": "Succeeded"}})
    assert ignores_budgets({"status": {}})
    assert ignores_budgets({"metadata": {"deletionTimestamp": "t"}, "status": {"phase": "Running"}})


def test_duration_flag() -> None:
    assert duration("1m30s") == 90 and duration("500ms") == 0.5
    for bad in ("40", "", "0s", "-1s"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)
