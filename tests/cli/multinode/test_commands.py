"""The ``pinnace cluster`` command line on recorded clusters (nothing is started)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from cli.multinode import commands, layout, lifecycle
from cli.multinode.layout import ClusterError


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.configure(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for index, name in enumerate(("one", "two")):
        layout.plan(name, root=str(tmp_path), index=index, nodes=2).save()
    return tmp_path


def test_create_flags() -> None:
    args = _parse("create", "t", "--nodes", "3", "--datastore", "etcd", "--control-planes", "2", "--root", "/x")
    assert (args.name, args.nodes, args.datastore, args.control_planes, args.root) == ("t", 3, "etcd", 2, "/x")
    with pytest.raises(SystemExit):
        _parse("create", "t", "--datastore", "mysql")


def test_a_node_is_found_with_or_without_its_cluster(root: Path) -> None:
    cluster, node = commands._find_node(str(root), ["two-worker2"])
    assert (cluster.name, node.ip) == ("two", "172.28.1.12")
    cluster, node = commands._find_node(str(root), ["one", "one-worker"])
    assert (cluster.name, node.name) == ("one", "one-worker")
    with pytest.raises(ClusterError, match="in 0 clusters"):
        commands._find_node(str(root), ["ghost-worker"])
    with pytest.raises(ClusterError, match="has no node"):
        commands._find_node(str(root), ["one", "two-worker"])


def test_list_and_kubeconfig(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.run_list(_parse("list", "--root", str(root))) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["NAME", "one", "two"]
    assert "https://172.28.1.1:6443" in out[2] and "stopped" in out[2]
    with pytest.raises(ClusterError, match="no kubeconfig yet"):
        commands.run_kubeconfig(_parse("kubeconfig", "one", "--root", str(root)))
    with pytest.raises(ClusterError, match="no cluster 'nine'"):
        commands.run_kubeconfig(_parse("kubeconfig", "nine", "--root", str(root)))


def test_user_kubeconfig_is_renamed_per_cluster(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = layout.load(str(root), "one")
    admin = {"clusters": [{"name": "pinnace", "cluster": {"server": cluster.api_url()}}],
             "users": [{"name": "pinnace-admin", "user": {"token": "t"}}],
             "contexts": [{"name": "pinnace", "context": {"cluster": "pinnace", "user": "pinnace-admin"}}],
             "current-context": "pinnace"}
    cluster.admin_kubeconfig.parent.mkdir(parents=True)
    cluster.admin_kubeconfig.write_text(yaml.safe_dump(admin))
    path = lifecycle.write_user_kubeconfig(cluster)
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "pinnace-one"
    assert config["contexts"] == [{"name": "pinnace-one", "context": {"cluster": "pinnace-one", "user": "pinnace-one"}}]
    assert config["clusters"][0]["cluster"]["server"] == "https://172.28.0.1:6443"
    assert path.stat().st_mode & 0o077 == 0
    assert commands.run_kubeconfig(_parse("kubeconfig", "one", "--root", str(root))) == 0
    assert capsys.readouterr().out.strip() == str(path)


def test_main_reports_errors_in_one_line(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.main(["delete", "Bad_Name", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pinnace cluster: cluster name 'Bad_Name'") and "Traceback" not in err


@pytest.mark.parametrize("retain", [False, True])
def test_a_create_that_fails_is_undone_unless_retained(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                       retain: bool) -> None:
    cluster = layout.load(str(root), "one")
    deleted: list[str] = []

    def fail(*args: object, **kwargs: object) -> float:
        raise ClusterError("nodes not Ready within 1s: one-worker")

    monkeypatch.setattr(lifecycle, "allocate", lambda name, **kwargs: cluster)
    monkeypatch.setattr(lifecycle, "create", fail)
    monkeypatch.setattr(lifecycle, "delete", lambda c, report: deleted.append(c.name))
    argv = ["create", "one", "--root", str(root), *(["--retain"] if retain else [])]
    with pytest.raises(ClusterError, match="not Ready"):
        commands.run_create(_parse(*argv))
    assert deleted == ([] if retain else ["one"])
