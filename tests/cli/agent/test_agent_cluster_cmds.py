"""``up``/``down``/``status`` pieces that need no cluster: PID files, the node credential, status exit codes."""

from __future__ import annotations

import argparse
import base64
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from cli import cluster_cmds
from cli.cluster_cmds import SERVER, ClusterFiles, Daemon, write_node_kubeconfig


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A process whose command line looks like ``... server ... <tmp_path>``, as ``up`` starts them."""
    process = subprocess.Popen(["sh", "-c", "sleep 30; exit 0", "server", "--data-dir", str(tmp_path)])
    deadline = time.monotonic() + 10
    while b"server" not in Path(f"/proc/{process.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)  # until the fork has exec'd sh
    yield process
    process.kill()
    process.wait()


def test_a_recorded_pid_counts_only_while_it_is_our_process(tmp_path: Path, sleeper: subprocess.Popen) -> None:
    assert SERVER.running_pid(tmp_path) is None  # no PID file
    SERVER.pid_file(tmp_path).write_text(f"{sleeper.pid}\n")
    assert SERVER.running_pid(tmp_path) == sleeper.pid
    assert Daemon("agent", b"agent").running_pid(tmp_path) is None  # not what it says it is
    assert SERVER.running_pid(tmp_path / "other") is None  # another cluster's dir
    sleeper.kill()
    sleeper.wait()
    assert SERVER.running_pid(tmp_path) is None  # gone: a stale PID file is not a running server
    SERVER.pid_file(tmp_path).write_text("garbage")
    assert SERVER.running_pid(tmp_path) is None


def test_node_kubeconfig_carries_a_node_identity_signed_by_the_cluster_ca(tmp_path: Path) -> None:
    from apiserver.pki import ensure_pki

    ensure_pki(tmp_path)
    path = write_node_kubeconfig(ClusterFiles(tmp_path), node_name="n1", server="https://127.0.0.1:6443")
    assert path.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(path.read_text())
    user = config["users"][0]["user"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:nodes"]
    ca = x509.load_pem_x509_certificate((tmp_path / "pki" / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"


def test_status_exits_1_when_nothing_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cluster_cmds.run_status(argparse.Namespace(data_dir=str(tmp_path))) == 1
    out = capsys.readouterr().out
    assert "server   not running" in out and "agent    not running" in out


def test_node_ready_reads_the_ready_condition() -> None:
    ready = {"status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                       {"type": "Ready", "status": "True"}]}}
    assert cluster_cmds.node_ready(ready)
    assert not cluster_cmds.node_ready({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
    assert not cluster_cmds.node_ready({})


@pytest.mark.parametrize("flag", ["--port", "--kubelet-port"])
def test_up_refuses_a_bad_port_before_starting_anything(tmp_path: Path, flag: str) -> None:
    p = argparse.ArgumentParser()
    cluster_cmds.configure_up(p)
    args = p.parse_args(["--data-dir", str(tmp_path / "c"), flag, "70000"])
    with pytest.raises(ValueError, match="not a TCP port"):
        cluster_cmds.run_up(args)
    assert not (tmp_path / "c").exists()


def test_node_ready_needs_a_heartbeat_of_this_run() -> None:
    """A Node Ready from an earlier run (stored status) is not this run's node being Ready."""
    node = {"status": {"conditions": [{"type": "Ready", "status": "True",
                                       "lastHeartbeatTime": "2026-11-29T10:00:05Z"}]}}
    at = 1795946405.0  # 2026-11-29T10:00:05Z
    assert cluster_cmds.node_ready(node, since=at)
    assert cluster_cmds.node_ready(node, since=at + 0.9)  # stamps have whole seconds
    assert not cluster_cmds.node_ready(node, since=at + 1)
