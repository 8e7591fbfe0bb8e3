"""The pure parts of the EndpointSlice and Endpoints controllers: which pods count, port
resolution, slicing, and the create/replace/delete plan."""

from __future__ import annotations

from typing import Any

from controllers.endpoints import desired_subsets, truncate
from controllers.endpointslice import (
    desired_slices,
    find_port,
    plan,
    should_be_endpoint,
    slice_object,
)


def pod(name: str, ip: str | None, *, ready: bool = True, port: int = 8080, deleting: bool = False,
        phase: str = "Running", restart: str = "Always") -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "web"}}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": md, "status": status,
            "spec": {"restartPolicy": restart, "containers": [
                {"name": "c", "ports": [{"name": "http", "containerPort": port}]}]}}


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"a": "b"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http",
                                                            "protocol": "TCP"}], **spec}}


def test_which_pods_count() -> None:
    assert should_be_endpoint(pod("a", "10.0.0.1"), include_terminating=False)
    assert not should_be_endpoint(pod("a", None), include_terminating=True)
    assert not should_be_endpoint(pod("a", "fd00::1"), include_terminating=True)  # IPv4 Services only
    assert not should_be_endpoint(pod("a", "10.0.0.1", deleting=True), include_terminating=False)
    assert should_be_endpoint(pod("a", "10.0.0.1", deleting=True), include_terminating=True)
    assert not should_be_endpoint(pod("a", "10.0.0.1", phase="Succeeded", restart="Never"), include_terminating=True)
    assert should_be_endpoint(pod("a", "10.0.0.1", phase="Failed", restart="OnFailure"), include_terminating=True)


def test_find_port() -> None:
    p = pod("a", "10.0.0.1", port=9000)
    assert find_port(p, {"targetPort": "http", "protocol": "TCP"}) == 9000
    assert find_port(p, {"targetPort": "http", "protocol": "UDP"}) is None
    assert find_port(p, {"targetPort": "grpc"}) is None
    assert find_port(p, {"targetPort": 7000}) == 7000


def test_slices_are_cut_at_the_limit_and_split_by_ports() -> None:
    pods = [pod(f"p{i}", f"10.0.0.{i}") for i in range(1, 6)] + [pod("q", "10.0.1.1", port=9000)]
    slices = desired_slices(service(), pods, max_endpoints=2)
    sizes = sorted((s["ports"][0]["port"], len(s["endpoints"])) for s in slices)
    assert sizes == [(8080, 1), (8080, 2), (8080, 2), (9000, 1)]
    assert desired_slices(service(), []) == [{"endpoints": [], "ports": []}]


def test_plan_reuses_updates_and_deletes() -> None:
    svc = service()
    wanted = [slice_object(svc, c) for c in desired_slices(svc, [pod("a", "10.0.0.1")])]
    same = {**wanted[0], "metadata": {**wanted[0]["metadata"], "name": "web-1", "resourceVersion": "5"}}
    assert plan([same], wanted) == ([], [], [])
    stale = {**same, "endpoints": []}
    create, replace, delete = plan([stale], wanted)
    assert not create and not delete and replace[0]["metadata"]["name"] == "web-1"
    assert replace[0]["metadata"]["resourceVersion"] == "5" and "generateName" not in replace[0]["metadata"]
    other_ports = {**same, "ports": [{"name": "http", "port": 1, "protocol": "TCP"}]}
    create, replace, delete = plan([other_ports], wanted)
    assert len(create) == 1 and not replace and delete == [other_ports]


def test_endpoints_subsets() -> None:
    pods = [pod("a", "10.0.0.2"), pod("b", "10.0.0.1", ready=False), pod("c", "10.0.0.3", deleting=True)]
    (subset,) = desired_subsets(service(), pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.2"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.1"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    (published,) = desired_subsets(service(publishNotReadyAddresses=True), pods)
    assert [a["ip"] for a in published["addresses"]] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    headless = desired_subsets(service(clusterIP="None", ports=[]), pods[:1])
    assert headless == [{"addresses": [{"ip": "10.0.0.2", "targetRef": {
        "kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}]}]


def test_endpoints_truncated_past_capacity_ready_first() -> None:
    pods = [pod(f"r{i}", f"10.0.0.{i}") for i in range(1, 4)] + [pod(f"n{i}", f"10.0.1.{i}", ready=False)
                                                               for i in range(1, 4)]
    subsets = desired_subsets(service(), pods)
    assert not truncate(subsets, limit=6)
    assert truncate(subsets, limit=4)
    (subset,) = subsets
    assert len(subset["addresses"]) == 3 and [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.1.1"]
    assert truncate(subsets, limit=2) and "notReadyAddresses" not in subsets[0]
