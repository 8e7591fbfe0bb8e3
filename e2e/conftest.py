"""Fixtures: one real API server per test session, and real kubectl / Python clients against it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.cluster import KUBECTL, Kubectl, Server, kubectl_missing


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("pinnace") / "data")
    srv.data_dir.mkdir()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def kubectl(server: Server, tmp_path: Path) -> Kubectl:
    if kubectl_missing():
        pytest.skip(f"{KUBECTL} is not installed on this machine")
    home = tmp_path / "home"
    home.mkdir()
    return Kubectl(server.kubeconfig, home)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)
