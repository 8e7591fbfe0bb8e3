"""Fixtures for the image tests: a fresh store per test, offline busybox trees, one real
docker-registry for the session, and a counting proxy per test that needs one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from imgtest_util import GateProxy, RegistryProcess, busybox_tree, need_tool

from engine.images.store import ImageStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    s = ImageStore(tmp_path / "store")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def busybox_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tool("/bin/busybox")
    return busybox_tree(tmp_path_factory.mktemp("busybox") / "root")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    need_tool("/usr/bin/docker-registry")
    proc = RegistryProcess(tmp_path_factory.mktemp("registry")).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def proxy(registry: RegistryProcess) -> AsyncIterator[GateProxy]:
    gate = await GateProxy(registry.host).start()
    try:
        yield gate
    finally:
        await gate.stop()
