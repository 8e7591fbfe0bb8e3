"""The clean-up steps of ``pinnace down`` against real namespaces, mounts, links, cgroups and nft rules.

Each test makes the real thing under a temp dir (or with a unique name), runs the step, checks it
is gone, and runs the step again to see it is idempotent. Whatever a failing test leaves is removed
by the fixtures, by path and by name.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import cleanup
from cli.agent_cmds import AgentPaths

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "unshare", "mount")),
                                reason="needs root, iproute2 and util-linux")


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def mounted(path: Path) -> bool:
    return any(line.split(" ")[4] == str(path) for line in Path("/proc/self/mountinfo").read_text().splitlines())


@pytest.fixture
def scope(tmp_path: Path) -> Iterator[cleanup.Scope]:
    data = tmp_path / "cluster"
    agent = AgentPaths(data / "agent")
    agent.run_dir.mkdir(parents=True)
    yield cleanup.Scope(data_dir=data, agent=agent)
    for point in cleanup.mounts_under(tmp_path):
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_pinned_namespaces_are_released(scope: cleanup.Scope) -> None:
    netns, utsns = scope.agent.run_dir / "netns" / "sb1", scope.agent.run_dir / "utsns" / "sb1"
    for path in (netns, utsns):
        path.parent.mkdir()
        path.touch()
    run("unshare", f"--net={netns}", f"--uts={utsns}", "true")
    assert mounted(netns) and mounted(utsns)
    assert sorted(cleanup.remove_namespaces(scope)) == ["netns sb1", "utsns sb1"]
    assert not netns.exists() and not mounted(netns) and not mounted(utsns)
    assert cleanup.remove_namespaces(scope) == []


def test_mounts_under_the_data_dir_go_deepest_first(scope: cleanup.Scope, tmp_path: Path) -> None:
    outer = scope.data_dir / "agent" / "kubelet" / "pods" / "u1" / "volumes" / "v"
    inner = outer / "nested dir"
    outer.mkdir(parents=True)
    run("mount", "-t", "tmpfs", "tmpfs", str(outer))
    inner.mkdir()
    run("mount", "-t", "tmpfs", "tmpfs", str(inner))
    assert cleanup.mounts_under(scope.data_dir) == [inner, outer]  # spaces unescaped, children first
    with pytest.raises(cleanup.CleanupError, match="still mounted"):
        cleanup.remove_data_dir(scope)  # never rmtree across a mount
    assert sorted(cleanup.remove_mounts(scope)) == sorted([f"mount {inner}", f"mount {outer}"])
    assert not mounted(outer) and not mounted(inner)
    assert cleanup.remove_mounts(scope) == []
    assert cleanup.remove_data_dir(scope) == [f"data dir {scope.data_dir}"]
    assert not scope.data_dir.exists() and cleanup.remove_data_dir(scope) == []


def test_mountinfo_paths_are_unescaped(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("36 35 98:0 / /x/a\\040b rw - tmpfs tmpfs rw\n37 36 98:0 / /x/a\\040b/c rw - tmpfs tmpfs rw\n"
                    "38 35 98:0 / /xy rw - tmpfs tmpfs rw\n")
    assert cleanup.mounts_under(Path("/x"), mountinfo=info) == [Path("/x/a b/c"), Path("/x/a b")]


@dataclass
class Net:
    network: str
    bridge: str
    ours: str  # the host end of our sandbox's veth, named as the CNI plugin names it
    foreign: str  # a port of someone else's on the same bridge


@pytest.fixture
def net(scope: cleanup.Scope) -> Iterator[Net]:
    """A conflist naming a unique bridge, the bridge, a veth of one of our sandboxes and a foreign one."""
    from cni import naming

    tag = secrets.token_hex(3)
    network, sandbox = f"net-{tag}", secrets.token_hex(32)
    found = Net(network=network, bridge=f"pnct{tag}", foreign=f"vpnct{tag}",
                ours=naming.host_veth_name(network, container_id=sandbox, ifname="eth0"))
    (scope.agent.engine_root / "cri" / "sandboxes" / sandbox).mkdir(parents=True)
    scope.agent.cni_conf_dir.mkdir(parents=True)
    conf = {"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": "pinnace-bridge", "bridge": found.bridge, "ipam": {"type": "pinnace-host-local",
                                                                    "dataDir": str(scope.data_dir / "ipam")}}]}
    (scope.agent.cni_conf_dir / "10-pinnace.conflist").write_text(json.dumps(conf))
    run("ip", "link", "add", found.bridge, "type", "bridge")
    for veth in (found.ours, found.foreign):
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", f"p{veth[-12:]}")
        run("ip", "link", "set", veth, "master", found.bridge)
    yield found
    for link in (found.ours, found.foreign, found.bridge):
        subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)


def exists(link: str) -> bool:
    return (cleanup.SYS_NET / link).exists()


def test_our_veths_go_and_the_bridge_once_nobody_uses_it(scope: cleanup.Scope, net: Net) -> None:
    assert cleanup.remove_links(scope) == [f"link {net.ours}"]
    assert not exists(net.ours) and not exists(f"p{net.ours[-12:]}")  # a veth pair goes as one
    assert exists(net.foreign) and exists(net.bridge)  # another cluster's pod still uses the bridge
    run("ip", "link", "del", net.foreign)
    assert cleanup.remove_links(scope) == [f"bridge {net.bridge}"]
    assert not exists(net.bridge)
    assert cleanup.remove_links(scope) == []


@pytest.mark.skipif(shutil.which("nft") is None, reason="nftables missing")
def test_our_masquerade_chain_goes_with_the_bridge(scope: cleanup.Scope, net: Net) -> None:
    from cni import masquerade

    chain = masquerade.chain(net.network)
    script = (f"add table inet {cleanup.MASQ_TABLE}\n"
              f"add chain inet {cleanup.MASQ_TABLE} {chain} {{ type nat hook postrouting priority srcnat; }}\n"
              f"add rule inet {cleanup.MASQ_TABLE} {chain} ip saddr 10.253.0.0/24 masquerade\n")
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)
    try:
        assert not any(chain in item for item in cleanup.remove_nft(scope))  # the bridge is still there
        run("ip", "link", "del", net.bridge)
        removed = cleanup.remove_nft(scope)
        assert f"nftables chain inet {cleanup.MASQ_TABLE} {chain}" in removed
        listing = subprocess.run(["nft", "list", "table", "inet", cleanup.MASQ_TABLE], capture_output=True,
                                 text=True, check=False).stdout
        assert chain not in listing
        assert not any(chain in item for item in cleanup.remove_nft(scope))
    finally:
        subprocess.run(["nft", "delete", "chain", "inet", cleanup.MASQ_TABLE, chain], check=False,
                       capture_output=True)


def test_recorded_container_cgroups_are_removed(scope: cleanup.Scope) -> None:
    from engine.runtime import cgroups

    parent = f"pinnace-cleanup-test-{secrets.token_hex(3)}"
    path = f"/{parent}/c1"
    cgroup = cgroups.ContainerCgroup(path)
    made = [d for c in ("memory", "pids", "cpu") if (d := cgroup.dir(c)) is not None and d.parent.parent.is_dir()]
    if not made:
        pytest.skip("no cgroup hierarchy to write to")
    state = scope.agent.engine_root / "containers" / "c1" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"status": "exited", "cgroups_path": path}))
    try:
        for directory in made:
            directory.mkdir(parents=True)
        assert cleanup.remove_cgroups(scope) == [f"cgroup {path}"]
        assert not any(d.exists() for d in made)
        assert not any(d.parent.exists() for d in made)  # the now-empty parent too
        assert cleanup.remove_cgroups(scope) == []
    finally:
        for directory in made:
            for d in (directory, directory.parent):
                if d.is_dir():
                    d.rmdir()


def test_a_failing_step_does_not_stop_the_others(scope: cleanup.Scope) -> None:
    def broken(_: cleanup.Scope) -> list[str]:
        raise cleanup.CleanupError("stuck")

    removed, failed = cleanup.run_all(scope, steps=(("broken", broken), ("data dir", cleanup.remove_data_dir)))
    assert failed == ["broken: stuck"]
    assert removed == [f"data dir {scope.data_dir}"] and not scope.data_dir.exists()


def test_kubeconfig_step_removes_our_context(scope: cleanup.Scope, tmp_path: Path) -> None:
    from cli.user_kubeconfig import merge

    config = tmp_path / "kube" / "config"
    merge(config, {"clusters": [{"name": "pinnace", "cluster": {"server": "https://127.0.0.1:1"}}],
                   "users": [{"name": "pinnace-admin", "user": {}}],
                   "contexts": [{"name": "pinnace", "context": {"cluster": "pinnace", "user": "pinnace-admin"}}],
                   "current-context": "pinnace"})
    ours = cleanup.Scope(data_dir=scope.data_dir, agent=scope.agent, kubeconfig=config,
                         server="https://127.0.0.1:1")
    assert len(cleanup.remove_kubeconfig_entries(ours)) == 3
    assert cleanup.remove_kubeconfig_entries(ours) == []


def test_a_node_that_never_had_a_pod_network_leaves_the_hosts_alone(scope: cleanup.Scope) -> None:
    assert cleanup.network_of(scope.agent) is None
    assert cleanup.remove_links(scope) == [] and cleanup.remove_nft(scope) == []
