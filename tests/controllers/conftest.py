"""Fixtures: one real ``pinnace server`` for this directory, an ApiClient on it, fresh namespaces, and
the controllers running in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import pytest
from controller_env import NS, Running

from controllers.manager import ControllerManager
from e2e.cluster import Server
from machinery.client import ApiClient, ApiError
from machinery.kubeconfig import load_kubeconfig


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("controllers") / "data"
    data.mkdir()
    srv = Server(data).start("--no-controllers")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=10) as c:
        yield c


@pytest.fixture
async def namespace(client: ApiClient) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(ApiError):
        await client.delete(NS, name)


@pytest.fixture
def running(client: ApiClient) -> Running:
    """``async with running("garbagecollector")``: the named controllers, synced, stopped on exit."""

    @contextlib.asynccontextmanager
    async def run(*names: str) -> AsyncIterator[ControllerManager]:
        chosen: Iterable[str] | None = names or None
        mgr = ControllerManager(client, names=chosen)
        await mgr.start()
        try:
            async with asyncio.timeout(10):
                await mgr.wait_synced()
            yield mgr
        finally:
            await mgr.stop()

    return run
