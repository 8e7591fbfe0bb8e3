"""etcd crashes under load: SIGKILL it during a stream of writes and watches through two API servers,
start it again on the same data dir, and check that nothing acknowledged was lost, that writes in
the outage were answered 503/504 (never 500) and succeeded once it was back, and that every watcher
(an informer on each server) ends with the full set of objects."""

from __future__ import annotations

import asyncio
import time

import pytest
from etcd_apikit import CONFIGMAPS, NAMESPACES, api_servers, client_of, configmap, running_etcd

from machinery.client import AlreadyExists, ApiError, Conflict, TransportError
from machinery.informer import Informer

OBJECTS = 120
KILL_AFTER = 40  # acknowledged writes before etcd is killed
OUTAGE = 1.5  # seconds etcd stays down
NAMESPACE = "chaos"


class Writer:
    """Creates OBJECTS ConfigMaps (updating every third once), retrying each step until it lands."""

    def __init__(self, clients) -> None:
        self.clients = clients
        self.expected: dict[str, dict] = {}  # acknowledged name -> its data
        self.failures: list[str] = []  # what the failed attempts answered
        self.acked = asyncio.Event()

    async def run(self) -> None:
        for i in range(OBJECTS):
            client = self.clients[i % 2]
            name = f"cm-{i:03}"
            await self._retry(lambda c=client, n=name: c.create(CONFIGMAPS, configmap(n, NAMESPACE, v="1")))
            self.expected[name] = {"v": "1"}
            if i % 3 == 0:
                await self._retry(lambda c=client, n=name: self._update(c, n))
                self.expected[name] = {"v": "2"}
            if len(self.expected) >= KILL_AFTER:
                self.acked.set()
            await asyncio.sleep(0.005)

    async def _update(self, client, name: str) -> None:
        current = await client.get(CONFIGMAPS, name, namespace=NAMESPACE)
        await client.replace(CONFIGMAPS, {**current, "data": {"v": "2"}})

    async def _retry(self, attempt) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                await attempt()
                return
            except AlreadyExists:  # an earlier attempt landed although its answer was an error
                return
            except Conflict:  # likewise for an update: read again and retry
                pass
            except ApiError as exc:
                self.failures.append(f"{exc.code} {exc.reason}: {exc.message}")
            except TransportError as exc:
                self.failures.append(f"transport: {exc}")
            assert time.monotonic() < deadline, f"a write did not land within 30 s: {self.failures[-3:]}"
            await asyncio.sleep(0.05)


@pytest.fixture
def cluster(tmp_path):
    with running_etcd(tmp_path) as etcd, api_servers(tmp_path, etcd, 2) as servers:
        yield etcd, servers


async def _converged(informer: Informer, names: set[str], *, within: float) -> set[str]:
    deadline = time.monotonic() + within
    while True:
        have = {obj["metadata"]["name"] for obj in informer.list()}
        if have >= names or time.monotonic() > deadline:
            return have
        await asyncio.sleep(0.1)


async def test_etcd_crash_loses_no_acknowledged_write_and_watchers_catch_up(cluster):
    etcd, (a, b) = cluster
    async with client_of(a) as via_a, client_of(b) as via_b:
        await via_a.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
        informers = [Informer(via_a, CONFIGMAPS, namespace=NAMESPACE, backoff=(0.05, 0.5)),
                     Informer(via_b, CONFIGMAPS, namespace=NAMESPACE, backoff=(0.05, 0.5))]
        for informer in informers:
            informer.start()
            await asyncio.wait_for(informer.wait_synced(), 10)
        writer = Writer([via_a, via_b])
        writing = asyncio.create_task(writer.run())
        try:
            await asyncio.wait_for(writer.acked.wait(), 30)
            await asyncio.to_thread(etcd.kill)
            await asyncio.sleep(OUTAGE)
            await asyncio.to_thread(etcd.start)
            await asyncio.wait_for(writing, 60)

            assert writer.failures, "no write was attempted while etcd was down"
            for client in (via_a, via_b):
                listed = await client.list(CONFIGMAPS, namespace=NAMESPACE)
                stored = {i["metadata"]["name"]: i.get("data") for i in listed["items"]}
                assert stored == writer.expected
            names = set(writer.expected)
            for informer in informers:
                have = await _converged(informer, names, within=20)
                assert have == names, f"informer missing {sorted(names - have)[:5]}, extra {sorted(have - names)[:5]}"
                assert {o["metadata"]["name"]: o["data"] for o in informer.list()} == writer.expected

            wrong = sorted({f for f in writer.failures if not f.startswith(("503", "504"))})
            assert not wrong, f"writes in the outage must answer 503/504, got {wrong[:5]}"
        finally:
            writing.cancel()
            for informer in informers:
                await informer.stop()
