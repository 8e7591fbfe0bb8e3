"""The controller-manager: the table of controllers, run together on one ApiClient.

``pinnace server`` runs it in-process through :class:`ControllerManager` (start/stop around the API
server's lifetime); :func:`run_controllers` is the same for a stand-alone process. Each controller
starts on its own task, so one whose caches are slow to fill never delays the others, and stopping
cancels whatever is still starting. Controllers written on machinery.reconcile share one informer
per resource (a :class:`SharedInformers` per run). With ``lease_name`` the manager first wins a
coordination.k8s.io Lease and runs the controllers only while it leads, so several managers can be
started for availability with one acting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from controllers.base import resource_for, resource_of_kind
from controllers.daemonset import DaemonSetController
from controllers.deployment import DeploymentController
from controllers.disruption import DisruptionController
from controllers.endpoints import EndpointsController
from controllers.endpointslice import EndpointSliceController
from controllers.garbage_collector import GarbageCollector
from controllers.namespace import NamespaceController
from controllers.node_ipam import DEFAULT_CLUSTER_CIDR, NodeIpamController
from controllers.node_lifecycle import DEFAULT_GRACE_PERIOD, NodeLifecycleController, TaintEvictionController
from controllers.pod_gc import PodGCController
from controllers.replicaset import ReplicaSetController
from controllers.service_accounts import ServiceAccountsController
from machinery.client import ApiClient
from machinery.reconcile import LeaderElector, Metrics, Runnable, SharedInformers

__all__ = ["CONTROLLERS", "ControllerManager", "resource_for", "resource_of_kind", "run_controllers"]

log = logging.getLogger(__name__)



@dataclass
class Context:
    """What a controller factory may use: the client, this run's shared informers and counters."""

    client: ApiClient
    informers: SharedInformers
    metrics: Metrics = field(default_factory=Metrics)
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR
    #: seconds without a kubelet heartbeat before a node is Unknown (--node-monitor-grace-period)
    node_monitor_grace_period: float = DEFAULT_GRACE_PERIOD


Factory = Callable[[Context], Runnable]

#: controller name -> factory; names follow kube-controller-manager's --controllers spelling
CONTROLLERS: dict[str, Factory] = {
    "namespace": lambda ctx: NamespaceController(ctx.client),
    "garbagecollector": lambda ctx: GarbageCollector(ctx.client),
    "replicaset": lambda ctx: ReplicaSetController(ctx.client, informers=ctx.informers, metrics=ctx.metrics),
    "deployment": lambda ctx: DeploymentController(ctx.client, informers=ctx.informers, metrics=ctx.metrics),
    "nodeipam": lambda ctx: NodeIpamController(ctx.client, informers=ctx.informers, metrics=ctx.metrics,
                                               cluster_cidr=ctx.cluster_cidr),
    "podgc": lambda ctx: PodGCController(ctx.client, informers=ctx.informers, metrics=ctx.metrics),
    "endpointslice": lambda ctx: EndpointSliceController(ctx.client, informers=ctx.informers, metrics=ctx.metrics),
    "endpoints": lambda ctx: EndpointsController(ctx.client, informers=ctx.informers, metrics=ctx.metrics),
    "serviceaccount": lambda ctx: ServiceAccountsController(ctx.client, informers=ctx.informers,
                                                            metrics=ctx.metrics),
    "nodelifecycle": lambda ctx: NodeLifecycleController(ctx.client, informers=ctx.informers, metrics=ctx.metrics,
                                                         grace_period=ctx.node_monitor_grace_period),
    "taint-eviction-controller": lambda ctx: TaintEvictionController(ctx.client, informers=ctx.informers,
                                                                     metrics=ctx.metrics),
    "daemonset": lambda ctx: DaemonSetController(ctx.client, informers=ctx.informers, metrics=ctx.metrics),
    "disruption": lambda ctx: DisruptionController(ctx.client, informers=ctx.informers, metrics=ctx.metrics),
}


