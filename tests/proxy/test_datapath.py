"""Real traffic through the generated rules, inside a node namespace: balancing, NodePort, affinity,
fast refusal, hairpin, externalTrafficPolicy Local, restart idempotence and removal."""

from __future__ import annotations

from collections import Counter

from netkit import GATEWAY, NODE_IP, Node, needs_net
from proxy_env import BACKENDS, backend_port, service

from proxy.nft import Nft
from proxy.sync import Programmer

pytestmark = needs_net
ALL = list(BACKENDS)


def bodies(answers: list[tuple[str, float]]) -> Counter[str]:
    return Counter(body for body, _ in answers)


async def test_cluster_ip_spreads_over_ready_endpoints(node: Node, programmer: Programmer) -> None:
    eps = backend_port(node, ALL)
    await programmer.sync([service("web", "10.96.0.10", eps)])
    counts = bodies(node.get("client", "http://10.96.0.10/", count=60))
    assert set(counts) == set(ALL), counts
    assert all(counts[label] >= 10 for label in ALL), counts


async def test_only_ready_endpoints_unless_none_is(node: Node, programmer: Programmer) -> None:
    a, b, c = backend_port(node, ALL)
    not_ready = type(b)(ip=b.ip, port=b.port, node="n1", ready=False, serving=False)
    terminating = type(c)(ip=c.ip, port=c.port, node="n1", ready=False, serving=True, terminating=True)
    await programmer.sync([service("web", "10.96.0.11", (a, not_ready, terminating))])
    assert bodies(node.get("client", "http://10.96.0.11/", count=15)) == {"a": 15}
    await programmer.sync([service("web", "10.96.0.11", (not_ready, terminating))])
    assert bodies(node.get("client", "http://10.96.0.11/", count=5)) == {"c": 5}


async def test_node_port_from_the_node_and_from_a_pod(node: Node, programmer: Programmer) -> None:
    await programmer.sync([service("np", "10.96.0.12", backend_port(node, ALL), node_port=30080)])
    from_node = bodies(node.get("node", f"http://{NODE_IP}:30080/", count=30))
    assert set(from_node) <= set(ALL) and sum(from_node.values()) == 30 and len(from_node) >= 2, from_node
    assert sum(bodies(node.get("client", f"http://{NODE_IP}:30080/", count=10)).values()) == 10


async def test_external_traffic_policy_local(node: Node, programmer: Programmer) -> None:
    eps = backend_port(node, ALL, nodes={"b": "n2", "c": "n2"})
    await programmer.sync([service("loc", "10.96.0.13", eps, node_port=30081, external_local=True)])
    # from outside the node (a pod source here): only the local endpoint, a
    assert bodies(node.get("client", f"http://{NODE_IP}:30081/", count=20)) == {"a": 20}
    # the ClusterIP still uses every endpoint
    assert len(bodies(node.get("client", "http://10.96.0.13/", count=30))) >= 2


async def test_session_affinity_pins_a_client(node: Node, programmer: Programmer) -> None:
    await programmer.sync([service("sticky", "10.96.0.14", backend_port(node, ALL), affinity_timeout=60)])
    counts = bodies(node.get("client", "http://10.96.0.14/", count=20))
    assert len(counts) == 1 and sum(counts.values()) == 20, counts
    counts_a = bodies(node.get("a", "http://10.96.0.14/", count=10))
    assert len(counts_a) == 1, counts_a


async def test_no_endpoints_refuses_at_once(node: Node, programmer: Programmer) -> None:
    await programmer.sync([service("empty", "10.96.0.15", ()), service("npempty", "10.96.0.16", (), node_port=30082)])
    for where, url in (("client", "http://10.96.0.15/"), ("node", "http://10.96.0.15/"),
                       ("node", f"http://{NODE_IP}:30082/")):
        [(body, seconds)] = node.get(where, url, timeout=3)
        assert body == "ERR:ConnectionRefusedError" and seconds < 1.0, (where, url, body, seconds)


async def test_hairpin_and_same_bridge_return_traffic(node: Node, programmer: Programmer) -> None:
    await programmer.sync([service("self", "10.96.0.17", backend_port(node, ["a"])),
                           service("all", "10.96.0.18", backend_port(node, ALL))])
    assert bodies(node.get("a", "http://10.96.0.17/", count=5)) == {"a": 5}
    counts = bodies(node.get("a", "http://10.96.0.18/", count=30))
    assert sum(counts[label] for label in ALL) == 30 and len(counts) == 3, counts


async def test_restart_yields_identical_table_and_removal_removes_rules(node: Node, programmer: Programmer) -> None:
    svcs = [service("one", "10.96.0.19", backend_port(node, ALL), node_port=30083, affinity_timeout=30),
            service("two", "10.96.0.20", backend_port(node, ["b"]))]
    assert await programmer.sync(svcs) == "full"
    before = await programmer.nft.list_table()
    assert before is not None and "default/two/tcp/http" in before
    restarted = Programmer(Nft(programmer.nft.table, netns=node.netns), programmer.config)
    assert await restarted.sync(svcs) == "full"
    assert await restarted.nft.list_table() == before
    assert await restarted.sync(svcs) == "noop"
    assert await restarted.sync(svcs[:1]) == "diff"
    after = await restarted.nft.list_table()
    assert after is not None and "default/two" not in after and "10.96.0.20" not in after
    assert set(bodies(node.get("client", "http://10.96.0.19/", count=3))) <= set(ALL)
    fresh = Programmer(Nft(programmer.nft.table, netns=node.netns), programmer.config)
    await fresh.sync(svcs[:1])  # full rewrite after a restart equals the incremental result
    assert await fresh.nft.list_table(terse=True) == await restarted.nft.list_table(terse=True)


async def test_cleanup_removes_only_our_table(node: Node, programmer: Programmer) -> None:
    other = Nft("pxtest-other", netns=node.netns)
    await other.apply("add table ip pxtest-other\n")
    try:
        await programmer.sync([service("web", "10.96.0.21", backend_port(node, ALL))])
        assert await programmer.cleanup() is True
        assert await programmer.nft.list_table() is None
        assert await other.list_table() is not None
        assert await programmer.cleanup() is False
    finally:
        await other.delete_table()


async def test_external_ip_reaches_the_endpoints(node: Node, programmer: Programmer) -> None:
    await programmer.sync([service("ext", "10.96.0.22", backend_port(node, ALL), external_ips=("192.168.77.50",)),
                           service("extempty", "10.96.0.23", (), external_ips=("192.168.77.51",))])
    assert set(bodies(node.get("client", "http://192.168.77.50/", count=15))) <= set(ALL)
    assert sum(bodies(node.get("node", "http://192.168.77.50/", count=5)).values()) == 5
    [(body, seconds)] = node.get("client", "http://192.168.77.51/")
    assert body == "ERR:ConnectionRefusedError" and seconds < 1.0


async def test_masquerade_only_where_needed(node: Node, programmer: Programmer) -> None:
    await programmer.sync([service("peer", "10.96.0.24", backend_port(node, ["a"]), node_port=30084)])
    # the node's own ClusterIP traffic keeps its source; a pod in the cluster CIDR keeps its own
    assert node.get("node", "http://10.96.0.24/peer")[0][0] == NODE_IP
    assert node.get("client", "http://10.96.0.24/peer")[0][0] == node.pods["client"]
    # NodePort (externalTrafficPolicy Cluster) and hairpin are masqueraded to the bridge address
    assert node.get("node", f"http://{NODE_IP}:30084/peer")[0][0] == GATEWAY
    assert node.get("a", "http://10.96.0.24/peer")[0][0] == GATEWAY
