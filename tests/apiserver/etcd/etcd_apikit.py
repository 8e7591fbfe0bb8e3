"""Helpers of the API-server-on-etcd tests: a real etcd, ``pinnace server`` processes on it, clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from e2e.cluster import Server
from machinery.client import ApiClient, Resource
from machinery.kubeconfig import load_kubeconfig
from tests.etcd_fixture import SKIP_REASON, EtcdServer, etcd_binary

CONFIGMAPS = Resource(group="", version="v1", plural="configmaps", namespaced=True)
NAMESPACES = Resource(group="", version="v1", plural="namespaces", namespaced=False)


@contextlib.contextmanager
def running_etcd(directory: Path) -> Iterator[EtcdServer]:
    if etcd_binary() is None:
        pytest.skip(SKIP_REASON)
    server = EtcdServer(directory / "etcd").start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def api_servers(directory: Path, etcd: EtcdServer, count: int) -> Iterator[list[Server]]:
    """``count`` API servers (no controllers) sharing ``etcd``, each with its own data dir and PKI."""
    servers: list[Server] = []
    try:
        for i in range(count):
            data = directory / f"apiserver-{i}"
            data.mkdir()
            servers.append(Server(data).start("--datastore", etcd.datastore, "--no-controllers"))
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.asynccontextmanager
async def client_of(server: Server) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(str(server.kubeconfig)), request_timeout=15) as client:
        yield client


def configmap(name: str, namespace: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data}
