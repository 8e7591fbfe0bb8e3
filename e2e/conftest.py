"""Fixtures: one real API server per datastore per test session, and real kubectl / Python clients.

The session ``server`` is parametrised over DATASTORES, so every e2e test runs once on the embedded
SQLite store and once on a real etcd (started for the session on free loopback ports; the etcd
runs are skipped, saying why, when the ``etcd`` binary is missing). pytest orders the tests so
that each server is started once. ``one_node`` is a whole one-node cluster (``pinnace up``) for
modules that run pods (e2e/node_cluster.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.cluster import KUBECTL, Kubectl, Server, kubectl_missing
from e2e.node_cluster import UNSUPPORTED, UNSUPPORTED_REASON, NodeCluster, node_cluster
from tests.etcd_fixture import SKIP_REASON, EtcdServer, etcd_binary

DATASTORES = ("sqlite", "etcd")


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    if etcd_binary() is None:
        pytest.skip(SKIP_REASON)
    node = EtcdServer(tmp_path_factory.mktemp("etcd") / "data").start()
    yield node
    node.stop()


@pytest.fixture(scope="session", params=DATASTORES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    datastore = None
    if request.param == "etcd":
        datastore = request.getfixturevalue("etcd").datastore
    srv = Server(tmp_path_factory.mktemp(f"pinnace-{request.param}") / "data", datastore=datastore)
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


@pytest.fixture(scope="module")
def one_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    """A real one-node cluster (``pinnace up`` on temp dirs) for one module, brought down after it."""
    if UNSUPPORTED:
        pytest.skip(UNSUPPORTED_REASON)
    with node_cluster(tmp_path_factory.mktemp("node"), require_up=True) as cluster:
        yield cluster
