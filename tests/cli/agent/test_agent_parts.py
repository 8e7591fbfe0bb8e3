"""The agent's table of parts, its paths and node defaults, and the engine's CNI flags."""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli import agent_cmds, engine_cmds
from cli.agent_cmds import AgentError, AgentPaths, default_gateway, default_node_ip, wanted_parts

REPO = Path(__file__).resolve().parents[3]


def agent_args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    kubeconfig = tmp_path / "node.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    p = argparse.ArgumentParser()
    agent_cmds.configure(p)
    args = p.parse_args(["--kubeconfig", str(kubeconfig), "--data-dir", str(tmp_path / "agent"), *extra])
    agent_cmds._check_args(args)
    return args


def option(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_engine_then_kubelet_share_the_cri_socket_and_cni_dirs(tmp_path: Path) -> None:
    args = agent_args(tmp_path, "--node-name", "n1", "--node-ip", "10.1.2.3", "--cluster-dns", "10.96.0.10",
                      "--cluster-cidr", "10.100.0.0/16")
    paths = AgentPaths(tmp_path / "agent")
    engine, kubelet, proxy = wanted_parts(args)
    assert (engine.name, kubelet.name, proxy.name) == ("engine", "kubelet", "proxy")
    e_argv, k_argv = engine.argv(paths, args), kubelet.argv(paths, args)
    assert option(e_argv, "--cni-conf-dir") == option(k_argv, "--cni-conf-dir") == str(paths.cni_conf_dir)
    assert option(e_argv, "--cni-bin-dir") == str(paths.cni_bin_dir)
    assert paths.data_dir in Path(option(k_argv, "--cni-ipam-dir")).parents  # leases stay with the node
    assert option(e_argv, "--cri-socket") == option(k_argv, "--cri-socket") == str(paths.cri_socket)
    assert engine.ready_socket(paths, args) == paths.cri_socket  # the kubelet waits for it
    assert (option(k_argv, "--node-name"), option(k_argv, "--node-ip")) == ("n1", "10.1.2.3")
    assert option(k_argv, "--cluster-dns") == "10.96.0.10"
    assert option(k_argv, "--kubeconfig") == str((tmp_path / "node.kubeconfig").resolve())
    assert option(k_argv, "--cluster-cidr") == "10.100.0.0/16"  # pod-to-pod traffic is not masqueraded
    p_argv = proxy.argv(paths, args)
    assert (option(p_argv, "--node-name"), option(p_argv, "--node-ip")) == ("n1", "10.1.2.3")
    assert option(p_argv, "--cluster-cidr") == "10.100.0.0/16"
    assert option(p_argv, "--dns") == "10.96.0.10"  # the DNS serves, in the proxy, where pods are told to ask


def test_dns_runs_alone_without_the_proxy(tmp_path: Path) -> None:
    args = agent_args(tmp_path, "--no-proxy", "--cluster-dns", "10.96.0.10")
    parts = {p.name: p for p in wanted_parts(args)}
    assert set(parts) == {"engine", "kubelet", "dns"}
    assert option(parts["dns"].argv(AgentPaths(tmp_path), args), "--address") == "10.96.0.10"
    no_dns = agent_args(tmp_path, "--no-dns")
    proxy = next(p for p in wanted_parts(no_dns) if p.name == "proxy")
    assert "--dns" not in proxy.argv(AgentPaths(tmp_path), no_dns)


def test_defaults_match_the_parts_own(tmp_path: Path) -> None:
    """The agent's copies of the cluster constants (kept to avoid importing the parts) agree with them."""
    from apiserver.allocators import DNS_SERVICE_IP
    from controllers.node_ipam import DEFAULT_CLUSTER_CIDR
    from proxy.rules import Config

    assert agent_cmds.DEFAULT_CLUSTER_DNS == DNS_SERVICE_IP
    assert agent_cmds.DEFAULT_CLUSTER_CIDR == DEFAULT_CLUSTER_CIDR
    assert agent_cmds.PROXY_TABLE == Config.__dataclass_fields__["table"].default
    args = agent_args(tmp_path)
    assert args.cluster_dns == [DNS_SERVICE_IP]


def test_no_engine_uses_the_given_cri(tmp_path: Path) -> None:
    args = agent_args(tmp_path, "--no-engine", "--cri-socket", "/run/other/cri.sock", "--no-proxy", "--no-dns")
    parts = wanted_parts(args)
    assert [p.name for p in parts] == ["kubelet"]
    assert option(parts[0].argv(AgentPaths(tmp_path), args), "--cri-socket") == "/run/other/cri.sock"


@pytest.mark.parametrize("extra, message", [(("--no-engine",), "--cri-socket"),
                                            (("--kubelet-port", "70000"), "not a TCP port")])
def test_bad_flags_are_one_line_errors(tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    with pytest.raises(AgentError, match=message):
        agent_args(tmp_path, *extra)


def test_missing_kubeconfig_is_an_error(tmp_path: Path) -> None:
    p = argparse.ArgumentParser()
    agent_cmds.configure(p)
    with pytest.raises(AgentError, match="no kubeconfig"):
        agent_cmds._check_args(p.parse_args(["--kubeconfig", str(tmp_path / "absent")]))


def test_socket_paths_must_fit_sun_path(tmp_path: Path) -> None:
    AgentPaths(tmp_path).check()
    deep = tmp_path / ("d" * (agent_cmds.UNIX_PATH_MAX - len(str(tmp_path))))
    with pytest.raises(AgentError, match="shorter --data-dir"):
        AgentPaths(deep).check()


def _local_ipv4() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 missing")
def test_default_node_ip_is_an_address_of_this_host() -> None:
    address = default_node_ip()
    assert ipaddress.ip_address(address).version == 4
    assert address in _local_ipv4() | {"127.0.0.1"}


def test_default_gateway_is_read_from_the_route_table(tmp_path: Path) -> None:
    table = tmp_path / "route"
    header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
    table.write_text(header + "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
                     "eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    assert default_gateway(table) == "10.0.2.1"
    table.write_text(header + "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    assert default_gateway(table) is None
    assert default_gateway(tmp_path / "absent") is None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_default_node_ip_without_a_route_is_loopback() -> None:
    code = "from cli.agent_cmds import default_node_ip; print(default_node_ip())"
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(REPO), check=True)
    assert done.stdout.strip() == "127.0.0.1"


def test_engine_serve_flags_reach_the_cri_server() -> None:
    p = argparse.ArgumentParser()
    engine_cmds._configure_serve(p)
    args = p.parse_args(["--cni-conf-dir", "/x/net.d", "--cni-bin-dir", "/x/bin:/y/bin", "--cri-run-dir", "/x/run"])
    assert engine_cmds.cri_options(args) == {"cni_conf_dir": "/x/net.d", "cni_bin_dirs": ["/x/bin", "/y/bin"],
                                             "run_dir": "/x/run"}
    assert engine_cmds.cri_options(p.parse_args([])) == {}


async def test_engine_daemon_builds_its_cri_with_the_options(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.cri.server
    from engine.daemon.server import EngineDaemon

    seen: dict = {}

    class Recorder:  # stands in for CRIServer: records how the daemon builds it
        def __init__(self, **kwargs: object) -> None:
            seen.update(kwargs)

        async def start(self) -> None:
            seen["started"] = True

    monkeypatch.setattr(engine.cri.server, "CRIServer", Recorder)
    daemon = EngineDaemon(root=tmp_path, socket_path=tmp_path / "e.sock", cri_socket=tmp_path / "cri.sock",
                          cri_options={"cni_conf_dir": "/x/net.d", "run_dir": "/x/run"})
    context = SimpleNamespace(store="store", containers=SimpleNamespace(manager="manager"), registry="pool")
    await daemon._open_cri(context)
    assert seen == {"store": "store", "containers": "manager", "socket_path": tmp_path / "cri.sock",
                    "registries": "pool", "cni_conf_dir": "/x/net.d", "run_dir": "/x/run", "started": True}