def select(names: Iterable[str] | None) -> list[str]:
    """The controller names to run (all when None); an unknown name is a ValueError."""
    if names is None:
        return list(CONTROLLERS)
    chosen = list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in CONTROLLERS]
    if unknown:
        raise ValueError(f"unknown controller(s) {', '.join(unknown)}; known: {', '.join(CONTROLLERS)}")
    return chosen


class ControllerManager:
    """Runs the chosen controllers on one client, started and stopped together.

    Each start builds fresh controllers (and informers), so a stopped manager can be started again
    and then looks at every object anew (as a restarted kube-controller-manager does).
    """

    def __init__(self, client: ApiClient, *, names: Iterable[str] | None = None,
                 cluster_cidr: str = DEFAULT_CLUSTER_CIDR, lease_name: str | None = None,
                 lease_namespace: str = "kube-system", identity: str | None = None,
                 lease_duration: float = 15.0, node_monitor_grace_period: float = DEFAULT_GRACE_PERIOD) -> None:
        self.client = client
        self.names = select(names)
        self.cluster_cidr = cluster_cidr
        self.node_monitor_grace_period = node_monitor_grace_period
        self.metrics = Metrics()
        self.controllers: dict[str, Runnable] = {}
        self._starting: dict[str, asyncio.Task[None]] = {}
        self.elector: LeaderElector | None = None
        if lease_name is not None:
            self.elector = LeaderElector(client, name=lease_name, namespace=lease_namespace, identity=identity,
                                         lease_duration=lease_duration, renew_deadline=lease_duration * 2 / 3,
                                         retry_period=lease_duration / 7.5)
        self._election: asyncio.Task[None] | None = None
        self._running = asyncio.Event()

    async def start(self) -> None:
        """Begin starting every controller (or competing for the lease); returns at once."""
        if self.elector is None:
            await self._start_controllers()
        elif self._election is None:
            self._election = asyncio.create_task(
                self.elector.run(on_start=self._start_controllers, on_stop=self._stop_controllers),
                name="controller-manager-election")

    async def wait_synced(self) -> None:
        """Wait until (leading and) every controller's caches are filled and its workers run."""
        if not self.controllers and self._election is None:
            raise RuntimeError("the controller manager is not started")
        await self._running.wait()
        await asyncio.gather(*(c.wait_synced() for c in self.controllers.values()))

    async def stop(self) -> None:
        """Stop the controllers, then give the lease up (never two leaders acting at once)."""
        election, self._election = self._election, None
        await self._stop_controllers()
        if election is not None:
            election.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await election
        await self._stop_controllers()  # in case leadership was won while stopping

    async def _start_controllers(self) -> None:
        if self.controllers:
            return
        ctx = Context(self.client, SharedInformers(self.client), self.metrics, self.cluster_cidr,
                      self.node_monitor_grace_period)
        # all are built before any starts, so shared informers get every index they need
        self.controllers = {name: CONTROLLERS[name](ctx) for name in self.names}
        for name, controller in self.controllers.items():
            task = asyncio.create_task(controller.start(), name=f"controller-{name}")
            task.add_done_callback(_start_reporter(name))
            self._starting[name] = task
        self._running.set()

    async def _stop_controllers(self) -> None:
        self._running.clear()
        tasks, self._starting = self._starting, {}
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        controllers, self.controllers = self.controllers, {}
        results = await asyncio.gather(*(c.stop() for c in controllers.values()), return_exceptions=True)
        for name, result in zip(controllers, results, strict=True):
            if isinstance(result, Exception):
                log.error("controller %s: stopping failed: %s", name, result)


def _start_reporter(name: str) -> Callable[[asyncio.Task[None]], None]:
    """A done-callback that reports a controller whose start failed (it would otherwise go unseen)."""
    def report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("controller %s failed to start", name, exc_info=task.exception())
    return report


async def run_controllers(client: ApiClient, *, names: Iterable[str] | None = None,
                          stop: asyncio.Event) -> None:
    """Run the chosen controllers (all by default) until ``stop`` is set."""
    manager = ControllerManager(client, names=names)
    await manager.start()
    try:
        await stop.wait()
    finally:
        await manager.stop()
