"""A cluster with a short node monitor grace period gives its kubelets a Lease as long as it."""

from __future__ import annotations

from cli.multinode import layout, nodes


def _cluster(*flags: str) -> layout.Cluster:
    return layout.plan("lease", root="/tmp/pinnace-lease-test", index=0, nodes=1, server_flags=flags)


def test_short_grace_period_shortens_the_lease():
    cluster = _cluster("--node-monitor-grace-period", "10s", "--default-unreachable-toleration-seconds", "10")
    assert nodes.lease_flags(cluster) == ["--node-lease-duration-seconds", "10"]
    argv = nodes.agent_argv(cluster, cluster.nodes[0])
    assert argv[argv.index("--node-lease-duration-seconds") + 1] == "10"


def test_default_grace_period_keeps_the_default_lease():
    assert nodes.lease_flags(_cluster()) == []
    assert nodes.lease_flags(_cluster("--node-monitor-grace-period", "1m")) == []
