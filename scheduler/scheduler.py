"""The scheduling loop: informers feed the cache and the queue; one loop places pods one at a time.

    node/pod informers ──► NodeCache (node arrays + placed pods)     SchedulingQueue
            │                                                          ▲       │
            └── pending pods, cluster changes ─────────────────────────┘       ▼ pop
                                  decide (filters → scores on arrays) ◄────── loop
                                      │ fits: assume in cache, bind in the background
                                      └ fits nowhere: FailedScheduling event, queue.unschedulable

Decisions are synchronous and fast (vector maths on node arrays); bindings are API calls, so they
run as background tasks (bounded) while the loop goes on to the next pod. The assumed-pod cache
makes the next decision see the capacity the previous one took before its binding lands. When the
pod informer later shows the pod bound, the assumption is confirmed; if the binding fails it is
forgotten and the pod retried after a back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from machinery import meta
from machinery.client import ApiClient, ApiError, Conflict, NotFound, TransportError
from machinery.informer import Informer
from machinery.resources import NODES, PODS
from scheduler import binder, events, fit_error
from scheduler.cache import NodeCache
from scheduler.framework import Framework
from scheduler.plugins.registry import default_framework
from scheduler.podinfo import DEFAULT_SCHEDULER, PodSpecError, read_pod, wants_scheduling
from scheduler.queue import SchedulingQueue

log = logging.getLogger(__name__)

#: node fields whose change may let an unschedulable pod fit
_NODE_FIELDS = (("metadata", "labels"), ("spec", "taints"), ("spec", "unschedulable"),
                ("status", "allocatable"), ("status", "capacity"))


@dataclass
class Stats:
    """Counters a user (or the benchmark) can read; also logged at shutdown."""

    scheduled: int = 0
    unschedulable: int = 0
    bind_errors: int = 0
    #: seconds from popping a pod to its binding being accepted (the most recent pods)
    bind_latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


def _at(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        obj = (obj or {}).get(part)  # type: ignore[assignment]
    return obj


def _is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class Scheduler:
    def __init__(self, client: ApiClient, *, framework: Framework | None = None,
                 scheduler_name: str = DEFAULT_SCHEDULER, queue: SchedulingQueue | None = None,
                 bind_concurrency: int = 64) -> None:
        self.client = client
        self.scheduler_name = scheduler_name
        self.framework = framework or default_framework()
        self.cache = NodeCache()
        self.queue = queue or SchedulingQueue()
        self.reporter = events.FailureReporter(client, component=scheduler_name)
        self.nodes = Informer(client, NODES)
        self.pods = Informer(client, PODS)
        self.stats = Stats()
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # -- lifetime ---------------------------------------------------------------------------------

    async def start(self, *, sync_timeout: float = 60.0) -> None:
        """Fill the caches, then start placing pods."""
        self.nodes.add_handler(on_add=self._node_added, on_update=self._node_updated,
                               on_delete=self._node_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.nodes.start()
        self.pods.start()
        async with asyncio.timeout(sync_timeout):
            await self.nodes.wait_synced()
            await self.pods.wait_synced()
        self._loop_task = asyncio.create_task(self._run(), name="scheduler-loop")
        log.info("scheduler %s started: %d node(s), %d pending pod(s)", self.scheduler_name,
                 len(self.cache), len(self.queue))

    async def stop(self) -> None:
        self.queue.close()
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.nodes.stop()
        await self.pods.stop()
        log.info("scheduler stopped: %d bound, %d unschedulable attempt(s), %d binding error(s)",
                 self.stats.scheduled, self.stats.unschedulable, self.stats.bind_errors)

    # -- informer handlers ------------------------------------------------------------------------

    def _node_added(self, node: dict[str, Any]) -> None:
        if self._upsert_node(node):
            self.queue.move_all_to_active("node added")

    def _node_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if self._upsert_node(new) and any(_at(old, path) != _at(new, path) for path in _NODE_FIELDS):
            self.queue.move_all_to_active("node changed")

    def _upsert_node(self, node: dict[str, Any]) -> bool:
        """Cache a node; one whose capacity cannot be read is left out (logged), not half-counted."""
        try:
            self.cache.upsert_node(node)
        except ValueError as e:  # QuantityError, or no name
            log.warning("node %s ignored: %s", meta.name_of(node), e)
            self.cache.remove_node(meta.name_of(node))
            return False
        return True

    def _node_deleted(self, node: dict[str, Any]) -> None:
        self.cache.remove_node(meta.name_of(node))

    def _pod_added(self, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and not _is_terminal(pod):
            self._count_bound(pod, node)
        elif wants_scheduling(pod, scheduler_name=self.scheduler_name):
            self.queue.add(meta.key_of(pod), priority=int((pod.get("spec") or {}).get("priority") or 0))

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        key = meta.key_of(new)
        node = (new.get("spec") or {}).get("nodeName")
        if _is_terminal(new) or (new.get("metadata") or {}).get("deletionTimestamp"):
            self._pod_deleted(new)
            return
        if node:
            if self.queue.where(key) is not None and not self.cache.is_assumed(key):
                self.queue.remove(key)  # bound by someone else
            self._count_bound(new, node)
            return
        if not wants_scheduling(new, scheduler_name=self.scheduler_name):
            return
        # our own status writes (PodScheduled=False) must not re-trigger an attempt
        if old.get("spec") != new.get("spec") or _at(old, ("metadata", "labels")) != _at(new, ("metadata", "labels")):
            self.queue.add(key, priority=int((new.get("spec") or {}).get("priority") or 0))

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        key = meta.key_of(pod)
        was_placed = key in self.cache.pods
        self.cache.forget(key)
        self.queue.remove(key)
        if was_placed:
            self.queue.move_all_to_active("pod deleted")

    def _count_bound(self, pod: dict[str, Any], node: str) -> None:
        if self.cache.confirm(meta.key_of(pod), node):
            return  # our own binding landing (or a repeat): the cache already counts it
        try:
            self.cache.add_bound(read_pod(pod), node)
        except PodSpecError as e:
            log.warning("bound pod %s not counted: %s", meta.key_of(pod), e)

    # -- the loop ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            key = await self.queue.pop()
            try:
                self.schedule_one(key)
            except Exception:  # a bug must cost one pod an attempt, not stop the scheduler
                log.exception("scheduling %s failed", key)
                self.queue.retry_later(key)
            await asyncio.sleep(0)  # let informers and bindings progress between decisions

    def schedule_one(self, key: str) -> None:
        """Decide for one popped pod: assume and start binding it, or report why it fits nowhere."""
        pod = self.pods.get(key)
        if pod is None or not wants_scheduling(pod, scheduler_name=self.scheduler_name):
            self.queue.done(key)
            return
        started = asyncio.get_running_loop().time()
        try:
            info = read_pod(pod)
            decision = self.framework.decide(info, self.cache)
        except PodSpecError as e:
            self._unschedulable(key, pod, str(e))
            return
        if decision.node is None:
            self._unschedulable(key, pod, fit_error.fit_error_message(decision.diagnosis))
            return
        self.cache.assume(info, decision.node)
        log.debug("%s -> %s", key, decision.node)
        self._spawn(self._bind(key, info.uid, decision.node, started))

    def _unschedulable(self, key: str, pod: dict[str, Any], message: str) -> None:
        self.stats.unschedulable += 1
        log.info("%s is unschedulable: %s", key, message)
        self.queue.unschedulable(key)
        self._spawn(self.reporter.report(pod, message))

    async def _bind(self, key: str, uid: str, node: str, started: float) -> None:
        namespace, _, name = key.partition("/")
        async with self._bind_slots:
            try:
                await binder.bind(self.client, namespace=namespace, name=name, uid=uid, node=node)
            except (Conflict, NotFound) as e:  # bound elsewhere or deleted: nothing to retry
                log.info("binding %s to %s: %s", key, node, e.message)
                if self.cache.is_assumed(key):
                    self.cache.forget(key)
                self.queue.done(key)
                return
            except (ApiError, TransportError) as e:
                log.warning("binding %s to %s failed: %s; retrying", key, node, e)
                self.stats.bind_errors += 1
                if self.cache.is_assumed(key):
                    self.cache.forget(key)
                self.queue.retry_later(key)
                return
        self.stats.scheduled += 1
        self.stats.bind_latencies.append(asyncio.get_running_loop().time() - started)
        self.queue.done(key)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
