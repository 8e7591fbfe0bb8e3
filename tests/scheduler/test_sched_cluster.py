"""The scheduler against a real ``pinnace server`` (API server only) with fake Node objects.

Nothing runs the pods: they stay Pending, bound or not, which is all the scheduler decides.
Each test makes its own nodes and pods and deletes them, and runs its own Scheduler.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sched_objects import node, pod

from e2e.cluster import Server
from machinery.client import ApiClient, NotFound, Resource
from machinery.kubeconfig import load_kubeconfig
from scheduler.queue import SchedulingQueue
from scheduler.scheduler import Scheduler

NODES = Resource("", "v1", "nodes", False)
PODS = Resource("", "v1", "pods", True)
EVENTS = Resource("", "v1", "events", True)
#: seconds a test waits for the scheduler to act
WAIT = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("sched") / "data")
    srv.data_dir.mkdir()
    srv.start("--no-controllers")
    yield srv
    srv.stop()


class Cluster:
    """Creates nodes and pods for one test, remembers them, and removes them afterwards."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.prefix = uuid.uuid4().hex[:6]
        self.nodes: list[str] = []
        self.pods: list[str] = []

    async def add_node(self, name: str, **kwargs: Any) -> str:
        full = f"{self.prefix}-{name}"
        await self.client.create(NODES, node(full, **kwargs))
        self.nodes.append(full)
        return full

    async def add_pod(self, name: str, **kwargs: Any) -> str:
        full = f"{self.prefix}-{name}"
        await self.client.create(PODS, pod(full, **kwargs), namespace="default")
        self.pods.append(full)
        return full

    async def node_of(self, name: str) -> str | None:
        return (await self.client.get(PODS, name, namespace="default"))["spec"].get("nodeName")

    async def wait_bound(self, *names: str) -> dict[str, str]:
        async with asyncio.timeout(WAIT):
            while True:
                placed = {n: await self.node_of(n) for n in names}
                if all(placed.values()):
                    return placed  # type: ignore[return-value]
                await asyncio.sleep(0.05)

    async def failed_scheduling(self, name: str) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while True:
                found = await self.client.list(EVENTS, namespace="default",
                                               field_selector=f"involvedObject.name={name}")
                failed = [e for e in found["items"] if e.get("reason") == "FailedScheduling"]
                if failed:
                    return failed[-1]
                await asyncio.sleep(0.05)

    async def cleanup(self) -> None:
        for name in self.pods:
            try:
                await self.client.delete(PODS, name, namespace="default", grace_period_seconds=0)
            except NotFound:
                pass
        for name in self.nodes:
            try:
                await self.client.delete(NODES, name)
            except NotFound:
                pass


@pytest.fixture
async def cluster(server: Server) -> AsyncIterator[Cluster]:
    config = await asyncio.to_thread(load_kubeconfig, str(server.kubeconfig))
    async with ApiClient(config) as client:
        c = Cluster(client)
        try:
            yield c
        finally:
            await c.cleanup()


@pytest.fixture
async def scheduler(cluster: Cluster) -> AsyncIterator[Scheduler]:
    """Started on demand by ``start``, so the test can create its nodes first."""
    s = Scheduler(cluster.client, queue=SchedulingQueue(initial_backoff=0.05, max_backoff=0.2))
    yield s
    await s.stop()


