"""Fixtures for real containers: a shared image store, and a manager per test on a fresh root.

Every test's manager uses its own cgroup parent, so leftovers are attributable; teardown removes
every container the test left (force), then scrubs anything still there (runtime records, conmon
processes by pid, mounts, cgroups) and fails the test if the manager's own removal left any.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.containers.manager import ContainerManager
from engine.images.store import ImageStore
from tests.engine.containers import ctr_env

MISSING = [name for name in ("crun", "conmon") if shutil.which(name) is None]
needs_runtime = pytest.mark.skipif(bool(MISSING), reason=f"needs {' and '.join(MISSING)} installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, cgroups)")


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageStore]:
    base = tmp_path_factory.mktemp("ctr-store")
    s = ImageStore(base / "store")
    tree = ctr_env.busybox_tree(base / "tree")
    ctr_env.write_image(s, tree, names=("busybox:latest",), settings={})
    ctr_env.write_image(s, tree, names=("stopper:latest",), settings={"StopSignal": "SIGUSR1", "WorkingDir": "/tmp"})
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def cgroup_parent(request: pytest.FixtureRequest) -> str:
    return f"pinnace-test-{os.getpid()}-{abs(hash(request.node.nodeid)) % 10**8}"


@pytest.fixture
def engine_root() -> Iterator[Path]:
    """A root user-namespaced containers can traverse (pytest's own tmp dirs are mode 0700)."""
    base = Path(tempfile.mkdtemp(prefix="pinnace-ctr-", dir="/tmp"))
    base.chmod(0o711)
    try:
        yield base / "engine"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def manager(engine_root: Path, store: ImageStore, cgroup_parent: str) -> AsyncIterator[ContainerManager]:
    if MISSING or os.geteuid() != 0:
        pytest.skip(f"needs root and {' and '.join(MISSING) or 'crun and conmon'}")
    root = engine_root
    m = ContainerManager(root, store, cgroup_parent=cgroup_parent)
    await m.load()
    try:
        yield m
    finally:
        for c in m.list(all=True):
            try:
                await m.remove(c.id, force=True)
            except Exception:  # scrub below takes care of it
                pass
        await m.close()
        left = ctr_env.leftovers(root, cgroup_parent=cgroup_parent)
        ctr_env.scrub(root, cgroup_parent=cgroup_parent)
        assert not left, f"removal left {left}"
