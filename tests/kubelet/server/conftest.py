"""Fixtures: the CRI tests' busybox store and CRI harness, plus a KubeletServer in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.engine.cri import cri_env
from tests.engine.cri.conftest import busybox, cri, cri_store  # noqa: F401 - fixtures used here
from tests.kubelet.server import kubelet_env


@pytest.fixture
async def kubelet(cri: cri_env.Harness, tmp_path: Path) -> AsyncIterator[kubelet_env.Kubelet]:  # noqa: F811
    server = await kubelet_env.start_kubelet(cri, tmp_path / "cluster")
    try:
        yield server
    finally:
        await kubelet_env.stop_kubelet(server)
