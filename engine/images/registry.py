"""The registry client the daemon and CLI use: ``pull`` and ``push`` over the OCI distribution API.

A thin facade: one ``Transport`` (session, auth, TLS choice) shared by every call, a semaphore
bounding parallel blob transfers, and the ``Puller``/``Pusher`` doing the work. Async; use it as
``async with RegistryClient(store) as client: await client.pull("busybox")``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from engine.images.auth import Authenticator, Credentials
from engine.images.pull import ProgressFn, Puller, fetch_manifest
from engine.images.push import DEFAULT_CHUNK_SIZE, Pusher
from engine.images.reference import parse_reference
from engine.images.store import Image, ImageStore
from engine.images.transport import Transport


class RegistryClient:
    """Pull into and push from one ``ImageStore``."""

    def __init__(
        self,
        store: ImageStore,
        *,
        credentials: Mapping[str, Credentials] | None = None,
        docker_config: str | os.PathLike[str] | None = None,
        use_docker_config: bool = True,
        insecure: Iterable[str] = (),
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_parallel: int = 4,
    ) -> None:
        """``credentials`` (host -> Credentials) override the docker ``config.json`` ones;
        ``insecure`` hosts (``host`` or ``host:port``) use plain HTTP like loopback does; ``timeout``
        is the longest silence tolerated mid-transfer."""
        self.store = store
        auth = Authenticator(credentials, config_path=docker_config, use_docker_config=use_docker_config)
        self.transport = Transport(auth=auth, insecure=insecure, timeout=timeout, connect_timeout=connect_timeout)
        self.chunk_size = chunk_size
        self._max_parallel = max_parallel
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._max_parallel)
        return self._semaphore

    async def pull(self, ref: str, *, platform: str | None = None, progress: ProgressFn | None = None) -> Image:
        """``docker pull``: fetch ``ref`` (tag or digest) and its layers; returns the stored image."""
        puller = Puller(self.transport, self.store, semaphore=self.semaphore, progress=progress)
        return await puller.pull(ref, platform=platform)

    async def push(self, source: str, *, dest: str | None = None, progress: ProgressFn | None = None) -> str:
        """``docker push``: send the local image ``source`` as ``dest``; returns the manifest digest."""
        pusher = Pusher(
            self.transport, self.store, semaphore=self.semaphore, chunk_size=self.chunk_size, progress=progress
        )
        return await pusher.push(source, dest=dest)

    async def inspect(self, ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The remote manifest or index ``ref`` names: (descriptor, document), nothing stored."""
        parsed = parse_reference(ref)
        desc, _, doc = await fetch_manifest(self.transport, parsed, parsed.remote_object)
        return desc, doc

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class RegistryPool:
    """One shared client for anonymous and config-file pulls, a private one per request that brings
    its own credentials (closed after it). The daemon's API and the CRI both pull through one."""

    def __init__(self, store: ImageStore, *, insecure: Iterable[str] = (), timeout: float = 30.0) -> None:
        self.store = store
        self.insecure = tuple(insecure)
        self.timeout = timeout
        self._shared: RegistryClient | None = None

    def _client(self, credentials: Mapping[str, Credentials] | None) -> RegistryClient:
        return RegistryClient(self.store, credentials=credentials, insecure=self.insecure, timeout=self.timeout)

    @asynccontextmanager
    async def __call__(self, credentials: Mapping[str, Credentials] | None = None) -> AsyncIterator[RegistryClient]:
        if not credentials:
            if self._shared is None:
                self._shared = self._client(None)
            yield self._shared
            return
        client = self._client(credentials)
        try:
            yield client
        finally:
            await client.close()

    async def close(self) -> None:
        if self._shared is not None:
            await self._shared.close()
            self._shared = None
