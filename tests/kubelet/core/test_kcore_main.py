"""``pinnace kubelet`` as a process: one-line errors, and SIGTERM stops it leaving pods running."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

from conftest import NodeEnv, wait_for

from e2e.cluster import REPO, Server
from kubelet.cri import pb
from kubelet.node import NODES


def pinnace(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", "kubelet", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_bad_flag_is_one_line() -> None:
    result = pinnace("--node-ip", "not-an-ip")
    assert result.returncode == 1
    assert result.stderr.strip() == "pinnace kubelet: --node-ip: 'not-an-ip' is not an IP address"


def test_missing_kubeconfig_is_one_line(tmp_path) -> None:
    result = pinnace("--kubeconfig", str(tmp_path / "none"), "--root-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("pinnace kubelet: kubeconfig ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_cri_is_one_line(server: Server, tmp_path) -> None:
    result = pinnace("--kubeconfig", str(server.kubeconfig), "--cri-socket", str(tmp_path / "cri.sock"),
                     "--root-dir", str(tmp_path), "--port", "0")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("pinnace kubelet: cannot reach the CRI at "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_process_runs_pods_and_sigterm_leaves_them(node: NodeEnv, server: Server) -> None:
    await node.stop_kubelet()  # the process takes over this node
    config = node.config
    log = open(config.root_dir.parent / "kubelet.log", "wb")  # noqa: ASYNC230 (a log file for the child)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "kubelet", "--kubeconfig", str(server.kubeconfig),
         "--node-name", config.node_name, "--cri-socket", config.cri_socket, "--root-dir", str(config.root_dir),
         "--log-dir", str(config.log_dir), "--port", "0", "--address", "127.0.0.1",
         "--cni-conf-dir", str(config.cni_conf_dir), "--cni-bridge", config.cni_bridge,
         "--cni-ipam-dir", str(config.cni_ipam_dir), "--sync-interval", "0.3",
        cwd=REPO, stdout=log, stderr=log)
    try:
        await node.create_pod("sleeper", [{"name": "s", "command": ["busybox", "sleep", "1000"]}])

        async def running() -> bool:
            pod = await node.pod("sleeper")
            return bool(pod) and pod.get("status", {}).get("phase") == "Running"

        await wait_for(running, within=30, what="sleeper Running under the kubelet process")
        port = (await node.client.get(NODES, config.node_name))["status"]["daemonEndpoints"]["kubeletEndpoint"]
        assert port["Port"] > 0 and port["Port"] != 10250
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await process.wait() == 0
        assert node.cri is not None
        listed = await node.cri.runtime.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(
            state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))))
        assert [c.metadata.name for c in listed.containers] == ["s"]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
