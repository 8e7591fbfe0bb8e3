"""Fixtures of the cluster DNS tests: one real ``pinnace server`` for the directory, an ApiClient on it,
a fresh namespace per test, and a fake upstream resolver."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_upstream import FakeUpstream

from e2e.cluster import Server
from machinery.client import ApiClient, ApiError, Resource
from machinery.kubeconfig import load_kubeconfig

NAMESPACES = Resource("", "v1", "namespaces", False)


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("dns") / "data"
    data.mkdir()
    srv = Server(data).start("--no-controllers")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def api(api_server: Server) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(api_server.kubeconfig), request_timeout=10) as c:
        yield c


@pytest.fixture
async def ns(api: ApiClient) -> AsyncIterator[str]:
    name = f"d-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(ApiError):
        await api.delete(NAMESPACES, name)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
