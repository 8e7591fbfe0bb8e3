"""Helpers of the node-lifecycle, DaemonSet and eviction tests: node heartbeats the test controls, the
real scheduler in the test's loop, and probes for resources an older server may not serve."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from controllers.manager import ControllerManager
from machinery import meta
from machinery.client import ApiClient, ApiError, NotFound, Resource
from scheduler.scheduler import Scheduler

NODES = Resource("", "v1", "nodes", False)
LEASES = Resource("coordination.k8s.io", "v1", "leases", True)
PDBS = Resource("policy", "v1", "poddisruptionbudgets", True)
DAEMONSETS = Resource("apps", "v1", "daemonsets", True)
REVISIONS = Resource("apps", "v1", "controllerrevisions", True)
LEASE_NS = "kube-node-lease"


def micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def served(client: ApiClient, res: Resource) -> bool:
    try:
        await client.list(res, limit=1)
    except NotFound:
        return False
    return True


async def require(client: ApiClient, res: Resource) -> None:
    """Skip (saying why) when the server's registry lacks ``res`` (see the nodelife report)."""
    if not await served(client, res):
        pytest.skip(f"the API server does not serve {res.group}/{res.version} {res.plural} (registry row missing)")


class Heartbeats:
    """Renews each node's Lease every ``period`` seconds, as kubelets do; ``stop``/``resume`` a node."""

    def __init__(self, client: ApiClient, nodes: list[str], *, period: float = 0.3) -> None:
        self.client = client
        self.period = period
        self.alive = set(nodes)
        self.nodes = list(nodes)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeats:
        await self.beat()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for name in self.nodes:
            with contextlib.suppress(ApiError):
                await self.client.delete(LEASES, name, namespace=LEASE_NS)

    def stop(self, node: str) -> None:
        self.alive.discard(node)

    async def resume(self, node: str) -> None:
        """The kubelet is back: Lease renewed and Ready=True posted (it re-reports what changed)."""
        self.alive.add(node)
        await self._renew(node)
        current = await self.client.get(NODES, node)
        stamp = meta.now()
        conditions = [c for c in (current.get("status") or {}).get("conditions") or ()
                      if c.get("type") not in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")]
        conditions += [{"type": t, "status": "False", "reason": f"KubeletHasSufficient{t[:-8]}",
                        "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}
                       for t in ("MemoryPressure", "DiskPressure", "PIDPressure")]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp,
                           "lastTransitionTime": stamp})
        await self.client.patch(NODES, node, {"status": {"conditions": conditions}}, subresource="status")

    async def beat(self) -> None:
        for node in list(self.alive):
            await self._renew(node)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            with contextlib.suppress(ApiError):
                await self.beat()

    async def _renew(self, node: str) -> None:
        spec: dict[str, Any] = {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": micro_now()}
        try:
            await self.client.patch(LEASES, node, {"spec": spec}, namespace=LEASE_NS)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": node, "namespace": LEASE_NS}, "spec": spec}
            with contextlib.suppress(ApiError):
                await self.client.create(LEASES, body, namespace=LEASE_NS)


@contextlib.asynccontextmanager
async def control_plane(client: ApiClient, *names: str, grace: float = 2.0) -> AsyncIterator[ControllerManager]:
    """The named controllers (node grace ``grace`` seconds) plus the real scheduler, in this loop."""
    scheduler = Scheduler(client)
    await scheduler.start(sync_timeout=10)
    mgr = ControllerManager(client, names=names, node_monitor_grace_period=grace)
    await mgr.start()
    try:
        async with asyncio.timeout(10):
            await mgr.wait_synced()
        yield mgr
    finally:
        await mgr.stop()
        await scheduler.stop()
