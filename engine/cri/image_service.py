"""``runtime.v1.ImageService`` on the engine's image store: list, status, pull, remove, fs info.

Images are named as the CRI expects: ``id`` is the config digest (``sha256:...``), ``repo_tags``
and ``repo_digests`` are fully qualified (``docker.io/library/busybox:latest``), and a pull answers
the image id as ``image_ref``, which the kubelet then passes back in ``ContainerConfig.image``.
ImageStatus of an unknown image is an empty answer, not an error (the kubelet asks before pulling);
RemoveImage of an unknown one succeeds (the call is idempotent), and removes every name of the
image, refusing while a container uses it. Pull credentials come from the request's ``AuthConfig``
(username/password, or ``auth`` = base64 "user:password") for that request only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import grpc
import orjson

from engine.cri.errors import FailedPrecondition, InvalidArgument
from engine.cri.fsusage import tree_usage
from engine.cri.proto import api_pb2 as pb
from engine.cri.proto import api_pb2_grpc as pb_grpc
from engine.cri.servicer import translate_errors
from engine.images.auth import Credentials
from engine.images.errors import ImageNotFound
from engine.images.reference import parse_reference
from engine.images.registry import RegistryClient, RegistryPool
from engine.images.store import Image, ImageStore

# credentials (or None) -> a registry client for one request; EngineContext.registry has this shape
RegistryFactory = Callable[[Mapping[str, Credentials] | None], AbstractAsyncContextManager[RegistryClient]]


def credentials_of(auth: pb.AuthConfig, image: str) -> dict[str, Credentials] | None:
    """The request's credentials keyed by registry host, or None if it brings none."""
    user, password = auth.username, auth.password
    if auth.auth and not user:
        try:
            user, sep, password = base64.b64decode(auth.auth, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("auth is not base64 of 'user:password'") from None
        if not sep:
            raise InvalidArgument("auth is not base64 of 'user:password'")
    if not user:
        if auth.identity_token or auth.registry_token:
            raise InvalidArgument("token authentication is not supported; send username and password")
        return None
    host = auth.server_address or parse_reference(image).domain
    return {host: Credentials(user, password)}


def _user_fields(config: Mapping[str, object]) -> dict[str, object]:
    """Image.uid / Image.username from the image's ``User`` ("uid", "name", "uid:gid")."""
    user = str((config.get("config") or {}).get("User") or "")  # type: ignore[union-attr]
    name = user.partition(":")[0]
    if not name:
        return {}
    if name.isdigit():
        return {"uid": pb.Int64Value(value=int(name))}
    return {"username": name}


def image_message(image: Image) -> pb.Image:
    refs = image.references
    return pb.Image(
        id=image.id,
        repo_tags=[r for r in refs if "@" not in r],
        repo_digests=[r for r in refs if "@" in r],
        size=max(image.size, 1),
        spec=pb.ImageSpec(image=image.id),
        **_user_fields(image.config),
    )


def _image_spec(spec: pb.ImageSpec) -> str:
    if not spec.image:
        raise InvalidArgument("no image given (ImageSpec.image is empty)")
    return spec.image


@translate_errors
class ImageService(pb_grpc.ImageServiceServicer):
    """The CRI image service over one store; ``in_use`` tells which container holds an image id."""

    def __init__(
        self,
        store: ImageStore,
        *,
        registries: RegistryFactory | None = None,
        in_use: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.registries = registries or RegistryPool(store)
        self.in_use = in_use

    def _find(self, text: str) -> Image | None:
        try:
            return self.store.resolve(text)
        except ImageNotFound:
            return None

    async def ListImages(
        self, request: pb.ListImagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListImagesResponse:
        wanted = request.filter.image.image
        if wanted:
            image = self._find(wanted)
            images = [image] if image is not None else []
        else:
            images = self.store.images()
        return pb.ListImagesResponse(images=[image_message(i) for i in images])

    async def ImageStatus(
        self, request: pb.ImageStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImageStatusResponse:
        image = self._find(_image_spec(request.image))
        if image is None:
            return pb.ImageStatusResponse()
        info = {"info": orjson.dumps({"config": image.config, "manifestDigest": image.manifest_digest}).decode()}
        return pb.ImageStatusResponse(image=image_message(image), info=info if request.verbose else {})

    async def PullImage(self, request: pb.PullImageRequest, context: grpc.aio.ServicerContext) -> pb.PullImageResponse:
        name = _image_spec(request.image)
        parse_reference(name)  # InvalidReference (-> INVALID_ARGUMENT) before any network work
        credentials = credentials_of(request.auth, name)
        async with self.registries(credentials) as client:
            image = await client.pull(name)
        return pb.PullImageResponse(image_ref=image.id)

    async def RemoveImage(
        self, request: pb.RemoveImageRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemoveImageResponse:
        image = self._find(_image_spec(request.image))
        if image is None:
            return pb.RemoveImageResponse()
        user = self.in_use(image.id) if self.in_use is not None else None
        if user is not None:
            raise FailedPrecondition(f"image {image.id} is in use by container {user}")
        await asyncio.to_thread(self.store.remove, image.id, force=True)
        return pb.RemoveImageResponse()

    async def ImageFsInfo(
        self, request: pb.ImageFsInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImageFsInfoResponse:
        root = Path(self.store.root)
        used, inodes = await asyncio.to_thread(tree_usage, root)
        usage = pb.FilesystemUsage(
            timestamp=time.time_ns(),
            fs_id=pb.FilesystemIdentifier(mountpoint=str(root)),
            used_bytes=pb.UInt64Value(value=used),
            inodes_used=pb.UInt64Value(value=inodes),
        )
        return pb.ImageFsInfoResponse(image_filesystems=[usage])