async def test_pod_larger_than_any_node_stays_pending_with_failed_scheduling(cluster, scheduler):
    for i in range(3):
        await cluster.add_node(f"n{i}", cpu="2")
    await scheduler.start()
    name = await cluster.add_pod("huge", cpu="3")
    event = await cluster.failed_scheduling(name)
    assert event["type"] == "Warning"
    assert event["source"]["component"] == "default-scheduler"
    assert event["message"] == ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                                "available: 3 No preemption victims found for incoming pod.")
    current = await cluster.client.get(PODS, name, namespace="default")
    assert not current["spec"].get("nodeName")
    condition = next(c for c in current["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    # a node change retries the pod; the same failure bumps the event's count instead of adding events
    await cluster.client.patch(NODES, cluster.nodes[0], {"metadata": {"labels": {"touched": "yes"}}})
    async with asyncio.timeout(WAIT):
        while True:
            if (await cluster.failed_scheduling(name)).get("count") == 2:
                break
            await asyncio.sleep(0.05)
    found = await cluster.client.list(EVENTS, namespace="default", field_selector=f"involvedObject.name={name}")
    assert len([e for e in found["items"] if e["reason"] == "FailedScheduling"]) == 1


async def test_unschedulable_pod_is_placed_once_a_fitting_node_appears(cluster, scheduler):
    await cluster.add_node("small", cpu="1")
    await scheduler.start()
    name = await cluster.add_pod("waits", cpu="2")
    await cluster.failed_scheduling(name)
    big = await cluster.add_node("big", cpu="4")
    assert (await cluster.wait_bound(name))[name] == big


async def test_taints_and_tolerations(cluster, scheduler):
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    tainted = await cluster.add_node("tainted", taints=[taint])
    plain = await cluster.add_node("plain", cpu="1")
    await scheduler.start()
    names = [await cluster.add_pod(f"any{i}", cpu="100m") for i in range(3)]
    assert set((await cluster.wait_bound(*names)).values()) == {plain}
    # too big for the plain node: only the tainted one fits, and only with a toleration
    blocked = await cluster.add_pod("blocked", cpu="2")
    event = await cluster.failed_scheduling(blocked)
    assert event["message"].startswith("0/2 nodes are available: 1 Insufficient cpu, "
                                       "1 node(s) had untolerated taint {dedicated: db}. preemption:")
    tolerant = await cluster.add_pod("tolerant", cpu="2", tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}])
    assert (await cluster.wait_bound(tolerant))[tolerant] == tainted


async def test_node_selector(cluster, scheduler):
    await cluster.add_node("hdd", labels={"disk": "hdd"})
    ssd = await cluster.add_node("ssd", labels={"disk": "ssd"})
    await scheduler.start()
    names = [await cluster.add_pod(f"db{i}", nodeSelector={"disk": "ssd"}) for i in range(3)]
    assert set((await cluster.wait_bound(*names)).values()) == {ssd}
    lost = await cluster.add_pod("lost", nodeSelector={"disk": "tape"})
    event = await cluster.failed_scheduling(lost)
    assert event["message"].startswith("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.")


async def test_required_anti_affinity_puts_one_replica_per_node(cluster, scheduler):
    for i in range(3):
        await cluster.add_node(f"n{i}")
    await scheduler.start()
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    names = [await cluster.add_pod(f"web{i}", labels={"app": "web"}, affinity=anti) for i in range(4)]
    placed = await cluster.wait_bound(*names[:3])
    assert len(set(placed.values())) == 3
    event = await cluster.failed_scheduling(names[3])
    assert event["message"].startswith("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.")
    assert await cluster.node_of(names[3]) is None


async def test_five_replicas_spread_across_three_nodes(cluster, scheduler):
    nodes = [await cluster.add_node(f"n{i}") for i in range(3)]
    await scheduler.start()
    owner = str(uuid.uuid4())
    names = [await cluster.add_pod(f"r{i}", cpu="100m", owner_uid=owner) for i in range(5)]
    per_node = Counter((await cluster.wait_bound(*names)).values())
    assert set(per_node) == set(nodes) and sorted(per_node.values()) == [1, 2, 2]


async def test_back_to_back_pods_see_each_others_requests(cluster, scheduler):
    for i in range(2):
        await cluster.add_node(f"n{i}", cpu="1")
    # all pods exist before the scheduler starts, so it decides them back to back
    names = [await cluster.add_pod(f"p{i}", cpu="700m") for i in range(3)]
    await scheduler.start()
    event = await cluster.failed_scheduling(names[2])
    assert event["message"].startswith("0/2 nodes are available: 2 Insufficient cpu.")
    placed = await cluster.wait_bound(*names[:2])
    assert len(set(placed.values())) == 2
    assert await cluster.node_of(names[2]) is None
    assert scheduler.stats.scheduled == 2


async def test_malformed_pod_is_reported_not_crashed_on(cluster, scheduler):
    await cluster.add_node("n0")
    await scheduler.start()
    bad = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["not-a-number"]}]}]}}
    name = await cluster.add_pod("odd", affinity={"nodeAffinity": bad})
    event = await cluster.failed_scheduling(name)
    assert "integer" in event["message"]
    fine = await cluster.add_pod("fine")
    await cluster.wait_bound(fine)
