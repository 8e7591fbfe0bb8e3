"""The real network of a cluster without its daemons (root): bridge and node namespaces made under the
host lock, nodes reaching the host and each other, host-gw routes from Node objects into every node
namespace (entered from a thread, no fork) and the host, then everything removed again."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.multinode import hostgw, layout, lifecycle, netns, nsthread

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None,
                                reason="needs root, ip and nft")


def _ip(*argv: str) -> str:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[layout.Cluster]:
    made = lifecycle.allocate(f"nt{uuid.uuid4().hex[:6]}", root=str(tmp_path), nodes_count=2, datastore="sqlite",
                              control_planes=1)
    try:
        for node in made.nodes:
            netns.create_node(made, node, runner=netns.Runner())
        yield made
    finally:
        for node in made.nodes:
            netns.delete_node(node, netns.Runner())
        netns.delete_cluster_network(made, netns.Runner())


def _listener(address: str) -> socket.socket:
    server = socket.socket()
    server.bind((address, 0))
    server.listen(1)
    return server


def _connects(address: str, port: int) -> bool:
    with socket.create_connection((address, port), timeout=3):
        return True


def test_nodes_reach_the_host_and_each_other(cluster: layout.Cluster) -> None:
    first, second = cluster.nodes
    on_host = _listener(cluster.gateway)
    on_second = nsthread.in_namespace(second.netns, lambda: _listener(second.ip))  # a socket stays in its netns
    with on_host, on_second:
        for server in (on_host, on_second):
            address, port = server.getsockname()
            assert nsthread.in_namespace(first.netns, lambda a=address, p=port: _connects(a, p))
    with pytest.raises(OSError):  # the node's address exists only inside its namespace
        _listener(first.ip)
    assert cluster.record.exists()  # saved before anything was made


def test_a_thread_in_a_node_namespace_sees_only_that_namespace(cluster: layout.Cluster) -> None:
    inside = nsthread.in_namespace(cluster.nodes[0].netns, lambda: {n for _, n in socket.if_nameindex()})
    assert inside == {"lo", "eth0"}
    assert cluster.bridge in {n for _, n in socket.if_nameindex()}  # this thread never left the host
    with pytest.raises(FileNotFoundError):
        nsthread.in_namespace("pinnace-no-such-namespace", lambda: None)


def test_routes_follow_the_nodes_and_go_away(cluster: layout.Cluster) -> None:
    first, second = cluster.nodes
    nodes = [{"metadata": {"name": n.name}, "spec": {"podCIDR": f"10.{100 + cluster.index}.{i}.0/24"},
              "status": {"addresses": [{"type": "InternalIP", "address": n.ip}]}}
             for i, n in enumerate(cluster.nodes)]
    asyncio.run(hostgw.sync_all(cluster, nodes))
    prefix = f"10.{100 + cluster.index}"
    assert f"{prefix}.1.0/24 via {second.ip}" in _ip("-n", first.netns, "route")
    assert f"{prefix}.0.0/24 via {first.ip}" in _ip("-n", second.netns, "route")
    assert f"{prefix}.0.0/24" not in _ip("-n", first.netns, "route")  # its own CIDR is its bridge's
    host = _ip("route", "show", "proto", "113")
    assert f"{prefix}.0.0/24 via {first.ip}" in host and f"{prefix}.1.0/24 via {second.ip}" in host

    asyncio.run(hostgw.sync_all(cluster, nodes[:1]))  # the second Node was deleted
    assert f"{prefix}.1.0/24" not in _ip("route", "show", "proto", "113")
    assert f"{prefix}.1.0/24" not in _ip("-n", first.netns, "route")

    for node in cluster.nodes:
        netns.delete_node(node, netns.Runner())
    removed, errors = netns.delete_cluster_network(cluster, netns.Runner())
    assert errors == []
    assert f"route {prefix}.0.0/24" in removed and f"link {cluster.bridge}" in removed
    assert not (netns.SYS_NET / cluster.bridge).exists()
    assert f"{prefix}." not in _ip("route", "show", "proto", "113")
    assert all(not (netns.NETNS_DIR / n.netns).exists() for n in cluster.nodes)
    assert cluster.nft_table not in netns.nft_tables()
