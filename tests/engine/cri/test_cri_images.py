"""``runtime.v1.ImageService`` through gRPC: list, status, pull from a real registry, remove, fs info."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import grpc
import pytest

from engine.cri.proto import api_pb2 as pb
from engine.images.registry import RegistryClient
from engine.images.store import Image
from tests.engine.cri import cri_env
from tests.engine.cri.conftest import needs_host
from tests.engine.daemon.engine_env import REGISTRY_BIN, Registry, busybox_image

pytestmark = needs_host


def _spec(name: str) -> pb.ImageSpec:
    return pb.ImageSpec(image=name)


async def test_list_and_status(cri: cri_env.Harness, busybox: Image):
    listed = (await cri.images.ListImages(pb.ListImagesRequest())).images
    mine = next(i for i in listed if i.id == busybox.id)
    assert "docker.io/library/busybox:latest" in mine.repo_tags and mine.size > 0
    assert mine.spec.image == busybox.id
    only = await cri.images.ListImages(pb.ListImagesRequest(filter=pb.ImageFilter(image=_spec("busybox"))))
    assert [i.id for i in only.images] == [busybox.id]

    status = await cri.images.ImageStatus(pb.ImageStatusRequest(image=_spec(busybox.id), verbose=True))
    assert status.image.id == busybox.id and '"config"' in status.info["info"]
    missing = await cri.images.ImageStatus(pb.ImageStatusRequest(image=_spec("no-such-image:1")))
    assert not missing.HasField("image")  # unknown: an empty answer, not an error

    fs = (await cri.images.ImageFsInfo(pb.ImageFsInfoRequest())).image_filesystems
    assert fs[0].used_bytes.value > 1 << 20 and fs[0].inodes_used.value > 1 and fs[0].timestamp > 0
    assert fs[0].fs_id.mountpoint == str(cri.store.root)


async def test_remove_is_idempotent_and_refused_while_in_use(cri: cri_env.Harness, tmp_path: Path):
    throwaway = busybox_image(cri.store, tmp_path, names=("throwaway:1",), label=str(uuid.uuid4()))
    config = cri_env.sandbox_config("img", uid=str(uuid.uuid4()))
    sandbox_id = (await cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))).pod_sandbox_id
    created = await cri.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=sandbox_id, config=cri_env.container_config("c", throwaway.id, ["true"])))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cri.images.RemoveImage(pb.RemoveImageRequest(image=_spec("throwaway:1")))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and created.container_id in err.value.details()

    await cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=created.container_id))
    await cri.images.RemoveImage(pb.RemoveImageRequest(image=_spec("throwaway:1")))
    assert not cri.store.exists(throwaway.id)
    await cri.images.RemoveImage(pb.RemoveImageRequest(image=_spec("throwaway:1")))  # already gone: fine


async def test_pull_from_a_registry(cri: cri_env.Harness, busybox: Image, tmp_path: Path):
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed")
    registry = Registry(tmp_path / "registry").start()
    try:
        name = f"{registry.host}/cri/busybox:1"
        async with RegistryClient(cri.store) as client:
            await client.push("busybox:latest", dest=name)
        auth = pb.AuthConfig(auth=base64.b64encode(b"user:ignored").decode())  # the registry has no auth
        pulled = await cri.images.PullImage(pb.PullImageRequest(image=_spec(name), auth=auth))
        assert pulled.image_ref == busybox.id
        status = await cri.images.ImageStatus(pb.ImageStatusRequest(image=_spec(name)))
        assert name in status.image.repo_tags
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await cri.images.PullImage(pb.PullImageRequest(image=_spec(f"{registry.host}/cri/missing:1")))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert status.image.repo_digests[0].startswith(f"{registry.host}/cri/busybox@sha256:")
    finally:
        registry.stop()
        for ref in cri.store.resolve(busybox.id).references:  # the shared store gets its old names back
            if ref.startswith(registry.host):
                cri.store.untag(ref)


async def test_bad_image_requests(cri: cri_env.Harness):
    for call in (
        cri.images.PullImage(pb.PullImageRequest(image=_spec("UPPER/case:bad!"))),
        cri.images.PullImage(pb.PullImageRequest()),
        cri.images.ImageStatus(pb.ImageStatusRequest()),
        cri.images.PullImage(pb.PullImageRequest(image=_spec("busybox"), auth=pb.AuthConfig(auth="%%%"))),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
