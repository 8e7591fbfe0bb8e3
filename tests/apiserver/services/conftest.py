"""Fixtures: one real ``pinnace server`` (no controllers) for the Service allocation tests, which
may restart it on the same data dir, and an ApiClient on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from e2e.cluster import Server
from machinery.client import ApiClient
from machinery.kubeconfig import load_kubeconfig


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("services") / "data"
    data.mkdir()
    srv = Server(data).start("--no-controllers")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=30) as c:
        yield c
