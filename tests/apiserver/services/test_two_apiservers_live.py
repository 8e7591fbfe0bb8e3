"""Two ``pinnace server`` processes on one etcd allocate from the same pools: the storage claims must
keep them from handing out one value twice, even when both are asked for it at the same moment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Server
from machinery.client import ApiClient, Invalid, Resource
from machinery.kubeconfig import load_kubeconfig
from tests.etcd_fixture import SKIP_REASON, EtcdServer, etcd_binary

NS = Resource("", "v1", "namespaces", False)
SERVICES = Resource("", "v1", "services", True)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    if etcd_binary() is None:
        pytest.skip(SKIP_REASON)
    root = tmp_path_factory.mktemp("two-apiservers")
    etcd = EtcdServer(root / "etcd").start()
    servers: list[Server] = []
    try:
        for i in range(2):
            data: Path = root / f"apiserver-{i}"
            data.mkdir()
            servers.append(Server(data).start("--datastore", etcd.datastore, "--no-controllers"))
        yield servers
    finally:
        for server in servers:
            server.stop()
        etcd.stop()


def node_port_service(name: str, **port: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80, **port}]}}


async def test_same_explicit_values_asked_of_both_servers(pair: list[Server]) -> None:
    a_server, b_server = pair
    async with ApiClient(load_kubeconfig(a_server.kubeconfig), request_timeout=30) as a, \
            ApiClient(load_kubeconfig(b_server.kubeconfig), request_timeout=30) as b:
        ns = f"s-{uuid.uuid4().hex[:8]}"
        await a.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

        async def attempt(client: ApiClient, name: str, index: int) -> dict[str, Any] | None:
            body = node_port_service(name, nodePort=31000 + index)
            body["spec"]["clusterIP"] = f"10.43.0.{100 + index}"
            try:
                return await client.create(SERVICES, body, namespace=ns)
            except Invalid as e:
                assert "already allocated" in e.message
                return None

        results = await asyncio.gather(*(attempt(client, f"{side}-{i}", i) for i in range(40)
                                         for side, client in (("a", a), ("b", b))))
        won = [r for r in results if r is not None]
        assert len(won) == 40  # each requested value went to exactly one of the two servers
        assert len({r["spec"]["clusterIP"] for r in won}) == 40

        # and dynamic picks from both stay distinct
        made = await asyncio.gather(*(client.create(SERVICES, node_port_service(f"{side}-auto-{i}"), namespace=ns)
                                      for i in range(100) for side, client in (("a", a), ("b", b))))
        ports = [m["spec"]["ports"][0]["nodePort"] for m in made] + [w["spec"]["ports"][0]["nodePort"] for w in won]
        ips = [m["spec"]["clusterIP"] for m in made] + [w["spec"]["clusterIP"] for w in won]
        assert len(set(ports)) == len(ports) and len(set(ips)) == len(ips)
