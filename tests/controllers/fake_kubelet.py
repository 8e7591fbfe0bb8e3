"""A fake kubelet (and, until the scheduler exists, a fake binder) for controller tests.

It registers Node objects, binds unscheduled pods of one namespace to the least loaded of them
through the pods/binding subresource, marks bound pods Running and Ready after ``ready_after``
seconds (or Running but never Ready when ``unready(pod)`` says so, or Failed when ``fails(pod)``
does), and completes the graceful
deletion of pods on its nodes at once, as a kubelet confirming the containers stopped would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from machinery import meta
from machinery.client import ApiClient, ApiError, NotFound, Resource
from machinery.informer import Informer
from machinery.workqueue import ShutDown, WorkQueue

PODS = Resource("", "v1", "pods", True)
NODES = Resource("", "v1", "nodes", False)
Obj = dict[str, Any]


def node(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"fake": "true"}},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def running_status(pod: Obj, *, ready: bool, host: str) -> Obj:
    now = meta.now()
    flag = "True" if ready else "False"
    containers = (pod.get("spec") or {}).get("containers") or []
    return {"phase": "Running", "hostIP": "10.0.0.1", "podIP": host, "startTime": now,
            "conditions": [{"type": t, "status": s, "lastTransitionTime": now}
                           for t, s in (("Initialized", "True"), ("Ready", flag), ("ContainersReady", flag),
                                        ("PodScheduled", "True"))],
            "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "imageID": "",
                                   "ready": ready, "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": now}}} for c in containers]}


class FakeKubelet:
    """``async with FakeKubelet(client, namespace, nodes=3):`` — nodes exist and pods come alive."""

    def __init__(self, client: ApiClient, namespace: str, *, nodes: int = 3, ready_after: float = 0.2,
                 unready: Callable[[Obj], bool] | None = None, fails: Callable[[Obj], bool] | None = None,
                 bind: bool = True) -> None:
        self.client = client
        self.namespace = namespace
        self.node_names = [f"{namespace}-node-{i}" for i in range(nodes)]
        self.ready_after = ready_after
        self.unready = unready or (lambda pod: False)
        self.fails = fails or (lambda pod: False)
        self.bind = bind
        self.pods = Informer(client, PODS, namespace=namespace)
        self.queue: WorkQueue[str] = WorkQueue(base_delay=0.05, max_delay=1.0, name="fake-kubelet")
        self._bound_at: dict[str, float] = {}
        self._placed: dict[str, str] = {}  # pod key -> node bound to (the cache may not show it yet)
        self._ips = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> FakeKubelet:
        for name in self.node_names:
            with contextlib.suppress(ApiError):
                await self.client.create(NODES, node(name))
        self.pods.add_handler(on_add=self._key, on_update=lambda old, new: self._key(new), on_delete=self._key)
        self.pods.start()
        await self.pods.wait_synced()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(4)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.queue.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pods.stop()
        for name in self.node_names:
            with contextlib.suppress(ApiError):
                await self.client.delete(NODES, name)

    def _key(self, pod: Obj) -> None:
        self.queue.add(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self._handle(key)
            except ApiError:
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    async def _handle(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            self._bound_at.pop(key, None)
            return
        md, spec = pod["metadata"], pod.get("spec") or {}
        host = spec.get("nodeName")
        if md.get("deletionTimestamp"):
            if host in self.node_names:
                with contextlib.suppress(NotFound):
                    await self.client.delete(PODS, md["name"], namespace=md["namespace"], grace_period_seconds=0)
            return
        if not host:
            if self.bind:
                await self._bind(pod)
            return
        if host not in self.node_names or (pod.get("status") or {}).get("phase") in ("Running", "Failed"):
            return
        due = self._bound_at.setdefault(key, time.monotonic()) + self.ready_after
        if time.monotonic() < due:
            self.queue.add_after(key, due - time.monotonic())
            return
        self._ips += 1
        status = running_status(pod, ready=not self.unready(pod), host=f"10.42.0.{self._ips % 250 + 2}")
        if self.fails(pod):
            status = {"phase": "Failed", "reason": "Error", "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": meta.now()}]}
        with contextlib.suppress(NotFound):
            await self.client.patch(PODS, md["name"], {"status": status}, namespace=md["namespace"],
                                    subresource="status")

    async def _bind(self, pod: Obj) -> None:
        live = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["spec"].get("nodeName")
                for p in self.pods.list() if not p["metadata"].get("deletionTimestamp")}
        placed = {k: n for k, n in {**self._placed, **{k: n for k, n in live.items() if n}}.items() if k in live}
        load = Counter({n: 0 for n in self.node_names})
        load.update(n for n in placed.values() if n in load)
        target = min(self.node_names, key=lambda n: load[n])
        md = pod["metadata"]
        self._placed[f"{md['namespace']}/{md['name']}"] = target
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": md["name"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": target}}
        try:
            await self.client.request("POST", PODS.path(namespace=md["namespace"], name=md["name"],
                                                        subresource="binding"), body=body)
        except NotFound:
            return
        except ApiError as e:
            if e.code == 409:
                return  # already bound, or being deleted
            raise

    def nodes_of(self, pods: list[Obj]) -> Counter[str]:
        return Counter((p.get("spec") or {}).get("nodeName") for p in pods)
