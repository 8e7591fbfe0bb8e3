"""The kubelet assembled: node agent, pod source, runtime relist, pod workers and orphan clean-up.

``Kubelet.start`` registers the node, starts the heartbeat, an informer on this node's pods
(fieldSelector spec.nodeName) and the relist loop; each pod uid gets a ``PodWorker``. After the
informer has synced, runtime objects and volume dirs of pod uids the API does not know are orphans
and get a worker with no pod, which tears them down. ``stop`` only stops the kubelet's own tasks:
containers keep running, and the next kubelet adopts them (their labels name the pod, their hash
annotation says whether the spec is still the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kubelet import backoff as backoff_mod
from kubelet.config import KubeletConfig
from kubelet.cri import CriClient
from kubelet.events import EventRecorder
from kubelet.node import NodeAgent
from kubelet.plugins import Plugins
from kubelet.pod_worker import PODS, TERMINAL, BackoffLike, PodWorker, ProbesLike, VolumesLike, WorkerDeps
from kubelet.runtime_state import RuntimeState
from kubelet.sources import ApiSource
from machinery.client import ApiClient, ApiError, TransportError
from machinery.informer import Informer
from machinery.resources import SERVICES

log = logging.getLogger(__name__)

API_WAIT = 60.0  # seconds a starting kubelet waits for the API server to answer

SYNC_TIMEOUT = 60.0  # seconds the first pod list may take before start() gives up


def _uid(pod: dict[str, Any]) -> str:
    return str(pod.get("metadata", {}).get("uid", ""))


class Kubelet:
    """One node's kubelet; neighbours may be injected (tests), else the real ones are loaded."""

    def __init__(self, *, config: KubeletConfig, client: ApiClient, cri: CriClient, port: int | None = None,
                 plugins: Plugins | None = None, volumes: VolumesLike | None = None,
                 probes: ProbesLike | None = None, backoff: BackoffLike | None = None,
                 image_backoff: BackoffLike | None = None) -> None:
        self.config = config
        self.client = client
        self.cri = cri
        self.source = ApiSource(client)
        self.recorder = EventRecorder(client, node_name=config.node_name)
        self.node = NodeAgent(config=config, client=client, cri=cri, port=port or config.port)
        self.runtime = RuntimeState(cri=cri, on_change=self._runtime_changed)
        self.informer = Informer(client, PODS, field_selector=f"spec.nodeName={config.node_name}")
        # every Service: containers get the service link variables (KUBERNETES_SERVICE_HOST, ...)
        self.services = Informer(client, SERVICES)
        self.workers: dict[str, PodWorker] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._plugins, self._volumes, self._probes = plugins, volumes, probes
        self._backoff, self._image_backoff = backoff, image_backoff
        self.deps: WorkerDeps | None = None

    def _build_deps(self) -> WorkerDeps:
        plugins = self._plugins or Plugins.load()
        volumes = self._volumes
        if volumes is None:
            from kubelet.volumes import VolumeManager

            volumes = VolumeManager(config=self.config, source=self.source, tokens=self.source)
        probes = self._probes
        if probes is None:
            from kubelet.probes import ProbeManager

            probes = ProbeManager(cri=self.cri, on_change=self.wake, on_event=self._probe_event)
        return WorkerDeps(config=self.config, client=self.client, cri=self.cri, plugins=plugins, volumes=volumes,
                          probes=probes, backoff=self._backoff or backoff_mod.Backoff(),
                          image_backoff=self._image_backoff or backoff_mod.Backoff(), recorder=self.recorder,
                          source=self.source, services=self.services.list)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.deps = self._build_deps()
        await self._register()
        self._spawn(self.node.run(), "node-heartbeat")
        self.informer.add_handler(on_add=self._pod_seen, on_update=lambda _old, new: self._pod_seen(new),
                                  on_delete=self._pod_gone)
        self.informer.start()
        self.services.start()
        try:
            async with asyncio.timeout(SYNC_TIMEOUT):
                await self.informer.wait_synced()
                await self.services.wait_synced()
        except TimeoutError:
            raise RuntimeError(f"could not list the pods of node {self.config.node_name} "
                               f"within {SYNC_TIMEOUT:.0f}s") from None
        await self.runtime.relist()
        await self.collect_orphans()
        self._spawn(self._relist_loop(), "pleg")

    async def _register(self) -> None:
        """Register the Node, waiting for an API server that is still starting (``pinnace up`` starts
        the node beside the control plane); other errors, and a server gone for long, are fatal."""
        deadline = asyncio.get_running_loop().time() + API_WAIT
        while True:
            try:
                await self.node.register()
                return
            except TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Stop the kubelet's tasks; pods keep running."""
        await self.informer.stop()
        await self.services.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())), return_exceptions=True)
        self.workers.clear()
        close = getattr(self.deps.probes, "close", None) if self.deps else None
        if close is not None:
            await close()
        await self.recorder.drain()

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def _relist_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sync_interval)
            try:
                await self.runtime.relist()
                await self.collect_orphans()
            except Exception as exc:
                log.warning("relist failed: %r", exc)

    # -- pods -----------------------------------------------------------------------------------------

    def _worker(self, uid: str) -> PodWorker:
        worker = self.workers.get(uid)
        if worker is None:
            assert self.deps is not None
            worker = self.workers[uid] = PodWorker(uid=uid, deps=self.deps, on_done=self._worker_done)
            worker.start()
        return worker

    def _worker_done(self, uid: str) -> None:
        self.workers.pop(uid, None)

    def _pod_seen(self, pod: dict[str, Any]) -> None:
        uid = _uid(pod)
        if not uid:
            return
        if uid not in self.workers and not self._admit(pod):
            return
        self._worker(uid).update(pod)

    def _active_pods(self) -> int:
        return sum(1 for w in self.workers.values()
                   if w.pod is not None and (w.pod.get("status") or {}).get("phase") not in TERMINAL)

    def _admit(self, pod: dict[str, Any]) -> bool:
        """Upstream's pod-count admission: a new pod beyond max-pods fails with OutOfpods.

        Pods already finished or deleting, and pods the runtime already runs (adoption), always pass.
        """
        status = pod.get("status") or {}
        if status.get("phase") in TERMINAL or pod.get("metadata", {}).get("deletionTimestamp"):
            return True
        if _uid(pod) in self.runtime.pods:
            return True
        used = self._active_pods()
        if used < self.config.max_pods:
            return True
        message = (f"Node didn't have enough resource: pods, requested: 1, used: {used}, "
                   f"capacity: {self.config.max_pods}")
        md = pod.get("metadata", {})
        log.info("rejecting pod %s/%s: %s", md.get("namespace"), md.get("name"), message)
        self.recorder.event(pod, reason="OutOfpods", message=message, warning=True)
        self._spawn(self._reject(pod, reason="OutOfpods", message=message), f"reject-{_uid(pod)}")
        return False

    async def _reject(self, pod: dict[str, Any], *, reason: str, message: str) -> None:
        md = pod.get("metadata", {})
        try:
            await self.client.patch(PODS, md["name"], {"status": {"phase": "Failed", "reason": reason,
                                                                  "message": f"Pod was rejected: {message}"}},
                                    namespace=md.get("namespace"), subresource="status")
        except (ApiError, TransportError) as exc:
            log.warning("could not reject pod %s: %s", md.get("name"), exc)

    def _pod_gone(self, pod: dict[str, Any]) -> None:
        if uid := _uid(pod):
            self._worker(uid).update(None)

    def wake(self, uid: str) -> None:
        """Probe results and runtime changes land here."""
        worker = self.workers.get(uid)
        if worker is not None:
            worker.wake()

    def _probe_event(self, uid: str, container: str, message: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None and worker.pod is not None:
            self.recorder.event(worker.pod, reason="Unhealthy", message=message, warning=True,
                                field_path=f"spec.containers{{{container}}}")

    def _runtime_changed(self, uid: str) -> None:
        self.wake(uid)

    def known_uids(self) -> set[str]:
        return {_uid(p) for p in self.informer.list()}

    async def collect_orphans(self) -> set[str]:
        """Tear down runtime objects and volume dirs of pods the API does not know (after sync)."""
        if not self.informer.has_synced or self.deps is None:
            return set()
        known = self.known_uids()
        on_disk = await asyncio.to_thread(self.deps.volumes.pod_uids_on_disk) \
            if hasattr(self.deps.volumes, "pod_uids_on_disk") else set()
        orphans = (set(self.runtime.pods) | set(on_disk)) - known - set(self.workers)
        for uid in orphans:
            log.info("pod %s is unknown to the API: removing its containers and volumes", uid)
            self._worker(uid).update(None)
        return orphans
