"""``pinnace proxy`` against a real ``pinnace server``: Service and EndpointSlice objects become
rules in a node namespace, traffic spreads, a restart keeps traffic flowing and changes nothing,
deleting the service removes its rules, a periodic full resync repairs hand edits, and ``--cleanup``
removes the table."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from netkit import NODE_IP, SERVER_PORT, Node, needs_net
from proxy_env import BACKENDS, CLUSTER_CIDR

from e2e.cluster import Server
from machinery.client import ApiClient, Resource
from machinery.kubeconfig import load_kubeconfig
from proxy.nft import Nft

pytestmark = needs_net
REPO = Path(__file__).resolve().parents[2]
NAMESPACES = Resource("", "v1", "namespaces", False)
SERVICES = Resource("", "v1", "services", True)
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("proxy") / "data"
    data.mkdir()
    srv = Server(data).start("--no-controllers")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=10) as c:
        yield c


def start_proxy(server: Server, node: Node, table: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "proxy", "--kubeconfig", str(server.kubeconfig),
                             "--node-name", "n1", "--node-ip", NODE_IP, "--cluster-cidr", CLUSTER_CIDR,
                             "--table", table, "--netns", node.netns, *extra],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_proxy(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


async def wait_for(nft: Nft, predicate: object, *, limit: float = 15) -> str:
    deadline = time.monotonic() + limit
    text = None
    while time.monotonic() < deadline:
        text = await nft.list_table(terse=True)
        if text is not None and predicate(text):  # type: ignore[operator]
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"table never matched; last listing:\n{text}")


async def test_proxy_process_programs_services_from_the_api(server: Server, client: ApiClient, node: Node) -> None:
    ns = f"px-{secrets.token_hex(3)}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    created = await client.create(SERVICES, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
        "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": SERVER_PORT}]}},
        namespace=ns)
    cluster_ip, node_port = created["spec"]["clusterIP"], created["spec"]["ports"][0]["nodePort"]
    await client.create(SLICES, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": ns, "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": SERVER_PORT, "protocol": "TCP"}],
        "endpoints": [{"addresses": [node.pods[label]], "conditions": {"ready": True}, "nodeName": "n1"}
                      for label in BACKENDS]}, namespace=ns)
    table = f"pxapi-{secrets.token_hex(3)}"
    nft = Nft(table, netns=node.netns)
    proc = start_proxy(server, node, table)
    try:
        before = await wait_for(nft, lambda t: f"{ns}/web/tcp/http" in t and t.count("dnat to 10.244.0.") == 3)
        counts = Counter(body for body, _ in node.get("client", f"http://{cluster_ip}/", count=60))
        assert all(counts[label] >= 10 for label in BACKENDS), counts
        assert len(node.get("node", f"http://{NODE_IP}:{node_port}/", count=5)) == 5
        stop_proxy(proc)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        # rules stay while the proxy is down, and a restart leaves the table exactly as it was
        assert {body for body, _ in node.get("client", f"http://{cluster_ip}/", count=5)} <= set(BACKENDS)
        proc = start_proxy(server, node, table, "--full-resync", "0.5")
        await asyncio.sleep(1.0)
        assert await wait_for(nft, lambda t: f"{ns}/web" in t) == before
        # a hand-made change is undone by the periodic full rewrite
        await nft.apply(f"flush chain ip {table} services\n")
        assert "vmap @service-ips" not in (await nft.list_table(terse=True) or "")
        assert await wait_for(nft, lambda t: t == before, limit=10) == before
        await client.delete(SERVICES, "web", namespace=ns)
        await wait_for(nft, lambda t: f"{ns}/web" not in t and "dnat to 10.244.0." not in t)
    finally:
        stop_proxy(proc)
        await client.delete(NAMESPACES, ns)
    argv = [sys.executable, "-m", "cli.main", "proxy", "--table", table, "--netns", node.netns, "--cleanup"]
    cleanup = await asyncio.to_thread(subprocess.run, argv, cwd=REPO, capture_output=True, timeout=30)
    assert cleanup.returncode == 0, cleanup.stderr
    assert await nft.list_table() is None
