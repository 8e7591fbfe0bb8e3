"""Bad input and unknown ids through gRPC: one clear status each, and nothing left behind."""

from __future__ import annotations

import uuid

import grpc
import pytest

from engine.cri.proto import api_pb2 as pb
from engine.images.store import Image
from tests.engine.cri import cri_env
from tests.engine.cri.conftest import needs_host

pytestmark = needs_host

UNKNOWN = "f" * 64


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details()


async def test_unknown_ids_are_not_found_and_removals_are_idempotent(cri: cri_env.Harness):
    rt = cri.runtime
    for call in (
        rt.ContainerStatus(pb.ContainerStatusRequest(container_id=UNKNOWN)),
        rt.StartContainer(pb.StartContainerRequest(container_id=UNKNOWN)),
        rt.StopContainer(pb.StopContainerRequest(container_id=UNKNOWN)),
        rt.ExecSync(pb.ExecSyncRequest(container_id=UNKNOWN, cmd=["true"])),
        rt.Exec(pb.ExecRequest(container_id=UNKNOWN, cmd=["true"], stdout=True)),
        rt.ContainerStats(pb.ContainerStatsRequest(container_id=UNKNOWN)),
        rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=UNKNOWN)),
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=UNKNOWN)),
        rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=UNKNOWN, port=[80])),
        rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=UNKNOWN)),
    ):
        code, details = await _code(call)
        assert code == grpc.StatusCode.NOT_FOUND and UNKNOWN in details and "\n" not in details
    await rt.RemoveContainer(pb.RemoveContainerRequest(container_id=UNKNOWN))
    await rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=UNKNOWN))


async def test_bad_sandbox_requests_are_invalid_argument(cri: cri_env.Harness):
    bad_dns = cri_env.sandbox_config("web", uid="u")
    bad_dns.dns_config.servers.append("dns.example")
    for request, words in (
        (pb.RunPodSandboxRequest(), "metadata"),
        (pb.RunPodSandboxRequest(config=bad_dns), "not an IP address"),
        (pb.RunPodSandboxRequest(config=cri_env.sandbox_config("web", uid="u"), runtime_handler="kata"),
         "runtime handler"),
    ):
        code, details = await _code(cri.runtime.RunPodSandbox(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and words in details
    assert (await cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest())).items == []


async def test_bad_container_requests_leave_nothing_behind(cri: cri_env.Harness, busybox: Image):
    config = cri_env.sandbox_config("web", uid=str(uuid.uuid4()), log_dir=cri.log_dir)
    sandbox_id = (await cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))).pod_sandbox_id

    def create(ctr: pb.ContainerConfig):
        return cri.runtime.CreateContainer(
            pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=ctr, sandbox_config=config))

    def ctr(name: str, **kw) -> pb.ContainerConfig:
        return cri_env.container_config(name, busybox.id, ["busybox", "sleep", "1000"], **kw)

    bad_mount = ctr("mount")
    bad_mount.mounts.append(pb.Mount(container_path="/data", host_path=str(cri.base / "no-such-dir")))
    bad_memory = ctr("memory")
    bad_memory.linux.resources.memory_limit_in_bytes = 1024
    cases = [
        (ctr("noimage"), "no image", grpc.StatusCode.INVALID_ARGUMENT),
        (cri_env.container_config("unknown", "sha256:" + "0" * 64, ["true"]), "not found", grpc.StatusCode.NOT_FOUND),
        (bad_mount, "does not exist", grpc.StatusCode.INVALID_ARGUMENT),
        (bad_memory, "memory", grpc.StatusCode.INVALID_ARGUMENT),
        (cri_env.container_config("cmd", busybox.id, ["/no/such/binary"]), "not found",
         grpc.StatusCode.INVALID_ARGUMENT),
    ]
    cases[0][0].image.image = ""
    for request, words, expected in cases:
        code, details = await _code(create(request))
        assert (code, words in details) == (expected, True), details
    assert cri.manager.list(all=True) == []
    assert not any((cri.root / "containers").iterdir())

    first = (await create(ctr("dup"))).container_id
    code, details = await _code(create(ctr("dup")))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "dup" in details
    assert [c.id for c in cri.manager.list(all=True)] == [first]

    # streams on a container that is not running; bad exec requests
    code, _ = await _code(cri.runtime.ExecSync(pb.ExecSyncRequest(container_id=first, cmd=["true"])))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    await cri.runtime.StartContainer(pb.StartContainerRequest(container_id=first))
    for request, words in (
        (pb.ExecRequest(container_id=first, cmd=[], stdout=True), "no command"),
        (pb.ExecRequest(container_id=first, cmd=["sh"]), "one of stdin"),
        (pb.ExecRequest(container_id=first, cmd=["sh"], tty=True, stdout=True, stderr=True), "tty and stderr"),
    ):
        code, details = await _code(cri.runtime.Exec(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and words in details
    code, details = await _code(cri.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=first, cmd=["busybox", "sleep", "5"], timeout=1)))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "timed out" in details
    code, _ = await _code(cri.runtime.StartContainer(pb.StartContainerRequest(container_id=first)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    # a container cannot be created in a stopped sandbox
    await cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    code, details = await _code(create(ctr("late")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not ready" in details
