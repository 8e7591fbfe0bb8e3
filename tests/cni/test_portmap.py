"""portmap chained after the bridge: a hostPort reaches busybox httpd in the pod, and goes away on DEL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from netns_kit import Namespaces, Node, in_netns, needs_net, tcp_get

pytestmark = needs_net
NODE_IP, CLIENT_IP = "192.168.251.1", "192.168.251.2"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("hello from the pod\n")
    return root


@pytest.fixture
def client(node: Node, namespaces: Namespaces) -> str:
    """A machine outside the node, on a link to the node's address."""
    path = namespaces.create("client")
    node_end = f"{node.bridge}n"
    node.exec("ip", "link", "add", node_end, "type", "veth", "peer", "name", "uplink", "netns", path)
    node.exec("ip", "addr", "add", f"{NODE_IP}/24", "dev", node_end)
    node.exec("ip", "link", "set", node_end, "up")
    in_netns(path, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "uplink")
    in_netns(path, "ip", "link", "set", "uplink", "up")
    return path


def portmap_conf(prev: dict, mappings: list[dict]) -> dict:
    return {"cniVersion": "1.0.0", "name": "pntest", "type": "pinnace-portmap",
            "runtimeConfig": {"portMappings": mappings}, "prevResult": prev}


def start_pod(node: Node, namespaces: Namespaces, *, site: Path, container_id: str) -> tuple[str, dict]:
    pod = namespaces.create(container_id)
    answer = node.call("pinnace-bridge", "ADD", config=node.bridge_conf(), container_id=container_id, netns=pod)
    assert answer.status == 0, answer
    in_netns(pod, "ip", "link", "set", "lo", "up")
    in_netns(pod, "busybox", "httpd", "-p", "80", "-h", str(site))  # daemonises; killed with the namespace
    return pod, answer.result


def test_host_port_reaches_httpd_in_the_pod_until_del(node: Node, namespaces: Namespaces, site: Path,
                                                      client: str) -> None:
    pod, prev = start_pod(node, namespaces, site=site, container_id="c0")
    conf = portmap_conf(prev, [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
    answer = node.call("pinnace-portmap", "ADD", config=conf, container_id="c0", netns=pod)
    assert answer.status == 0, answer
    assert answer.result == prev, "portmap passes prevResult through"

    assert b"hello from the pod" in (tcp_get(client, host=NODE_IP, port=8080) or b""), "from outside the node"
    assert b"hello from the pod" in (tcp_get(node.netns, host=NODE_IP, port=8080) or b""), "from the node itself"
    assert b"hello from the pod" in (tcp_get(pod, host=NODE_IP, port=8080) or b""), "from the pod itself (hairpin)"
    assert tcp_get(client, host=NODE_IP, port=8081, timeout=1) is None, "only the mapped port"

    assert node.call("pinnace-portmap", "CHECK", config=conf, container_id="c0", netns=pod).status == 0
    assert node.call("pinnace-portmap", "DEL", config=conf, container_id="c0", netns=pod).status == 0
    assert tcp_get(client, host=NODE_IP, port=8080, timeout=1) is None, "DEL removes the mapping"
    listing = json.loads(node.exec("nft", "-j", "list", "table", "inet", "pinnace_portmap").stdout)
    assert not [o for o in listing["nftables"] if (o.get("map") or o.get("set") or {}).get("elem")]
    assert node.call("pinnace-portmap", "DEL", config=conf, container_id="c0", netns=pod).status == 0, "DEL twice"
    check = node.call("pinnace-portmap", "CHECK", config=conf, container_id="c0", netns=pod)
    assert check.result["code"] == 100


def test_host_ip_bound_mapping_and_conflicts(node: Node, namespaces: Namespaces, site: Path, client: str) -> None:
    first, prev1 = start_pod(node, namespaces, site=site, container_id="c1")
    second, prev2 = start_pod(node, namespaces, site=site, container_id="c2")
    bound = [{"hostPort": 9090, "containerPort": 80, "hostIP": NODE_IP}]
    assert node.call("pinnace-portmap", "ADD", config=portmap_conf(prev1, bound), container_id="c1",
                     netns=first).status == 0
    assert b"hello from the pod" in (tcp_get(client, host=NODE_IP, port=9090) or b"")

    taken = [{"hostPort": 9191, "containerPort": 80}, {"hostPort": 9090, "containerPort": 80, "hostIP": NODE_IP}]
    answer = node.call("pinnace-portmap", "ADD", config=portmap_conf(prev2, taken), container_id="c2", netns=second)
    assert answer.status == 1 and answer.result["code"] == 5, answer
    assert tcp_get(client, host=NODE_IP, port=9191, timeout=1) is None, "a refused ADD maps none of its ports"
    assert b"hello" in (tcp_get(client, host=NODE_IP, port=9090) or b""), "and leaves the holder's mapping alone"


def test_gc_removes_mappings_of_unknown_attachments(node: Node, namespaces: Namespaces, site: Path,
                                                    client: str) -> None:
    pods = [start_pod(node, namespaces, site=site, container_id=f"c{i}") for i in range(2)]
    for i, (pod, prev) in enumerate(pods):
        conf = portmap_conf(prev, [{"hostPort": 7000 + i, "containerPort": 80}])
        assert node.call("pinnace-portmap", "ADD", config=conf, container_id=f"c{i}", netns=pod).status == 0
    gc = {"cniVersion": "1.1.0", "name": "pntest", "type": "pinnace-portmap",
          "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]}
    assert node.call("pinnace-portmap", "GC", config=gc).status == 0
    assert tcp_get(client, host=NODE_IP, port=7000, timeout=1) is None
    assert b"hello" in (tcp_get(client, host=NODE_IP, port=7001) or b"")


def test_bad_mappings_are_invalid_config(node: Node) -> None:
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/x"}],
            "ips": [{"address": "10.77.0.2/24", "interface": 0}]}
    for mapping, code in (({"hostPort": 0, "containerPort": 80}, 7), ({"hostPort": 80, "containerPort": 80,
                          "protocol": "icmp"}, 7), ({"hostPort": 80, "containerPort": 80, "hostIP": "nope"}, 7)):
        answer = node.call("pinnace-portmap", "ADD", config=portmap_conf(prev, [mapping]), container_id="c0",
                           netns="/proc/self/ns/net")
        assert answer.result["code"] == code, (mapping, answer)
    unchained = {"cniVersion": "1.0.0", "name": "pntest", "type": "pinnace-portmap"}
    assert node.call("pinnace-portmap", "ADD", config=unchained, container_id="c0", netns="/x").result["code"] == 7
    assert "pinnace_portmap" not in " ".join(node.nft_tables())
