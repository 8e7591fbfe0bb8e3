"""Fixtures of the daemon tests: an in-process app over a temp store, a real registry, a real daemon."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine.daemon.app import make_app
from engine.daemon.context import EngineContext
from engine.daemon.server import prepare_root
from engine.images.store import ImageStore
from tests.engine.daemon.engine_env import REGISTRY_BIN, EngineProcess, Registry


@pytest.fixture
def context(tmp_path: Path) -> Iterator[EngineContext]:
    root = tmp_path / "root"
    store = ImageStore(root)
    ctx = EngineContext(store=store, root=root, socket_path=tmp_path / "unused.sock", registry_timeout=5.0)
    prepare_root(root, ctx.scratch)
    try:
        yield ctx
    finally:
        store.close()


@pytest.fixture
async def api(context: EngineContext) -> AsyncIterator[TestClient]:
    """The daemon's app on a loopback test server (same handlers as the unix socket)."""
    client = TestClient(TestServer(make_app(context)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await context.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed")
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    daemon = EngineProcess(tmp_path_factory.mktemp("engine")).start()
    try:
        yield daemon
    finally:
        daemon.stop()
