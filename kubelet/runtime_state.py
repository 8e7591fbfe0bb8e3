"""What the runtime holds for each pod, relisted periodically like the upstream PLEG.

The kubelet finds its own CRI objects by the labels it puts on them (``io.kubernetes.pod.uid`` ...),
so this module also owns those names. ``RuntimeState.relist`` lists sandboxes and containers once,
groups them by pod uid, and calls ``on_change(uid)`` for every pod whose objects appeared, vanished
or changed state since the previous relist: that is how a container exit wakes its pod worker
without a per-container watcher. ``pod_snapshot`` is the detailed view one pod worker asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from kubelet.cri import CriClient, is_not_found, pb

log = logging.getLogger(__name__)

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_HASH = "io.kubernetes.container.hash"
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
PRESTOP_HANDLER = "io.kubernetes.container.preStopHandler"


@dataclass
class PodRecord:
    """One pod's sandboxes and containers as the last list saw them."""

    sandboxes: list[pb.PodSandbox] = field(default_factory=list)
    containers: list[pb.Container] = field(default_factory=list)

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted([(s.id, s.state) for s in self.sandboxes] + [(c.id, c.state) for c in self.containers]))


@dataclass
class PodSnapshot:
    """One pod's runtime objects in detail, for a pod worker's sync."""

    sandboxes: list[pb.PodSandbox]  # newest attempt first
    sandbox_status: pb.PodSandboxStatus | None  # of the newest ready sandbox
    containers: dict[str, list[pb.ContainerStatus]]  # by name, newest attempt first
    sandbox_of: dict[str, str] = field(default_factory=dict)  # container id -> its sandbox id

    @property
    def ready_sandbox(self) -> pb.PodSandbox | None:
        return next((s for s in self.sandboxes if s.state == pb.SANDBOX_READY), None)

    @property
    def pod_ips(self) -> list[str]:
        st = self.sandbox_status
        if st is None or not st.network.ip:
            return []
        return [st.network.ip, *(a.ip for a in st.network.additional_ips)]


def _newest_first(items: list, attempt: Callable[[object], int], created: Callable[[object], int]) -> list:
    return sorted(items, key=lambda x: (attempt(x), created(x)), reverse=True)


async def pod_snapshot(cri: CriClient, uid: str) -> PodSnapshot:
    """Sandboxes (newest first), the ready one's status, and every container's status by name."""
    selector = {POD_UID: uid}
    sandboxes = (await cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(
        filter=pb.PodSandboxFilter(label_selector=selector)))).items
    sandboxes = _newest_first(list(sandboxes), lambda s: s.metadata.attempt, lambda s: s.created_at)
    ready = next((s for s in sandboxes if s.state == pb.SANDBOX_READY), None)
    sandbox_status = None
    if ready is not None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            sandbox_status = (await cri.runtime.PodSandboxStatus(
                pb.PodSandboxStatusRequest(pod_sandbox_id=ready.id))).status
    listed = (await cri.runtime.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(label_selector=selector)))).containers
    by_name: dict[str, list[pb.ContainerStatus]] = {}
    sandbox_of = {c.id: c.pod_sandbox_id for c in listed}
    for c in listed:
        try:
            status = (await cri.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=c.id))).status
        except grpc.aio.AioRpcError as exc:
            if is_not_found(exc):
                continue
            raise
        by_name.setdefault(status.metadata.name, []).append(status)
    for name, items in by_name.items():
        by_name[name] = _newest_first(items, lambda s: s.metadata.attempt, lambda s: s.created_at)
    return PodSnapshot(sandboxes=sandboxes, sandbox_status=sandbox_status, containers=by_name,
                       sandbox_of=sandbox_of)


class RuntimeState:
    """The PLEG: periodic relists that wake the workers of pods whose runtime objects changed."""

    def __init__(self, *, cri: CriClient, on_change: Callable[[str], None]) -> None:
        self.cri = cri
        self.on_change = on_change
        self.pods: dict[str, PodRecord] = {}
        self.listed = False

    async def relist(self) -> set[str]:
        sandboxes = (await self.cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest())).items
        containers = (await self.cri.runtime.ListContainers(pb.ListContainersRequest())).containers
        fresh: dict[str, PodRecord] = {}
        for s in sandboxes:
            if uid := s.labels.get(POD_UID):
                fresh.setdefault(uid, PodRecord()).sandboxes.append(s)
        for c in containers:
            if uid := c.labels.get(POD_UID):
                fresh.setdefault(uid, PodRecord()).containers.append(c)
        empty = PodRecord()
        changed = {uid for uid in fresh.keys() | self.pods.keys()
                   if fresh.get(uid, empty).fingerprint() != self.pods.get(uid, empty).fingerprint()}
        self.pods = fresh
        self.listed = True
        for uid in changed:
            self.on_change(uid)
        return changed

    async def run(self, interval: float) -> None:
        """Relist every ``interval`` seconds until cancelled; runtime errors are logged and retried."""
        while True:
            try:
                await self.relist()
            except grpc.aio.AioRpcError as exc:
                log.warning("relist failed: %s", exc.details())
            await asyncio.sleep(interval)
