"""Pure parts of the ReplicaSet and Deployment controllers and node IPAM: template normalisation and
hashing, int-or-percent fields, pod ranking, status counting, conditions, CIDR allocation."""

from __future__ import annotations

import copy

import pytest

from controllers import deployment as dep
from controllers import replicaset as rsc
from controllers.node_ipam import CidrAllocator, IpamConfigError

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "resources": {}}],
                     "securityContext": {}}}


def test_undo_template_hashes_like_the_original() -> None:
    # what kubectl rollout undo sends back: creationTimestamp null, the hash label stripped
    undo = copy.deepcopy(TEMPLATE)
    undo["metadata"]["creationTimestamp"] = None
    rs_template = copy.deepcopy(TEMPLATE)
    rs_template["metadata"]["labels"][dep.HASH_LABEL] = "abc"
    assert dep.template_hash(undo) == dep.template_hash(TEMPLATE)
    assert dep.same_template(rs_template, undo)
    changed = copy.deepcopy(TEMPLATE)
    changed["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert dep.template_hash(changed) != dep.template_hash(TEMPLATE)
    assert not dep.same_template(changed, TEMPLATE)
    assert dep.template_hash(TEMPLATE, 1) != dep.template_hash(TEMPLATE)
    assert set(dep.template_hash(TEMPLATE)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_fnv32a_known_values() -> None:
    assert dep.fnv32a(b"") == 0x811C9DC5
    assert dep.fnv32a(b"a") == 0xE40C292C


@pytest.mark.parametrize(("value", "total", "up", "want"), [
    (1, 10, True, 1), ("25%", 10, True, 3), ("25%", 10, False, 2), ("0%", 5, True, 0), ("100%", 3, False, 3)])
def test_int_or_percent(value: object, total: int, up: bool, want: int) -> None:
    assert dep.scaled_value(value, total, round_up=up, what="x") == want


@pytest.mark.parametrize("bad", ["abc", "1.5%", True, None, "-3%"])
def test_bad_int_or_percent_is_a_bad_spec(bad: object) -> None:
    with pytest.raises(dep.BadSpec, match="x:"):
        dep.scaled_value(bad, 4, round_up=True, what="x")


def test_surge_and_unavailable_never_both_zero() -> None:
    d = {"spec": {"replicas": 4, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}}}
    assert dep.surge_and_unavailable(d) == (0, 1)
    d["spec"]["strategy"]["rollingUpdate"] = {}
    assert dep.surge_and_unavailable(d) == (1, 1)  # 25% of 4 both ways


def _pod(name: str, *, node: str | None = "n", phase: str = "Running", ready_at: str | None = None,
         created: str = "2026-01-01T00:00:00Z") -> dict:
    conds = [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}] if ready_at else []
    return {"metadata": {"name": name, "creationTimestamp": created, "labels": {"app": "web"}},
            "spec": {"nodeName": node} if node else {}, "status": {"phase": phase, "conditions": conds}}


def test_least_valuable_pods_are_deleted_first() -> None:
    pods = [_pod("ready-old", ready_at="2026-01-01T00:00:00Z"),
            _pod("ready-new", ready_at="2026-01-01T00:05:00Z"),
            _pod("running-unready"),
            _pod("pending", phase="Pending"),
            _pod("unscheduled", node=None, phase="Pending")]
    order = [p["metadata"]["name"] for p in sorted(pods, key=rsc.deletion_rank)]
    assert order == ["unscheduled", "pending", "running-unready", "ready-new", "ready-old"]
    newer = _pod("b", phase="Pending", created="2026-01-02T00:00:00Z")
    older = _pod("a", phase="Pending", created="2026-01-01T00:00:00Z")
    assert sorted([older, newer], key=rsc.deletion_rank)[0] is newer


def test_replica_status_honours_min_ready_seconds() -> None:
    rs = {"metadata": {"generation": 3}, "spec": {"minReadySeconds": 10,
                                                 "template": {"metadata": {"labels": {"app": "web"}}}}}
    t0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    pods = [_pod("a", ready_at="2026-01-01T00:00:00Z"), _pod("b"), _pod("c", ready_at="2025-12-31T23:00:00Z")]
    status, recheck = rsc.replica_status(rs, pods, now=t0 + 4)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 2, "availableReplicas": 1,
                      "observedGeneration": 3}
    assert recheck == pytest.approx(6.05)
    status, recheck = rsc.replica_status(rs, pods, now=t0 + 11)
    assert status["availableReplicas"] == 2 and recheck is None


