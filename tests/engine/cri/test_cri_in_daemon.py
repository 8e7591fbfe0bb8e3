"""`pinnace engine serve` serves the CRI beside the Docker API, over the same store and containers."""

from __future__ import annotations

import grpc

from engine.cri.proto import api_pb2 as pb
from engine.cri.proto import api_pb2_grpc as pb_grpc
from tests.engine.daemon.engine_env import EngineProcess, busybox_image, open_store, pinnace


async def test_daemon_serves_cri_over_its_store(tmp_path):
    engine = EngineProcess(tmp_path / "engine")
    engine.root.mkdir(parents=True)
    with open_store(engine.root) as store:
        image = busybox_image(store, tmp_path / "img", names=("cri-visible:1",))
    engine.start()
    try:
        cri_socket = engine.socket.parent / "cri.sock"
        async with grpc.aio.insecure_channel(f"unix:{cri_socket}") as channel:
            version = await pb_grpc.RuntimeServiceStub(channel).Version(pb.VersionRequest())
            assert version.runtime_api_version == "v1"
            listed = await pb_grpc.ImageServiceStub(channel).ListImages(pb.ListImagesRequest())
            assert any(i.id == image.id for i in listed.images)
        # the Docker API side sees the same image
        assert "cri-visible" in pinnace("engine", "images", env=engine.env).stdout.decode()
    finally:
        engine.stop()
    assert not cri_socket.exists()
