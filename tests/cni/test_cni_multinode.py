"""Two simulated nodes (namespaces as hosts, joined by a veth), each with its own bridge and pod CIDR:
pods reach each other through host-gw routes, without NAT, and ``cni.routes.sync`` owns only its routes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from netns_kit import Namespaces, Node, in_netns, needs_net, ping, tcp_get

from cni import routes

CLUSTER_CIDR = "10.81.0.0/16"
PEER_SERVER = """
import socket
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", 5000))
server.listen()
print("ready", flush=True)
while True:
    conn, peer = server.accept()
    conn.recv(1024)
    conn.sendall(peer[0].encode())
    conn.close()
"""


def test_route_input_is_validated_before_anything_changes() -> None:
    for bad in ([routes.NodeRoute("10.1.0.0/33", "192.168.0.2")], [routes.NodeRoute("10.1.0.1/24", "192.168.0.2")],
                [routes.NodeRoute("10.1.0.0/24", "fe80::1")], [routes.NodeRoute("10.1.0.0/24", "nope")],
                [routes.NodeRoute("10.1.0.0/24", "192.168.0.2"), routes.NodeRoute("10.1.0.0/24", "192.168.0.3")]):
        with pytest.raises(routes.RouteError):
            routes._validate(bad)
    nodes = [("a", "10.1.1.0/24", "192.168.0.1"), ("b", "10.1.2.0/24", "192.168.0.2"), ("c", "", "192.168.0.3")]
    assert routes.routes_for(nodes, self_name="a") == [routes.NodeRoute("10.1.2.0/24", "192.168.0.2")]


def run_routes(function: object, *args: object, **kwargs: object) -> object:
    """The agent calls these from its event loop; a test drives one loop per call."""
    return asyncio.run(function(*args, **kwargs))


@pytest.fixture
def two_nodes(namespaces: Namespaces, tmp_path: Path) -> tuple[Node, Node]:
    a = Node(namespaces, tmp_path, label="nodea", subnet="10.81.1.0/24")
    b = Node(namespaces, tmp_path, label="nodeb", subnet="10.81.2.0/24")
    a.exec("ip", "link", "add", "wire", "type", "veth", "peer", "name", "wire", "netns", b.netns)
    for node, address in ((a, "192.168.252.1/24"), (b, "192.168.252.2/24")):
        node.exec("ip", "addr", "add", address, "dev", "wire")
        node.exec("ip", "link", "set", "wire", "up")
    return a, b


@needs_net
def test_pods_on_two_nodes_talk_through_host_gw_routes(two_nodes: tuple[Node, Node],
                                                             namespaces: Namespaces) -> None:
    a, b = two_nodes
    pod_a, pod_b = namespaces.create("poda"), namespaces.create("podb")
    results = {}
    for node, pod in ((a, pod_a), (b, pod_b)):
        conf = node.bridge_conf(ipMasq=True, ipMasqExclude=[CLUSTER_CIDR])
        answer = node.call("pinnace-bridge", "ADD", config=conf, container_id="c0", netns=pod)
        assert answer.status == 0, answer
        results[pod] = answer.result["ips"][0]["address"].split("/")[0]
    assert not ping(pod_a, results[pod_b], wait=1), "no route yet between the nodes"

    nodes = [("a", a.subnet, "192.168.252.1"), ("b", b.subnet, "192.168.252.2")]
    for name, node in (("a", a), ("b", b)):
        changes = run_routes(routes.sync, routes.routes_for(nodes, self_name=name), netns=node.netns)
        assert changes.failed == {} and len(changes.added) == 1
    assert ping(pod_a, results[pod_b]) and ping(pod_b, results[pod_a])

    server = subprocess.Popen(["nsenter", f"--net={pod_b}", sys.executable, "-I", "-S", "-c", PEER_SERVER],
                              stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
        seen = tcp_get(pod_a, host=results[pod_b], port=5000)
        assert seen == results[pod_a].encode(), "pod-to-pod across nodes keeps its source address (no NAT)"
        outside = tcp_get(b.netns, host=results[pod_b], port=5000)
        assert outside == b"10.81.2.1", "the node itself reaches its pod from the bridge address"
    finally:
        server.kill()
        server.wait()


@needs_net
def test_sync_replaces_removes_and_touches_only_its_own_routes(two_nodes: tuple[Node, Node]) -> None:
    a, _b = two_nodes
    a.exec("ip", "route", "add", "10.99.0.0/24", "via", "192.168.252.2", "proto", "static")
    wanted = [routes.NodeRoute("10.81.2.0/24", "192.168.252.2"), routes.NodeRoute("10.81.3.0/24", "192.168.252.3")]
    first = run_routes(routes.sync, wanted, netns=a.netns)
    assert sorted(first.added) == ["10.81.2.0/24", "10.81.3.0/24"] and first.removed == []
    again = run_routes(routes.sync, wanted, netns=a.netns)
    assert again == routes.RouteChanges([], [], {}), "nothing to do the second time"
    moved = run_routes(routes.sync, [routes.NodeRoute("10.81.2.0/24", "192.168.252.9")], netns=a.netns)
    assert moved.added == ["10.81.2.0/24"] and moved.removed == ["10.81.3.0/24"]
    assert run_routes(routes.current, netns=a.netns) == {"10.81.2.0/24": "192.168.252.9"}
    unreachable = run_routes(routes.sync, [routes.NodeRoute("10.81.4.0/24", "172.31.0.1")], netns=a.netns)
    assert "10.81.4.0/24" in unreachable.failed and unreachable.removed == ["10.81.2.0/24"]
    table = in_netns(a.netns, "ip", "route", "show").stdout.decode()
    assert "10.99.0.0/24 via 192.168.252.2" in table, "a route we did not make stays"
    assert "10.81." not in table
