"""Removing every pod of a node's engine through its CRI, for ``pinnace down``.

Containers outlive their engine by design (conmon holds them), so a cluster that is going away must
stop and remove its pods' containers and sandboxes while a CRI over the engine's root is serving:
StopPodSandbox also runs the CNI DEL that frees the pod's IP, veth and port mappings, and
RemovePodSandbox releases its namespaces. ``down`` stops the agent first (a running kubelet would
recreate the pods), then runs ``python -m engine.cri.server`` alone over the agent's engine root,
sweeps through it and stops it again, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli.agent_cmds import AgentPaths, socket_answers

REPO = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 2  # seconds each container gets between its stop signal and SIGKILL
CRI_START = 30.0
SWEEP_SOCKET = "sweep.sock"


async def sweep(cri_socket: str) -> list[str]:
    """Stop and remove every container, then every sandbox; what was removed."""
    from kubelet.cri import CriClient, pb

    removed: list[str] = []
    async with CriClient(cri_socket) as cri:
        containers = (await cri.runtime.ListContainers(pb.ListContainersRequest())).containers

        async def drop_container(c: pb.Container) -> None:
            with contextlib.suppress(Exception):
                await cri.runtime.StopContainer(pb.StopContainerRequest(container_id=c.id, timeout=STOP_TIMEOUT))
            await cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=c.id))
            removed.append(f"container {c.metadata.name} ({c.id[:12]})")

        await asyncio.gather(*(drop_container(c) for c in containers))
        sandboxes = (await cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest())).items

        async def drop_sandbox(s: pb.PodSandbox) -> None:
            await cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=s.id))
            await cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=s.id))
            removed.append(f"pod {s.metadata.namespace}/{s.metadata.name} ({s.id[:12]})")

        await asyncio.gather(*(drop_sandbox(s) for s in sandboxes))
    return removed


def _wait_until_serving(process: subprocess.Popen, socket_path: Path, log_path: Path) -> None:
    deadline = time.monotonic() + CRI_START
    while not socket_answers(socket_path):
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"the CRI over the node's engine exited ({process.returncode}): {' '.join(tail)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the CRI over the node's engine did not start in {CRI_START:.0f}s; see {log_path}")
        time.sleep(0.1)


def remove_all_pods(paths: AgentPaths) -> list[str]:
    """Every pod of the engine under ``paths`` (nothing when it never ran)."""
    if not (paths.engine_root / "containers").is_dir() and not (paths.engine_root / "cri").is_dir():
        return []
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    socket_path = paths.run_dir / SWEEP_SOCKET
    log_path = paths.data_dir / "sweep.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cri.server", "--root", str(paths.engine_root),
             "--socket", str(socket_path), "--run-dir", str(paths.run_dir),
             "--cni-conf-dir", str(paths.cni_conf_dir), "--cni-bin-dir", str(paths.cni_bin_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(REPO))
    try:
        _wait_until_serving(process, socket_path, log_path)
        return asyncio.run(sweep(str(socket_path)))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
