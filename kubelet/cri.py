"""The kubelet's only way to the container engine: CRI v1 over gRPC on a unix socket.

A thin holder of one ``grpc.aio`` channel and the two upstream service stubs, so every part of the
kubelet (pod workers, probes, the streaming server, node status) shares one connection and calls
the RPCs with the upstream message types (``engine.cri.proto.api_pb2``, imported here as ``pb``).
gRPC failures surface as ``grpc.aio.AioRpcError``; ``is_not_found`` names the one callers branch on.
"""

from __future__ import annotations

import grpc

from engine.cri.proto import api_pb2 as pb
from engine.cri.proto import api_pb2_grpc as pb_grpc

__all__ = ["CriClient", "is_not_found", "pb"]

DEFAULT_TIMEOUT = 120.0  # seconds: pulls and stops may be slow; streams are not gRPC calls
MAX_MESSAGE = 32 << 20  # ExecSync answers carry up to 16 MiB per stream


class CriClient:
    """``runtime`` and ``images`` are the upstream stubs; call them with ``timeout=`` as needed."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.channel = grpc.aio.insecure_channel(
            f"unix:{socket_path}",
            options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                     ("grpc.max_send_message_length", MAX_MESSAGE)])
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.images = pb_grpc.ImageServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> CriClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def version(self) -> pb.VersionResponse:
        return await self.runtime.Version(pb.VersionRequest(version="v1"), timeout=10)

    async def ready(self) -> tuple[bool, str]:
        """(RuntimeReady and NetworkReady, the reason when not) from the runtime's Status RPC."""
        try:
            status = await self.runtime.Status(pb.StatusRequest(), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return False, f"container runtime is down: {exc.details()}"
        failing = [c for c in status.status.conditions if not c.status]
        if not failing:
            return True, ""
        return False, "; ".join(f"{c.type}=false reason:{c.reason} message:{c.message}" for c in failing)


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.NOT_FOUND
