"""An engine restart: a new container manager and CRI server on the same root find the pod again."""

from __future__ import annotations

import uuid

from engine.cri.proto import api_pb2 as pb
from engine.images.store import Image
from tests.engine.cri import cri_env
from tests.engine.cri.conftest import needs_host

pytestmark = needs_host


async def test_pod_survives_a_restart_of_the_server(cri: cri_env.Harness, busybox: Image):
    config = cri_env.sandbox_config("keep", uid=str(uuid.uuid4()), log_dir=cri.log_dir, labels={"app": "keep"})
    sandbox_id = (await cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))).pod_sandbox_id
    before = (await cri.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))).status
    ctr = cri_env.container_config("main", busybox.id, ["busybox", "sleep", "1000"], labels={"x": "y"},
                                   log_path="main/0.log")
    cid = (await cri.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=ctr, sandbox_config=config))).container_id
    await cri.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))

    old_server = cri.server
    await cri.shutdown()  # the engine goes away; sandboxes and containers stay
    await cri.start()
    assert cri.server is not old_server

    after = (await cri.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))).status
    assert (after.state, after.network.ip, after.created_at) == (pb.SANDBOX_READY, before.network.ip,
                                                                 before.created_at)
    assert after.labels == {"app": "keep"}
    listed = await cri.runtime.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(label_selector={"x": "y"})))
    assert [(c.id, c.state, c.metadata.name) for c in listed.containers] == [(cid, pb.CONTAINER_RUNNING, "main")]
    reply = await cri.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["cat", "/etc/hostname"]))
    assert (reply.exit_code, reply.stdout) == (0, b"keep\n")
    status = (await cri.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid))).status
    assert status.log_path == str(cri.log_dir / "main/0.log")
