"""The command lines that build and remove a cluster's network, and the host queries (fake ``ip``/``nft``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from cli.multinode import layout, netns
from cli.multinode.netns import NetworkError, Runner


@pytest.fixture
def cluster(tmp_path: Path) -> layout.Cluster:
    return layout.plan("t", root=str(tmp_path), index=2, nodes=2)


def _done(argv: Sequence[str], *, code: int = 0, out: str = "", err: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(list(argv), code, out, err)


def test_bridge_and_node_commands(cluster: layout.Cluster) -> None:
    bridge = netns.bridge_commands(cluster)
    assert ["ip", "addr", "add", "172.28.2.1/24", "dev", cluster.bridge] in bridge
    node = cluster.nodes[1]
    commands = netns.node_commands(cluster, node)
    assert commands[0] == ["ip", "netns", "add", node.netns]
    assert ["ip", "link", "set", node.veth, "master", cluster.bridge, "up"] in commands
    assert ["ip", "-n", node.netns, "addr", "add", "172.28.2.12/24", "dev", "eth0"] in commands
    assert ["ip", "-n", node.netns, "route", "add", "default", "via", "172.28.2.1"] in commands
    assert any("net.ipv4.ip_forward=1" in c for c in commands)


def test_masquerade_only_what_leaves_by_another_interface(cluster: layout.Cluster) -> None:
    script = netns.masquerade_script(cluster)
    assert f"add table inet {cluster.nft_table}" in script
    assert f'ip saddr 172.28.2.0/24 oifname != "{cluster.bridge}" masquerade' in script


def test_teardown_lists_only_what_exists(cluster: layout.Cluster, tmp_path: Path) -> None:
    netns_dir, sys_net = tmp_path / "netns", tmp_path / "sys"
    netns_dir.mkdir()
    sys_net.mkdir()
    node = cluster.nodes[0]
    assert netns.node_teardown_commands(node, netns_dir=netns_dir, sys_net=sys_net) == []
    (netns_dir / node.netns).touch()
    (sys_net / node.veth).mkdir()
    assert netns.node_teardown_commands(node, netns_dir=netns_dir, sys_net=sys_net) == [
        ["ip", "netns", "del", node.netns], ["ip", "link", "del", node.veth]]
    commands = netns.cluster_teardown_commands(cluster, sys_net=sys_net, host_routes=["10.102.0.0/24"],
                                               nft_tables=["other", cluster.nft_table])
    assert commands == [["ip", "route", "del", "10.102.0.0/24", "proto", "113"],
                        ["nft", "delete", "table", "inet", cluster.nft_table]]  # no bridge in sys_net


def test_runner_raises_or_collects() -> None:
    calls: list[list[str]] = []

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return _done(argv, code=2 if argv[-1] == "bad" else 0, err="RTNETLINK answers: File exists")

    runner = Runner(run)
    assert runner([["ip", "ok"], ["ip", "bad"], ["ip", "ok2"]], check=False) == [
        "ip bad: RTNETLINK answers: File exists"]
    with pytest.raises(NetworkError, match="ip bad: RTNETLINK"):
        runner([["ip", "bad"], ["ip", "never"]])
    assert ["ip", "never"] not in calls


def test_host_networks_from_routes_and_addresses() -> None:
    routes = [{"dst": "default", "gateway": "192.0.2.1"}, {"dst": "10.42.0.0/24", "dev": "br"},
              {"dst": "198.51.100.7", "dev": "eth0"}, {"dst": "127.0.0.0/8", "type": "local"}]
    addrs = [{"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8,
                                             "scope": "host"}]},
             {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "172.28.9.5", "prefixlen": 24,
                                               "scope": "global"}]}]

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return _done(argv, out=json.dumps(routes if "route" in argv else addrs))

    assert [str(n) for n in netns.host_networks(run)] == ["10.42.0.0/24", "198.51.100.7/32", "172.28.9.0/24"]


def test_host_routes_in_keeps_to_the_cluster_cidr(cluster: layout.Cluster) -> None:
    ours = [{"dst": "10.102.0.0/24"}, {"dst": "10.102.7.0/24"}, {"dst": "10.42.0.0/24"}, {"dst": "junk"}]

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        assert argv[-2:] == ["proto", "113"]
        return _done(argv, out=json.dumps(ours))

    assert netns.host_routes_in(cluster.cluster_cidr, run) == ["10.102.0.0/24", "10.102.7.0/24"]


def test_nft_tables_listing() -> None:
    out = {"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "pnc_abc"}}]}
    assert netns.nft_tables(lambda argv: _done(argv, out=json.dumps(out))) == ["pnc_abc"]
    assert netns.nft_tables(lambda argv: _done(argv, code=1)) == []
