"""Which Nodes give routes, and which host routes the route keeper may touch."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cli.multinode import hostgw, layout


def _node(name: str, cidr: str | None, ip: str | None) -> dict:
    node: dict = {"metadata": {"name": name}, "spec": {}, "status": {"addresses": []}}
    if cidr:
        node["spec"]["podCIDR"] = cidr
    if ip:
        node["status"]["addresses"] = [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]
    return node


def test_node_facts_keep_nodes_on_this_clusters_network(tmp_path: Path) -> None:
    cluster = layout.plan("t", root=str(tmp_path), index=1, nodes=3)
    nodes = [_node("a", "10.101.0.0/24", "172.28.1.11"),
             _node("b", "10.101.1.0/24", "172.28.1.12"),
             _node("no-cidr-yet", None, "172.28.1.13"),
             _node("elsewhere", "10.42.0.0/24", "172.28.1.14"),  # not in the cluster CIDR
             _node("foreign-ip", "10.101.5.0/24", "192.0.2.9"),  # not on the bridge
             _node("garbage", "not-a-cidr", "172.28.1.15")]
    assert hostgw.node_facts(nodes, cluster) == [("a", "10.101.0.0/24", "172.28.1.11"),
                                                 ("b", "10.101.1.0/24", "172.28.1.12")]


def test_host_changes_touch_only_routes_inside_the_cluster_cidr() -> None:
    cidr = ipaddress.ip_network("10.101.0.0/16")
    present = {"10.101.0.0/24": "172.28.1.11", "10.101.9.0/24": "172.28.1.19",  # stale: node gone
               "10.42.0.0/24": "192.0.2.50"}  # another cluster's (or pinnace up's) route
    wanted = {"10.101.0.0/24": "172.28.1.11", "10.101.1.0/24": "172.28.1.12"}
    replace, delete = hostgw.host_changes(wanted=wanted, present=present, cidr=cidr)
    assert replace == {"10.101.1.0/24": "172.28.1.12"}
    assert delete == ["10.101.9.0/24"]
    moved = hostgw.host_changes(wanted={"10.101.0.0/24": "172.28.1.13"}, present=present, cidr=cidr)
    assert moved == ({"10.101.0.0/24": "172.28.1.13"}, ["10.101.9.0/24"])
