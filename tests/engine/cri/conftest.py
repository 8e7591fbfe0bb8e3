"""Fixtures of the CRI tests: a busybox image store per session, and a CRI server per test.

The ``cri`` fixture fails the test if its own teardown (RemovePodSandbox of everything, removal of
every container) left any mount behind, then scrubs the host regardless: namespace and rootfs
mounts, the cgroup parent, the test bridge and the temp dirs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.images.store import Image, ImageStore
from tests.engine.cri import cri_env
from tests.engine.daemon.engine_env import busybox_image

needs_host = pytest.mark.skipif(
    bool(cri_env.MISSING) or os.geteuid() != 0,
    reason=f"needs root and {', '.join(cri_env.MISSING) or 'crun, conmon, CNI plugins'}",
)


@pytest.fixture(scope="session")
def cri_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageStore]:
    base = tmp_path_factory.mktemp("cri-store")
    store = ImageStore(base / "store")
    busybox_image(store, base / "tree", names=("busybox:latest",))
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def busybox(cri_store: ImageStore) -> Image:
    return cri_store.resolve("busybox:latest")


@pytest.fixture
async def cri(cri_store: ImageStore, request: pytest.FixtureRequest) -> AsyncIterator[cri_env.Harness]:
    if cri_env.MISSING or os.geteuid() != 0:
        pytest.skip(f"needs root and {', '.join(cri_env.MISSING) or 'crun, conmon, CNI plugins'}")
    base = cri_env.new_base()
    parent = f"pinnace-cri-{os.getpid()}-{abs(hash(request.node.nodeid)) % 10**8}"
    harness = cri_env.Harness(base=base, store=cri_store, cgroup_parent=parent)
    left: list[str] = []
    try:
        try:
            await harness.start()
            yield harness
        finally:
            await harness.close()
        left = cri_env.mounts_under(base)
    finally:
        cri_env.scrub(base, cgroup_parent=parent)
    assert not left, f"teardown left mounts: {left}"


@pytest.fixture
def log_dir(cri: cri_env.Harness) -> Path:
    return cri.log_dir
