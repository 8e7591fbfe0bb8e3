"""The EndpointSlice and Endpoints controllers against a real ``pinnace server``.

No kubelet: the test creates pods and patches their status (podIP, Ready) itself, as a kubelet would,
and watches the slices and Endpoints follow.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from controller_env import PODS, SERVICES, Running, eventually

from e2e.cluster import Kubectl, Server, kubectl_missing
from machinery.client import ApiClient, NotFound, Resource

SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True)
ENDPOINTS = Resource("", "v1", "endpoints", True)
FAST = 1.0  # seconds within which a status change must show up


def web_pod(name: str, *, port: int = 8080, labels: dict[str, str] | None = None,
            finalizers: list[str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": labels or {"app": "web"}}
    if finalizers:
        md["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"nodeName": "node-a", "containers": [
                {"name": "main", "image": "busybox:1.36", "ports": [{"name": "http", "containerPort": port}]}]}}


def web_service(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                     **spec}}


async def set_status(client: ApiClient, ns: str, name: str, *, ip: str | None, ready: bool) -> None:
    status: dict[str, Any] = {"phase": "Running",
                              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    await client.patch(PODS, name, {"status": status}, namespace=ns, subresource="status")


async def slices_of(client: ApiClient, ns: str, svc: str) -> list[dict[str, Any]]:
    page = await client.list(SLICES, namespace=ns, label_selector=f"kubernetes.io/service-name={svc}")
    return page.get("items") or []


def by_ip(slices: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], list[int]]]:
    """ip -> (endpoint, the port numbers of its slice)."""
    out = {}
    for s in slices:
        ports = [p["port"] for p in s.get("ports") or []]
        for e in s.get("endpoints") or []:
            out[e["addresses"][0]] = (e, ports)
    return out


async def test_slices_and_endpoints_follow_pods(client: ApiClient, namespace: str, running: Running) -> None:
    ns = namespace
    async with running("endpointslice", "endpoints", "garbagecollector"):
        svc = await client.create(SERVICES, web_service("web"), namespace=ns)
        await client.create(PODS, web_pod("a", port=8080), namespace=ns)
        await client.create(PODS, web_pod("b", port=9090), namespace=ns)
        await client.create(PODS, web_pod("no-ip"), namespace=ns)
        await client.create(PODS, web_pod("other", labels={"app": "db"}), namespace=ns)
        await set_status(client, ns, "a", ip="10.42.0.5", ready=True)
        await set_status(client, ns, "b", ip="10.42.0.6", ready=False)
        await set_status(client, ns, "other", ip="10.42.0.7", ready=True)

        async def two_slices() -> bool:
            found = by_ip(await slices_of(client, ns, "web"))
            return set(found) == {"10.42.0.5", "10.42.0.6"}
        await eventually(two_slices, within=5, what="a slice per resolved port")
        slices = await slices_of(client, ns, "web")
        assert len(slices) == 2  # different numbers for the port named http -> different slices
        found = by_ip(slices)
        a, a_ports = found["10.42.0.5"]
        b, b_ports = found["10.42.0.6"]
        assert (a_ports, b_ports) == ([8080], [9090])
        assert a["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert b["conditions"] == {"ready": False, "serving": False, "terminating": False}
        assert a["nodeName"] == "node-a" and a["targetRef"]["name"] == "a" and a["targetRef"]["kind"] == "Pod"
        for s in slices:
            labels = s["metadata"]["labels"]
            assert labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
            assert labels["tier"] == "front" and s["addressType"] == "IPv4"
            assert s["ports"][0]["name"] == "http" and s["ports"][0]["protocol"] == "TCP"
            owner = s["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["uid"], owner["controller"]) == ("Service", svc["metadata"]["uid"], True)

        async def endpoints_split() -> bool:
            try:
                ep = await client.get(ENDPOINTS, "web", namespace=ns)
            except NotFound:
                return False
            ready = [(a["ip"], s["ports"][0]["port"]) for s in ep.get("subsets") or [] for a in s.get("addresses", [])]
            unready = [(a["ip"], s["ports"][0]["port"])
                       for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses", [])]
            return ready == [("10.42.0.5", 8080)] and unready == [("10.42.0.6", 9090)]
        await eventually(endpoints_split, within=5, what="Endpoints with ready and not-ready addresses")
        ep = await client.get(ENDPOINTS, "web", namespace=ns)
        assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]

        # readiness flips show up within a second, in both objects
        await set_status(client, ns, "b", ip="10.42.0.6", ready=True)
        await set_status(client, ns, "a", ip="10.42.0.5", ready=False)

        async def flipped() -> bool:
            found = by_ip(await slices_of(client, ns, "web"))
            ep = await client.get(ENDPOINTS, "web", namespace=ns)
            ready = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses", [])}
            return found["10.42.0.6"][0]["conditions"]["ready"] and not found["10.42.0.5"][0]["conditions"]["ready"] \
                and ready == {"10.42.0.6"}
        await eventually(flipped, within=FAST, what="readiness flip reflected")

        # a pod change that does not matter to the Service writes nothing
        versions = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in await slices_of(client, ns, "web")}
        ep_version = (await client.get(ENDPOINTS, "web", namespace=ns))["metadata"]["resourceVersion"]
        await client.patch(PODS, "a", {"metadata": {"annotations": {"touched": "yes"}}}, namespace=ns)
        await asyncio.sleep(0.5)
        assert {s["metadata"]["name"]: s["metadata"]["resourceVersion"]
                for s in await slices_of(client, ns, "web")} == versions
        assert (await client.get(ENDPOINTS, "web", namespace=ns))["metadata"]["resourceVersion"] == ep_version

        # deleting the Service takes its slices (garbage collector) and Endpoints along
        await client.delete(SERVICES, "web", namespace=ns)

        async def all_gone() -> bool:
            try:
                await client.get(ENDPOINTS, "web", namespace=ns)
            except NotFound:
                return not await slices_of(client, ns, "web")
            return False
        await eventually(all_gone, within=8, what="slices and Endpoints removed with the Service")


async def test_terminating_and_publish_not_ready(client: ApiClient, namespace: str, running: Running) -> None:
    ns = namespace
    async with running("endpointslice", "endpoints"):
        await client.create(SERVICES, web_service("plain"), namespace=ns)
        await client.create(SERVICES, web_service("tolerant", publishNotReadyAddresses=True), namespace=ns)
        await client.create(PODS, web_pod("held", finalizers=["test.pinnace.io/hold"]), namespace=ns)
        await client.create(PODS, web_pod("lazy"), namespace=ns)
        await set_status(client, ns, "held", ip="10.42.1.5", ready=True)
        await set_status(client, ns, "lazy", ip="10.42.1.6", ready=False)

        async def published() -> bool:
            found = by_ip(await slices_of(client, ns, "tolerant"))
            return "10.42.1.6" in found and found["10.42.1.6"][0]["conditions"]["ready"] is True
        await eventually(published, within=5, what="publishNotReadyAddresses marks an unready pod ready")
        lazy = by_ip(await slices_of(client, ns, "tolerant"))["10.42.1.6"][0]
        assert lazy["conditions"]["serving"] is False

        await client.delete(PODS, "held", namespace=ns)

        async def terminating() -> bool:
            found = by_ip(await slices_of(client, ns, "plain"))
            ep = await client.get(ENDPOINTS, "plain", namespace=ns)
            ips = {a["ip"] for s in ep.get("subsets") or [] for key in ("addresses", "notReadyAddresses")
                   for a in s.get(key, [])}
            return "10.42.1.5" in found and found["10.42.1.5"][0]["conditions"] == \
                {"ready": False, "serving": True, "terminating": True} and "10.42.1.5" not in ips
        await eventually(terminating, within=5, what="a terminating pod shown as terminating")
        tolerant = await client.get(ENDPOINTS, "tolerant", namespace=ns)
        kept = {a["ip"] for s in tolerant.get("subsets") or [] for a in s.get("addresses", [])}
        assert "10.42.1.5" in kept  # publishNotReadyAddresses keeps terminating pods in Endpoints
        await client.patch(PODS, "held", {"metadata": {"finalizers": None}}, namespace=ns, patch_type="merge")


async def test_selectorless_services_are_left_alone(client: ApiClient, namespace: str, running: Running) -> None:
    ns = namespace
    async with running("endpointslice", "endpoints"):
        manual = web_service("manual")
        del manual["spec"]["selector"]
        await client.create(SERVICES, manual, namespace=ns)
        await client.create(SERVICES, web_service("marker"), namespace=ns)
        await client.create(PODS, web_pod("a"), namespace=ns)
        await set_status(client, ns, "a", ip="10.42.2.5", ready=True)

        async def marker_done() -> bool:
            return bool(by_ip(await slices_of(client, ns, "marker")))
        await eventually(marker_done, within=5, what="the selector Service reconciled")
        assert await slices_of(client, ns, "manual") == []
        try:
            await client.get(ENDPOINTS, "manual", namespace=ns)
            raise AssertionError("Endpoints created for a selector-less Service")
        except NotFound:
            pass


async def test_empty_service_gets_placeholder_slice(client: ApiClient, namespace: str, running: Running) -> None:
    ns = namespace
    async with running("endpointslice"):
        await client.create(SERVICES, web_service("lonely"), namespace=ns)

        async def placeholder() -> bool:
            return len(await slices_of(client, ns, "lonely")) == 1
        await eventually(placeholder, within=5, what="one empty slice")
        (only,) = await slices_of(client, ns, "lonely")
        assert not only.get("endpoints") and only["addressType"] == "IPv4"


@pytest.mark.skipif(kubectl_missing(), reason="kubectl not installed")
async def test_kubectl_columns(client: ApiClient, namespace: str, running: Running, server: Server,
                               tmp_path: Path) -> None:
    ns = namespace
    async with running("endpointslice", "endpoints"):
        await client.create(SERVICES, web_service("shown"), namespace=ns)
        await client.create(PODS, web_pod("a", port=8080), namespace=ns)
        await set_status(client, ns, "a", ip="10.42.3.5", ready=True)

        async def reconciled() -> bool:
            try:
                ep = await client.get(ENDPOINTS, "shown", namespace=ns)
            except NotFound:
                return False
            return bool(ep.get("subsets")) and bool(by_ip(await slices_of(client, ns, "shown")))
        await eventually(reconciled, within=5, what="Endpoints and slice written")
    kubectl = Kubectl(server.kubeconfig, tmp_path)
    endpoints = (await asyncio.to_thread(kubectl, "get", "endpoints", "shown", "-n", ns)).splitlines()
    assert endpoints[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    assert endpoints[1].split()[:2] == ["shown", "10.42.3.5:8080"]
    slices = (await asyncio.to_thread(kubectl, "get", "endpointslices", "-n", ns,
                                      "-l", "kubernetes.io/service-name=shown")).splitlines()
    assert slices[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    name, address_type, ports, addresses = slices[1].split()[:4]
    assert name.startswith("shown-") and (address_type, ports, addresses) == ("IPv4", "8080", "10.42.3.5")
