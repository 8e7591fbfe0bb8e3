"""The ``kubernetes`` Service and its endpoints as bootstrap writes them, on a plain ObjectStore."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apiserver import bootstrap, registry
from apiserver.storage.sqlite import SqliteStorage
from apiserver.store import ObjectStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    storage = SqliteStorage(str(tmp_path / "state.db"), compact_interval=None)
    await storage.start()
    try:
        yield ObjectStore(storage)
    finally:
        await storage.close()


async def _get(store: ObjectStore, group: str, plural: str) -> dict:
    rt = registry.lookup(group, "v1", plural)
    assert rt is not None
    return await store.get(rt, "default", "kubernetes")


async def test_bootstrap_points_the_service_at_the_api_server(store: ObjectStore) -> None:
    await bootstrap.bootstrap(store, port=6443, host="10.1.2.3")
    svc = await _get(store, "", "services")
    assert svc["spec"]["clusterIP"] == "10.43.0.1" and svc["spec"]["ports"][0]["targetPort"] == 6443
    ep = await _get(store, "", "endpoints")
    assert ep["subsets"] == [{"addresses": [{"ip": "10.1.2.3"}],
                              "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    eps = await _get(store, "discovery.k8s.io", "endpointslices")
    assert eps["endpoints"][0]["addresses"] == ["10.1.2.3"] and eps["addressType"] == "IPv4"
    # a restart on another address and port corrects all three
    await bootstrap.bootstrap(store, port=7443, host="10.1.2.4")
    assert (await _get(store, "", "services"))["spec"]["ports"][0]["targetPort"] == 7443
    ep = await _get(store, "", "endpoints")
    assert ep["subsets"][0]["addresses"] == [{"ip": "10.1.2.4"}] and ep["subsets"][0]["ports"][0]["port"] == 7443
    eps = await _get(store, "discovery.k8s.io", "endpointslices")
    assert eps["endpoints"][0]["addresses"] == ["10.1.2.4"] and eps["ports"][0]["port"] == 7443


async def test_loopback_is_never_advertised() -> None:
    assert await bootstrap.advertise_address("10.9.8.7") == "10.9.8.7"
    for host in ("127.0.0.1", "0.0.0.0", "localhost"):
        address = await bootstrap.advertise_address(host)
        assert address is None or address not in ("127.0.0.1", "0.0.0.0")