def test_slow_start_batches() -> None:
    assert rsc.slow_start_batches(10) == [1, 2, 4, 3]
    assert rsc.slow_start_batches(0) == []


def test_pod_from_template_is_owned_and_labelled() -> None:
    rs = {"metadata": {"name": "web-x", "namespace": "ns", "uid": "u"}, "spec": {"template": TEMPLATE}}
    pod = rsc.pod_from_template(rs)
    assert pod["metadata"]["generateName"] == "web-x-"
    assert pod["metadata"]["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                     "name": "web-x", "uid": "u", "controller": True,
                                                     "blockOwnerDeletion": True}
    assert pod["metadata"]["labels"] == {"app": "web"}
    pod["metadata"]["labels"]["x"] = "y"
    assert "x" not in TEMPLATE["metadata"]["labels"], "the template must not be shared"


def _deploy(**status: object) -> dict:
    return {"metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 5,
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
            "status": dict(status)}


def _rs(name: str, replicas: int, available: int) -> dict:
    return {"metadata": {"name": name}, "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available}}


def test_status_counts_and_complete_rollout() -> None:
    new = _rs("web-new", 2, 2)
    status, recheck = dep.next_status(_deploy(), [new], new, now=0)
    assert {k: status[k] for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                   "availableReplicas", "unavailableReplicas")} == {
        "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
        "availableReplicas": 2, "unavailableReplicas": 0}
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert recheck is None


def test_no_progress_past_the_deadline_is_reported() -> None:
    old, new = _rs("web-old", 2, 2), _rs("web-new", 1, 0)
    stuck = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "m",
             "lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    d = _deploy(replicas=3, updatedReplicas=1, readyReplicas=2, availableReplicas=2, conditions=[stuck])
    t0 = 1_767_225_600.0
    status, recheck = dep.next_status(d, [old, new], new, now=t0 + 3)
    assert recheck == pytest.approx(3.0) and status["conditions"][0]["reason"] == "ReplicaSetUpdated"
    status, recheck = dep.next_status(d, [old, new], new, now=t0 + 6)
    cond = status["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"] == 'ReplicaSet "web-new" has timed out progressing.'
    assert recheck is None


def test_new_replicaset_carries_hash_revision_and_owner() -> None:
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "ns", "uid": "d1",
                      "annotations": {"kubernetes.io/change-cause": "v2", dep.REVISION: "1"}},
         "spec": {"replicas": 3, "minReadySeconds": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": TEMPLATE}}
    rs = dep.new_replicaset(d, replicas=1, revision=4, collision_count=0)
    digest = dep.template_hash(TEMPLATE)
    assert rs["metadata"]["name"] == f"web-{digest}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", dep.HASH_LABEL: digest}
    assert rs["spec"]["template"]["metadata"]["labels"][dep.HASH_LABEL] == digest
    assert rs["metadata"]["annotations"][dep.REVISION] == "4"
    assert rs["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v2"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == "d1"
    assert rs["spec"]["minReadySeconds"] == 2 and rs["spec"]["replicas"] == 1
    assert dep.HASH_LABEL not in TEMPLATE["metadata"]["labels"]


def test_cidr_allocator_hands_out_lowest_free() -> None:
    alloc = CidrAllocator("10.42.0.0/16")
    assert alloc.first_free(set()) == "10.42.0.0/24"
    assert alloc.first_free({"10.42.0.0/24", "10.42.2.0/24"}) == "10.42.1.0/24"
    tiny = CidrAllocator("10.0.0.0/30", node_mask=31)
    assert tiny.first_free({"10.0.0.0/31", "10.0.0.2/31"}) is None


@pytest.mark.parametrize(("cidr", "mask"), [("10.42.0.0/33", 24), ("10.42.0.1/16", 24), ("x", 24),
                                            ("10.42.0.0/16", 8)])
def test_bad_ipam_config(cidr: str, mask: int) -> None:
    with pytest.raises(IpamConfigError):
        CidrAllocator(cidr, node_mask=mask)
