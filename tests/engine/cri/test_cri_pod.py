"""Issue 5's CRI acceptance: a real pod through the gRPC API with the generated stubs.

A sandbox on the reference bridge + host-local network; two busybox containers sharing its network
namespace (one serves a file with httpd on :8080, the other fetches it from 127.0.0.1); the pod IP
answers from the host; ExecSync returns output and exit codes; stop and remove give back the
network namespace, the IP, the cgroups and the containers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest

from engine.cri import namespaces
from engine.cri.proto import api_pb2 as pb
from engine.images.store import Image
from engine.runtime import cgroups
from tests.engine.cri import cri_env
from tests.engine.cri.conftest import needs_host

pytestmark = needs_host

SERVE = "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"
FETCH = "wget -qO- http://127.0.0.1:8080/"


async def _until(predicate, *, what: str, within: float = 10.0) -> None:
    """Poll ``predicate`` (a state in another process: no event to wait on) every 50 ms."""
    for _ in range(int(within / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


async def _run_container(cri: cri_env.Harness, sandbox_id: str, config: pb.PodSandboxConfig,
                         ctr: pb.ContainerConfig) -> str:
    created = await cri.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=ctr, sandbox_config=config)
    )
    await cri.runtime.StartContainer(pb.StartContainerRequest(container_id=created.container_id))
    return created.container_id


async def _status(cri: cri_env.Harness, container_id: str) -> pb.ContainerStatus:
    reply = await cri.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=container_id))
    return reply.status


async def test_pod_with_two_containers_sharing_the_network(cri: cri_env.Harness, busybox: Image):
    version = await cri.runtime.Version(pb.VersionRequest())
    assert (version.runtime_name, version.runtime_api_version) == ("pinnace", "v1")

    config = cri_env.sandbox_config("web", uid=str(uuid.uuid4()), log_dir=cri.log_dir / "web",
                                    hostname="web-pod", labels={"app": "web"})
    sandbox_id = (await cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))).pod_sandbox_id
    status = (await cri.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))).status
    assert status.state == pb.SANDBOX_READY
    pod_ip = status.network.ip
    assert ipaddress.ip_address(pod_ip) in ipaddress.ip_network(cri_env.SUBNET)
    assert cri_env.ipam_reservations(cri.ipam_dir) == [pod_ip]
    ready = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY), label_selector={"app": "web"})
    assert [s.id for s in (await cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=ready))).items] == [
        sandbox_id]
    netns = namespaces.ns_path(cri.run_dir, "net", sandbox_id)
    assert namespaces.is_held(netns)

    server_id = await _run_container(
        cri, sandbox_id, config,
        cri_env.container_config("server", busybox.id, ["sh", "-c", SERVE], labels={"role": "server"},
                                 log_path="server/0.log"),
    )

    async def serving() -> bool:
        reply = await cri.runtime.ExecSync(pb.ExecSyncRequest(container_id=server_id, cmd=["sh", "-c", FETCH],
                                                              timeout=5))
        return reply.exit_code == 0

    await _until(serving, what="httpd in the server container")

    client_id = await _run_container(
        cri, sandbox_id, config,
        cri_env.container_config("client", busybox.id, ["sh", "-c", FETCH], labels={"role": "client"},
                                 log_path="client/0.log"),
    )

    async def client_done() -> bool:
        return (await _status(cri, client_id)).state == pb.CONTAINER_EXITED

    await _until(client_done, what="the client container to exit")
    client = await _status(cri, client_id)
    assert (client.exit_code, client.reason) == (0, "Completed")
    assert (client.image_id, client.image_ref, client.image.image) == (busybox.id, busybox.id, busybox.id)
    assert client.finished_at >= client.started_at >= client.created_at > 0
    assert client.log_path == str(cri.log_dir / "web" / "client/0.log")
    log_text = await asyncio.to_thread(Path(client.log_path).read_text)
    assert " stdout F hello-from-pod" in log_text

    # the pod IP answers from the host
    assert await asyncio.to_thread(_http_get, f"http://{pod_ip}:8080/") == b"hello-from-pod\n"

    # ExecSync: output, stderr, exit code, and the pod's hostname and DNS files
    reply = await cri.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=server_id, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"])
    )
    assert (reply.stdout, reply.stderr, reply.exit_code) == (b"out\n", b"err\n", 3)
    reply = await cri.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=server_id, cmd=["cat", "/proc/sys/kernel/hostname", "/etc/resolv.conf"])
    )
    assert reply.stdout.decode().splitlines() == [
        "web-pod", "search default.svc.cluster.local", f"nameserver {cri_env.GATEWAY}", "options ndots:5",
    ]

    listed = await cri.runtime.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(
        pod_sandbox_id=sandbox_id, state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))))
    assert [c.id for c in listed.containers] == [server_id]
    assert listed.containers[0].metadata.name == "server"
    assert listed.containers[0].annotations["io.test/kind"] == "server"
    stats = (await cri.runtime.ContainerStats(pb.ContainerStatsRequest(container_id=server_id))).stats
    assert stats.memory.working_set_bytes.value > 0 and stats.cpu.usage_core_nano_seconds.value > 0

    listed_stats = await cri.runtime.ListContainerStats(pb.ListContainerStatsRequest(
        filter=pb.ContainerStatsFilter(pod_sandbox_id=sandbox_id, label_selector={"role": "server"})))
    assert [s.attributes.id for s in listed_stats.stats] == [server_id]

    # live resource changes and log reopening on the running server
    await cri.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=server_id, linux=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20)))
    assert (await _status(cri, server_id)).resources.linux.memory_limit_in_bytes == 64 << 20
    await cri.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=server_id))
    assert await asyncio.to_thread(os.path.exists, cri.log_dir / "web" / "server/0.log")

    cgroup_paths = [cri.manager.get(cid).state.cgroups_path for cid in (server_id, client_id)]
    assert cgroups.ContainerCgroup(cgroup_paths[0]).exists()

    # stop: containers end, the network goes (netns, IP), the sandbox stays listed as not ready
    await cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert (await _status(cri, server_id)).state == pb.CONTAINER_EXITED
    assert not await asyncio.to_thread(os.path.exists, netns)
    assert cri_env.ipam_reservations(cri.ipam_dir) == []
    status = (await cri.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))).status
    assert status.state == pb.SANDBOX_NOTREADY
    assert (await cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=ready))).items == []
    await cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))  # idempotent

    # remove: containers, their cgroups and dirs, the sandbox
    await cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert (await cri.runtime.ListContainers(pb.ListContainersRequest())).containers == []
    assert (await cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest())).items == []
    assert not any(cgroups.ContainerCgroup(p).exists() for p in cgroup_paths)
    assert cri.manager.list(all=True) == []
    assert not (cri.root / "cri" / "sandboxes" / sandbox_id).exists()
    assert [p for k in namespaces.KINDS if (p := namespaces.ns_path(cri.run_dir, k, sandbox_id)).exists()] == []
    assert cri_env.mounts_under(cri.base) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cri.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))  # idempotent
