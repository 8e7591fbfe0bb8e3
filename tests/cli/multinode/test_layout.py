"""The layout of a cluster: names, addresses, dirs, index choice and the cluster.json record."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from cli.agent_cmds import AgentPaths
from cli.multinode import layout
from cli.multinode.layout import Cluster, ClusterError


def test_plan_names_addresses_and_dirs(tmp_path: Path) -> None:
    cluster = layout.plan("t", root=str(tmp_path), index=3, nodes=3)
    assert [n.name for n in cluster.nodes] == ["t-worker", "t-worker2", "t-worker3"]
    assert [n.ip for n in cluster.nodes] == ["172.28.3.11", "172.28.3.12", "172.28.3.13"]
    assert cluster.gateway == "172.28.3.1"
    assert cluster.cluster_cidr == ipaddress.ip_network("10.103.0.0/16")
    assert len({n.netns for n in cluster.nodes}) == 3
    assert all(Path(n.dir).parent == tmp_path / "t" for n in cluster.nodes)
    assert [c.port for c in cluster.control_planes] == [6443]
    assert cluster.etcd is None
    assert cluster.api_url() == "https://172.28.3.1:6443"


def test_link_names_fit_the_kernel_limit_and_differ_between_roots(tmp_path: Path) -> None:
    a = layout.plan("a-rather-long-cluster-name-32chr", root=str(tmp_path / "one"), index=0, nodes=240)
    b = layout.plan("a-rather-long-cluster-name-32chr", root=str(tmp_path / "two"), index=1, nodes=1)
    names = [a.bridge, *(n.veth for n in a.nodes), b.bridge]
    assert all(len(name) <= 15 for name in names)
    assert len(set(names)) == len(names)
    assert a.bridge != b.bridge and a.nft_table != b.nft_table


def test_node_sockets_fit_under_the_default_root() -> None:
    cluster = layout.plan("a-rather-long-cluster-name-32chr", root=layout.DEFAULT_ROOT, index=0, nodes=240)
    AgentPaths(cluster.nodes[-1].path).check()  # raises when a socket path is too long


def test_etcd_and_several_api_servers(tmp_path: Path) -> None:
    cluster = layout.plan("h", root=str(tmp_path), index=0, nodes=4, datastore="etcd", control_planes=3)
    assert [c.port for c in cluster.control_planes] == [6443, 6444, 6445]
    assert cluster.etcd is not None and cluster.etcd.client_port == 2379
    assert [cluster.server_for(n) for n in cluster.nodes] == [0, 1, 2, 0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nodes": 0}, "--nodes"),
    ({"nodes": 1, "control_planes": 2}, "needs --datastore etcd"),
    ({"nodes": 1, "datastore": "mysql"}, "--datastore"),
    ({"nodes": 1, "index": 200}, "index"),
])
def test_plan_refuses_what_cannot_work(tmp_path: Path, kwargs: dict, message: str) -> None:
    kwargs = {"index": 0, **kwargs}
    with pytest.raises(ClusterError, match=message):
        layout.plan("x", root=str(tmp_path), **kwargs)


@pytest.mark.parametrize("name", ["", "UPPER", "-lead", "trail-", "has_underscore", "x" * 33, "a/b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ClusterError, match="cluster name"):
        layout.validate_name(name)


def test_free_index_skips_taken_and_overlapping_networks() -> None:
    nets = [ipaddress.ip_network("172.28.1.0/24"), ipaddress.ip_network("10.96.0.0/11")]  # 10.96-10.127
    assert layout.free_index(taken={0}, host_networks=nets) == 28  # 1: subnet in use; 2-27: CIDR inside 10.96/11
    assert layout.free_index(taken=set(), host_networks=[ipaddress.ip_network("0.0.0.0/0")]) == 0  # default route


def test_free_index_runs_out() -> None:
    with pytest.raises(ClusterError, match="no free cluster subnet"):
        layout.free_index(taken=range(layout.MAX_INDEX + 1), host_networks=[])


def test_record_round_trip_and_listing(tmp_path: Path) -> None:
    cluster = layout.plan("rt", root=str(tmp_path), index=5, nodes=2, datastore="etcd", control_planes=2)
    cluster.save()
    again = layout.load(str(tmp_path), "rt")
    assert again == cluster
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / layout.RECORD).write_text("{not json")
    assert [c.name for c in layout.all_clusters(str(tmp_path))] == ["rt"]
    with pytest.raises(ClusterError, match="cannot read"):
        layout.load(str(tmp_path), "broken")
    with pytest.raises(ClusterError, match="no cluster 'nope'"):
        layout.load(str(tmp_path), "nope")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / layout.RECORD).write_text(json.dumps({"name": "odd"}))
    with pytest.raises(ClusterError, match="not a cluster record"):
        layout.load(str(tmp_path), "odd")


def test_node_numbers_are_reused_after_removal(tmp_path: Path) -> None:
    cluster = layout.plan("n", root=str(tmp_path), index=0, nodes=3)
    assert cluster.next_node_number() == 4
    cluster.nodes = [n for n in cluster.nodes if n.number != 2]
    assert cluster.next_node_number() == 2
    assert cluster.make_node(2).name == "n-worker2"
    with pytest.raises(ClusterError, match="has no node 'n-worker2'"):
        cluster.node("n-worker2")


def test_from_json_rejects_missing_fields() -> None:
    with pytest.raises(ClusterError):
        Cluster.from_json({"name": "x"})
