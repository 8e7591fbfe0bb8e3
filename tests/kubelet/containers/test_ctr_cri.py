"""Against a real engine CRI server and busybox: a sandbox and container made from our configs
(user, group, env, read-only root visible inside), exec probes and hooks through ExecSync, and a
ProbeManager whose readiness and liveness follow files the test flips on a mounted host dir."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.images.store import Image
from kubelet.config import KubeletConfig
from kubelet.containers import container_config, sandbox_config, termination_message
from kubelet.cri import CriClient, pb
from kubelet.hooks import run_handler
from kubelet.probes import ProbeManager, run_probe
from tests.engine.cri import cri_env
from tests.engine.cri.conftest import busybox, cri, cri_store, needs_host  # noqa: F401 - fixtures
from tests.kubelet.containers.kctr_env import FakeSource, make_config, make_pod

pytestmark = needs_host
HOST_DNS = pb.DNSConfig(servers=[cri_env.GATEWAY])
CONTAINER = {
    "name": "app", "image": "busybox", "command": ["sh", "-c", "exec busybox sleep 1000"],
    "env": [{"name": "GREETING", "value": "hello"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}],
    "securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "readOnlyRootFilesystem": True},
    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
}


@dataclass
class Running:
    client: CriClient
    container_id: str
    scratch: Path
    pod: dict[str, Any]
    sandbox_id: str
    sandbox: pb.PodSandboxConfig
    config: KubeletConfig


async def _exec(client: CriClient, cid: str, *cmd: str) -> pb.ExecSyncResponse:
    return await client.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=10), timeout=20)


def _scratch(base: Path) -> Path:
    """A host dir every user in the container may write (the container runs as uid 1000)."""
    scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=base))
    scratch.chmod(0o777)
    return scratch


@pytest.fixture
async def running(cri: cri_env.Harness, busybox: Image) -> AsyncIterator[Running]:  # noqa: F811
    pod = make_pod(CONTAINER, name="probed", uid="uid-ctr-1")
    config = make_config(cri.base / "kubelet", log_dir=cri.log_dir, cluster_dns=(cri_env.GATEWAY,))
    scratch = _scratch(cri.base)
    client = CriClient(str(cri.socket))
    try:
        sandbox = sandbox_config(pod, config=config, attempt=0, host_dns=HOST_DNS)
        sandbox_id = (await client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=sandbox))).pod_sandbox_id
        ctr = await container_config(
            pod, CONTAINER, config=config, attempt=0, image_ref=busybox.id, image_user="",
            mounts=[pb.Mount(container_path="/scratch", host_path=str(scratch))],
            source=FakeSource({("configmaps", "default", "cfg"): {"data": {"k": "from-configmap"}}}),
            pod_ip="", host_ip="127.0.0.1", allocatable={"cpu": 1000})
        created = await client.runtime.CreateContainer(
            pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=ctr, sandbox_config=sandbox))
        await client.runtime.StartContainer(pb.StartContainerRequest(container_id=created.container_id))
        yield Running(client, created.container_id, scratch, pod, sandbox_id, sandbox, config)
    finally:
        await client.close()


async def test_container_from_our_config(running: Running) -> None:
    cid, client = running.container_id, running.client
    assert (await _exec(client, cid, "busybox", "id", "-u")).stdout.strip() == b"1000"
    assert (await _exec(client, cid, "busybox", "id", "-g")).stdout.strip() == b"2000"
    env = dict(line.split("=", 1) for line in (await _exec(client, cid, "busybox", "env")).stdout.decode().split())
    assert (env["GREETING"], env["POD_NAME"], env["FROM_CM"]) == ("hello", "probed", "from-configmap")
    write = await _exec(client, cid, "sh", "-c", "echo x > /written")
    assert write.exit_code != 0 and b"Read-only file system" in write.stderr
    assert (await _exec(client, cid, "sh", "-c", "echo x > /scratch/ok")).exit_code == 0
    status = (await client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid))).status
    assert status.labels["io.kubernetes.container.name"] == "app"
    assert status.log_path.endswith("default_probed_uid-ctr-1/app/0.log")


async def test_exec_probes_and_hooks(running: Running) -> None:
    kw: dict[str, Any] = {"cri": running.client, "container_id": running.container_id, "pod_ip": "",
                          "container": CONTAINER}
    assert await run_probe({"exec": {"command": ["true"]}}, **kw) == (True, "")
    assert await run_probe({"exec": {"command": ["sh", "-c", "echo bad; exit 3"]}}, **kw) == (False, "bad\n")
    assert await run_probe({"exec": {"command": ["busybox", "sleep", "5"]}, "timeoutSeconds": 1}, **kw) == \
        (False, 'command "busybox sleep 5" timed out')
    assert await run_handler({"exec": {"command": ["sh", "-c", "echo hooked > /scratch/hook"]}}, **kw,
                             timeout=10) is None
    assert (running.scratch / "hook").read_text() == "hooked\n"
    message = await run_handler({"exec": {"command": ["sh", "-c", "echo oops >&2; exit 2"]}}, **kw, timeout=10,
                                pod=running.pod)
    assert message == ('Exec lifecycle hook ([sh -c echo oops >&2; exit 2]) for Container "app" in Pod '
                       '"probed_default(uid-ctr-1)" failed - error: command \'sh -c echo oops >&2; exit 2\' '
                       'exited with 2: oops\n, message: "oops\\n"')


async def _until(predicate: Any, *, within: float = 10.0) -> None:
    for _ in range(int(within / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true within {within}s")


async def test_probe_manager_with_real_exec(running: Running) -> None:
    cid = running.container_id
    container = {**CONTAINER,
                 "readinessProbe": {"exec": {"command": ["sh", "-c", "[ -e /scratch/ready ]"]}, "periodSeconds": 0.1},
                 "livenessProbe": {"exec": {"command": ["sh", "-c", "[ ! -e /scratch/dead ]"]}, "periodSeconds": 0.1,
                                   "failureThreshold": 2}}
    pod = {**running.pod, "spec": {**running.pod["spec"], "containers": [container]}}
    changes: list[str] = []
    manager = ProbeManager(cri=running.client, on_change=changes.append)
    try:
        manager.sync(pod, {"app": (cid, 0.0)})
        await asyncio.sleep(0.3)
        assert not manager.ready(cid)
        (running.scratch / "ready").touch()
        await _until(lambda: manager.ready(cid))
        (running.scratch / "ready").unlink()
        await _until(lambda: not manager.ready(cid))
        assert manager.liveness_failed(cid) is None
        (running.scratch / "dead").touch()
        await _until(lambda: manager.liveness_failed(cid) is not None)
        assert manager.liveness_failed(cid) == "Liveness probe failed: "
        assert "uid-ctr-1" in changes
    finally:
        await manager.close()


CGROUP_CHECKS = [
    ("cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.shares",
     [str(32 << 20), "50000", "512"]),
    ("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max /sys/fs/cgroup/cpu.max",
     [str(32 << 20), "0", "50000", "100000"]),
]


def _proc_status(text: bytes) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.decode().splitlines() if ":\t" in line)


async def test_capabilities_and_seccomp_reach_the_process(running: Running, busybox: Image) -> None:  # noqa: F811
    locked = {"name": "locked", "image": "busybox", "command": ["sh", "-c", "exec busybox sleep 1000"],
              "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                                  "allowPrivilegeEscalation": False, "seccompProfile": {"type": "RuntimeDefault"}},
              "resources": {"limits": {"memory": "32Mi", "cpu": "500m"}}}
    pod = {**running.pod, "spec": {**running.pod["spec"], "containers": [CONTAINER, locked]}}
    config = await container_config(pod, locked, config=running.config, attempt=0, image_ref=busybox.id,
                                    image_user="", mounts=[], source=FakeSource(), pod_ip="", host_ip="",
                                    allocatable={"cpu": 1000})
    created = await running.client.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=running.sandbox_id, config=config, sandbox_config=running.sandbox))
    await running.client.runtime.StartContainer(pb.StartContainerRequest(container_id=created.container_id))
    status = _proc_status((await _exec(running.client, created.container_id, "cat", "/proc/1/status")).stdout)
    assert int(status["CapEff"], 16) == 1 << 10  # CAP_NET_BIND_SERVICE only
    assert status["Seccomp"].strip() == "2"  # a filter: RuntimeDefault
    plain = _proc_status((await _exec(running.client, running.container_id, "cat", "/proc/1/status")).stdout)
    assert plain["Seccomp"].strip() == "0"  # no profile asked: Unconfined, as upstream's default
    assert (await _exec(running.client, created.container_id, "busybox", "id", "-u")).stdout.strip() == b"0"
    for script, expected in CGROUP_CHECKS:  # cgroup v1, then v2
        answer = await _exec(running.client, created.container_id, "sh", "-c", script)
        if answer.exit_code == 0:
            assert answer.stdout.decode().split() == expected
            break
    else:
        raise AssertionError("no cgroup files visible in the container")


async def _run_to_end(running: Running, container: dict[str, Any], busybox: Image) -> pb.ContainerStatus:  # noqa: F811
    pod = {**running.pod, "spec": {**running.pod["spec"], "containers": [CONTAINER, container]}}
    config = await container_config(pod, container, config=running.config, attempt=0, image_ref=busybox.id,
                                    image_user="", mounts=[], source=FakeSource(), pod_ip="", host_ip="",
                                    allocatable={"cpu": 1000})
    created = await running.client.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=running.sandbox_id, config=config, sandbox_config=running.sandbox))
    await running.client.runtime.StartContainer(pb.StartContainerRequest(container_id=created.container_id))
    request = pb.ContainerStatusRequest(container_id=created.container_id)
    for _ in range(200):
        status = (await running.client.runtime.ContainerStatus(request)).status
        if status.state == pb.CONTAINER_EXITED:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("the container did not end")


@pytest.mark.parametrize(("script", "policy", "expected"), [
    ("echo last words > /dev/termination-log; exit 3", "File", "last words\n"),
    ("echo from the log; exit 1", "FallbackToLogsOnError", "from the log\n"),
    ("echo from the log; exit 1", "File", ""),
])
async def test_termination_message(running: Running, busybox: Image, script: str, policy: str,  # noqa: F811
                                   expected: str) -> None:
    container = {"name": f"ends-{policy.lower()}", "image": "busybox", "command": ["sh", "-c", script],
                 "terminationMessagePolicy": policy, "securityContext": {"runAsUser": 1000}}
    status = await _run_to_end(running, container, busybox)
    assert await termination_message(status, container) == expected
