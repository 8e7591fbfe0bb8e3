"""Cluster IP and node port allocation through a real ``pinnace server``: concurrency, explicit
requests, headless Services, releases, restarts, and what kubectl shows."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from pathlib import Path
from typing import Any

import pytest

from apiserver import allocators
from e2e.cluster import Kubectl, Server, kubectl_missing
from machinery.client import ApiClient, Invalid, NotFound, Resource
from machinery.kubeconfig import load_kubeconfig

NS = Resource("", "v1", "namespaces", False)
SERVICES = Resource("", "v1", "services", True)
ENDPOINTS = Resource("", "v1", "endpoints", True)
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True)
CIDR = ipaddress.ip_network("10.43.0.0/16")


def service(name: str, **spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"port": 80, "targetPort": 8080}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": ports, **spec}}


@pytest.fixture
async def ns(client: ApiClient) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def test_kubernetes_service_and_its_endpoints(client: ApiClient, server: Server) -> None:
    svc = await client.get(SERVICES, "kubernetes", namespace="default")
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"][0]["name"] == "https" and svc["spec"]["ports"][0]["port"] == 443
    assert svc["spec"]["ports"][0]["targetPort"] == server.port
    try:
        ep = await client.get(ENDPOINTS, "kubernetes", namespace="default")
    except NotFound:
        pytest.skip("this host has no non-loopback address to advertise")
    subset = ep["subsets"][0]
    assert subset["ports"] == [{"name": "https", "port": server.port, "protocol": "TCP"}]
    address = subset["addresses"][0]["ip"]
    assert not ipaddress.ip_address(address).is_loopback
    eps = await client.get(SLICES, "kubernetes", namespace="default")
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
    assert eps["endpoints"][0]["addresses"] == [address] and eps["ports"][0]["port"] == server.port


async def test_concurrent_creates_get_distinct_ips(client: ApiClient, ns: str) -> None:
    created = await asyncio.gather(*(client.create(SERVICES, service(f"svc-{i}"), namespace=ns)
                                     for i in range(200)))
    ips = [c["spec"]["clusterIP"] for c in created]
    assert len(set(ips)) == 200
    for ip in ips:
        assert ipaddress.ip_address(ip) in CIDR
        assert ip not in ("10.43.0.1", "10.43.0.10", "10.43.0.0", "10.43.255.255")
        # dynamic picks come from above the static band, which stays for explicit requests
        assert int(ipaddress.ip_address(ip)) >= allocators.IP_POOL.static_end


async def test_requested_ips(client: ApiClient, ns: str) -> None:
    made = await client.create(SERVICES, service("fixed", clusterIP="10.43.0.55"), namespace=ns)
    assert made["spec"]["clusterIPs"] == ["10.43.0.55"]
    with pytest.raises(Invalid) as taken:
        await client.create(SERVICES, service("again", clusterIP="10.43.0.55"), namespace=ns)
    assert taken.value.message == ('Service "again" is invalid: spec.clusterIPs: Invalid value: '
                                   '[]string{"10.43.0.55"}: failed to allocate IP 10.43.0.55: '
                                   'provided IP is already allocated')
    for reserved in ("10.43.0.1", "10.43.0.10"):
        with pytest.raises(Invalid, match="provided IP is already allocated"):
            await client.create(SERVICES, service("reserved", clusterIP=reserved), namespace=ns)
    with pytest.raises(Invalid) as outside:
        await client.create(SERVICES, service("outside", clusterIP="10.99.0.5"), namespace=ns)
    assert "the provided IP (10.99.0.5) is not in the valid range. The range of valid IPs is 10.43.0.0/16" \
        in outside.value.message
    # deleting the Service frees its IP at once
    await client.delete(SERVICES, "fixed", namespace=ns)
    again = await client.create(SERVICES, service("fixed-2", clusterIP="10.43.0.55"), namespace=ns)
    assert again["spec"]["clusterIP"] == "10.43.0.55"


async def test_headless(client: ApiClient, ns: str) -> None:
    made = await client.create(SERVICES, service("headless", clusterIP="None", ports=[]), namespace=ns)
    assert made["spec"]["clusterIP"] == "None" and made["spec"]["clusterIPs"] == ["None"]
    with pytest.raises(Invalid, match=r"spec\.ports: Required value"):
        await client.create(SERVICES, service("portless", ports=[]), namespace=ns)


async def test_node_ports(client: ApiClient, ns: str) -> None:
    auto = await client.create(SERVICES, service("np", type="NodePort", ports=[
        {"name": "a", "port": 80}, {"name": "b", "port": 81}]), namespace=ns)
    numbers = [p["nodePort"] for p in auto["spec"]["ports"]]
    assert len(set(numbers)) == 2 and all(30000 <= n <= 32767 for n in numbers)
    fixed = await client.create(SERVICES, service("np-fixed", type="NodePort", ports=[
        {"port": 80, "nodePort": 30080}]), namespace=ns)
    assert fixed["spec"]["ports"][0]["nodePort"] == 30080
    with pytest.raises(Invalid) as taken:
        await client.create(SERVICES, service("np-dup", type="NodePort", ports=[
            {"port": 80, "nodePort": 30080}]), namespace=ns)
    assert taken.value.message == ('Service "np-dup" is invalid: spec.ports[0].nodePort: Invalid value: 30080: '
                                   'provided port is already allocated')
    with pytest.raises(Invalid, match="may not be used when `type` is 'ClusterIP'"):
        await client.create(SERVICES, service("cip", ports=[{"port": 80, "nodePort": 30081}]), namespace=ns)
    with pytest.raises(Invalid, match="provided port is not in the valid range"):
        await client.create(SERVICES, service("np-low", type="NodePort", ports=[
            {"port": 80, "nodePort": 29999}]), namespace=ns)
    # changing the type to ClusterIP releases the node port (sent back unchanged, as kubectl edit does)
    current = await client.get(SERVICES, "np-fixed", namespace=ns)
    current["spec"]["type"] = "ClusterIP"
    current["spec"].pop("externalTrafficPolicy", None)
    changed = await client.replace(SERVICES, current)
    assert "nodePort" not in changed["spec"]["ports"][0]
    reused = await client.create(SERVICES, service("np-reuse", type="NodePort", ports=[
        {"port": 80, "nodePort": 30080}]), namespace=ns)
    assert reused["spec"]["ports"][0]["nodePort"] == 30080


async def test_restart_keeps_allocations(client: ApiClient, server: Server, ns: str) -> None:
    before = await client.create(SERVICES, service("old", type="NodePort", ports=[{"port": 80}]), namespace=ns)
    old_ip, old_port = before["spec"]["clusterIP"], before["spec"]["ports"][0]["nodePort"]
    server.stop()
    server.start("--no-controllers")
    await client.close()
    async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=30) as fresh:
        with pytest.raises(Invalid, match="provided IP is already allocated"):
            await fresh.create(SERVICES, service("copy-ip", clusterIP=old_ip), namespace=ns)
        with pytest.raises(Invalid, match="provided port is already allocated"):
            await fresh.create(SERVICES, service("copy-port", type="NodePort", ports=[
                {"port": 80, "nodePort": old_port}]), namespace=ns)
        page = await fresh.list(SERVICES)
        used = {s["spec"].get("clusterIP") for s in page["items"]}
        made = await asyncio.gather(*(fresh.create(SERVICES, service(f"new-{i}"), namespace=ns) for i in range(50)))
        assert not {m["spec"]["clusterIP"] for m in made} & used


@pytest.mark.skipif(kubectl_missing(), reason="kubectl not installed")
async def test_kubectl_get_svc_columns(client: ApiClient, server: Server, ns: str, tmp_path: Path) -> None:
    await client.create(SERVICES, service("shown", type="NodePort", clusterIP="10.43.0.77", ports=[
        {"port": 80, "nodePort": 31234}]), namespace=ns)
    kubectl = Kubectl(server.kubeconfig, tmp_path)
    out = (await asyncio.to_thread(kubectl, "get", "svc", "shown", "-n", ns)).splitlines()
    assert out[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert out[1].split()[:5] == ["shown", "NodePort", "10.43.0.77", "<none>", "80:31234/TCP"]
