"""One pod's worker: drives the runtime toward the pod's spec, one sync at a time.

Each pod uid gets one asyncio task; every cause of change (a pod update from the informer, a
runtime change seen by the relist, a probe result, a back-off timer) only *wakes* the worker, and
the worker then syncs from fresh CRI state, so syncs of one pod never overlap and a burst of
causes costs one sync. A sync follows the upstream kubelet's ``SyncPod``: volumes, sandbox (a new
one, attempt+1, when none is ready), image pulls per imagePullPolicy, init containers in order,
containers with restarts per restartPolicy and the crash back-off, liveness kills, spec-change
restarts; then the pod status is computed (kubelet/status.py) and written only when it changed.
A pod with a deletionTimestamp is terminated gracefully and its API object then deleted; a pod the
API no longer knows (orphan) is torn down the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import orjson

from kubelet import backoff
from kubelet import runtime_state as rs
from kubelet.config import KubeletConfig
from kubelet.cri import CriClient, pb
from kubelet.events import EventRecorder
from kubelet.images import BackoffLike, ImagePuller
from kubelet.plugins import Plugins
from kubelet.sources import ObjectSource
from kubelet.status import PodObservation, compute_status, status_changed
from machinery.client import ApiClient, ApiError, TransportError
from machinery.resources import PODS

log = logging.getLogger(__name__)

DEFAULT_GRACE = 30
ORPHAN_GRACE_CAP = 10  # seconds an orphan (pod gone from the API) gets to stop
RESET_AFTER_RUN = 600.0  # a container that ran this long restarts without back-off, as upstream
RETRY_DELAY = 2.0  # seconds before retrying a sync that failed (runtime/API errors, mount errors)
TERMINAL = ("Succeeded", "Failed")
KEEP_PER_CONTAINER = 2  # newest containers of one name kept: the current one and the previous (lastState)


class ProbesLike(Protocol):
    def sync(self, pod: dict[str, Any], running: dict[str, tuple[str, float]], *,
             pod_ip: str | None = None) -> None: ...
    def remove_pod(self, pod_uid: str) -> None: ...
    def ready(self, container_id: str) -> bool: ...
    def started(self, container_id: str) -> bool: ...
    def liveness_failed(self, container_id: str) -> str | None: ...


class VolumesLike(Protocol):
    async def setup(self, pod: dict[str, Any]) -> dict[str, str]: ...
    async def refresh(self, pod: dict[str, Any]) -> None: ...
    async def teardown(self, pod_uid: str) -> None: ...


@dataclass
class WorkerDeps:
    """What every pod worker shares (one per kubelet)."""

    config: KubeletConfig
    client: ApiClient
    cri: CriClient
    plugins: Plugins
    volumes: VolumesLike
    probes: ProbesLike
    backoff: BackoffLike  # container restarts
    image_backoff: BackoffLike  # image pulls
    recorder: EventRecorder
    source: ObjectSource
    #: the cluster's Services now (for the service link environment variables)
    services: Callable[[], list[dict[str, Any]]] = list


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def grace_period(pod: dict[str, Any]) -> int:
    md, spec = pod.get("metadata", {}), pod.get("spec", {})
    value = md.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE)
    return max(0, int(value))


def pod_label(pod: dict[str, Any]) -> str:
    """``name_namespace(uid)``, upstream's format.Pod."""
    md = pod.get("metadata", {})
    return f"{md.get('name')}_{md.get('namespace')}({md.get('uid')})"


class PodWorker:
    """Serialises the syncs of one pod; ``update``/``wake`` from anywhere, ``run`` is the task."""

    def __init__(self, *, uid: str, deps: WorkerDeps, on_done: Callable[[str], None]) -> None:
        self.uid = uid
        self.deps = deps
        self.on_done = on_done
        self.pod: dict[str, Any] | None = None
        self.waiting: dict[str, tuple[str, str]] = {}
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._delays: dict[str, float] = {}  # back-off key -> current delay
        self._exits_seen: dict[str, str] = {}  # back-off key -> id of the exit already counted
        self.images = ImagePuller(uid=uid, cri=deps.cri, backoff=deps.image_backoff, recorder=deps.recorder)
        self._written: dict[str, Any] = {}
        self._written_rv: int | None = None  # the pod's resourceVersion our last status write made
        self._refreshed = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    # -- driving ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"pod-worker-{self.uid}")

    def update(self, pod: dict[str, Any] | None) -> None:
        """The pod as the API has it now; None when the API no longer has it."""
        self.pod = pod
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def wake_after(self, delay: float) -> None:
        """Wake once ``delay`` seconds from now (the earliest requested timer wins)."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        pending = self._timer is not None and not self._timer.cancelled() and self._timer.when() > loop.time()
        if pending and self._timer is not None and self._timer.when() <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self.wake)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                if await self.sync():
                    break
            except asyncio.CancelledError:
                raise
            except (grpc.aio.AioRpcError, ApiError, TransportError) as exc:
                detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                log.warning("pod %s: sync failed: %s", self.uid, detail)
                self.wake_after(RETRY_DELAY)
            except Exception:
                log.exception("pod %s: sync failed", self.uid)
                self.wake_after(RETRY_DELAY)
        if self._timer is not None:
            self._timer.cancel()
        self.on_done(self.uid)

    # -- one sync -----------------------------------------------------------------------------------

    async def sync(self) -> bool:
        """Bring the runtime one step toward the pod; True when this worker is finished."""
        pod = self.pod
        if pod is None:
            await self.teardown(None)
            return True
        if pod.get("metadata", {}).get("deletionTimestamp"):
            await self.teardown(pod)
            await self._delete(pod)
            return True
        snap = await rs.pod_snapshot(self.deps.cri, self.uid)
        phase = {**(pod.get("status") or {}), **self._written}.get("phase")
        if phase in TERMINAL:
            await self._stop_all(pod, snap, grace=grace_period(pod), reason=None)
            for sandbox in snap.sandboxes:
                if sandbox.state == pb.SANDBOX_READY:
                    await self.deps.cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox.id))
            self.deps.probes.remove_pod(self.uid)
            if snap.sandboxes or snap.containers:  # a pod rejected at admission never ran: nothing to add
                await self._write_status(pod, await rs.pod_snapshot(self.deps.cri, self.uid))
            return False
        try:
            paths = await self.deps.volumes.setup(pod)
            if time.monotonic() - self._refreshed >= self.deps.config.sync_frequency:
                self._refreshed = time.monotonic()
                await self.deps.volumes.refresh(pod)
        except self.deps.plugins.volume_error as exc:
            self.deps.recorder.event(pod, reason=getattr(exc, "reason", "FailedMount"), message=str(exc),
                                     warning=True)
            await self._write_status(pod, snap)
            self.wake_after(RETRY_DELAY)
            return False
        snap = await self._ensure_sandbox(pod, snap)
        if snap is None:
            return False
        if await self._sync_init_containers(pod, snap, paths):
            await self._sync_containers(pod, snap, paths)
        snap = await rs.pod_snapshot(self.deps.cri, self.uid)
        await self._write_status(pod, snap)
        await self._collect_dead(snap)
        self.wake_after(self.deps.config.sync_frequency)  # the periodic resync, as upstream
        return False

    async def _collect_dead(self, snap: rs.PodSnapshot) -> None:
        """Remove exited containers older than the two newest of each name (the current one and the
        one lastState reports), as upstream's container GC does, so crash loops do not pile up."""
        for history in snap.containers.values():
            for cs in history[KEEP_PER_CONTAINER:]:
                if cs.state == pb.CONTAINER_EXITED:
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        await self.deps.cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cs.id))

    # -- sandbox --------------------------------------------------------------------------------------

    async def _ensure_sandbox(self, pod: dict[str, Any], snap: rs.PodSnapshot) -> rs.PodSnapshot | None:
        if snap.ready_sandbox is not None:
            return snap
        cri = self.deps.cri
        if snap.sandboxes:  # the sandbox died: kill what is left, start over with the next attempt
            self.deps.recorder.event(pod, reason="SandboxChanged",
                                     message="Pod sandbox changed, it will be killed and re-created.")
            await self._stop_all(pod, snap, grace=0, reason=None)
            for sandbox in snap.sandboxes:
                await cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox.id))
        attempt = max((s.metadata.attempt + 1 for s in snap.sandboxes), default=0)
        config = self.deps.plugins.sandbox_config(pod, config=self.deps.config, attempt=attempt)
        await asyncio.to_thread(_make_dir, config.log_directory)
        try:
            await cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config), timeout=120)
        except grpc.aio.AioRpcError as exc:
            self.deps.recorder.event(pod, reason="FailedCreatePodSandBox", warning=True,
                                     message=f"Failed to create pod sandbox: {exc.details()}")
            await self._write_status(pod, snap)
            self.wake_after(RETRY_DELAY)
            return None
        return await rs.pod_snapshot(cri, self.uid)

    # -- init containers and containers ---------------------------------------------------------------

    def _current(self, snap: rs.PodSnapshot, name: str) -> pb.ContainerStatus | None:
        history = snap.containers.get(name) or []
        return history[0] if history else None

    def _in_sandbox(self, snap: rs.PodSnapshot, cs: pb.ContainerStatus) -> bool:
        sandbox = snap.ready_sandbox
        return sandbox is not None and snap.sandbox_of.get(cs.id) == sandbox.id

    async def _sync_init_containers(self, pod: dict[str, Any], snap: rs.PodSnapshot,
                                    paths: dict[str, str]) -> bool:
        """Run init containers one after the other; True once all have exited 0."""
        policy = pod.get("spec", {}).get("restartPolicy", "Always")
        for container in pod.get("spec", {}).get("initContainers") or []:
            name = container["name"]
            cur = self._current(snap, name)
            if cur is not None and cur.state == pb.CONTAINER_EXITED and cur.exit_code == 0:
                self.waiting.pop(name, None)
                continue
            if cur is not None and cur.state == pb.CONTAINER_RUNNING and self._in_sandbox(snap, cur):
                return False
            attempt = 0
            if cur is not None:
                if cur.state == pb.CONTAINER_EXITED and policy == "Never":
                    return False  # the pod fails (status.py: failed init + Never)
                if cur.state == pb.CONTAINER_EXITED and not self._backoff_passed(pod, name, cur):
                    return False
                attempt = cur.metadata.attempt + 1
            await self._start(pod, container, snap=snap, attempt=attempt, paths=paths)
            return False
        return True

    async def _sync_containers(self, pod: dict[str, Any], snap: rs.PodSnapshot, paths: dict[str, str]) -> None:
        policy = pod.get("spec", {}).get("restartPolicy", "Always")
        running: dict[str, tuple[str, float]] = {}
        for container in pod.get("spec", {}).get("containers") or []:
            name = container["name"]
            cur = self._current(snap, name)
            if cur is not None and cur.state == pb.CONTAINER_RUNNING and self._in_sandbox(snap, cur):
                if await self._kill_if_needed(pod, container, cur):
                    continue
                running[name] = (cur.id, cur.started_at / 1e9)
                continue
            attempt = 0
            if cur is not None:
                exited = cur.state == pb.CONTAINER_EXITED
                if exited and not should_restart(policy, cur.exit_code):
                    self.waiting.pop(name, None)
                    continue
                if exited and not self._backoff_passed(pod, name, cur):
                    continue
                if cur.state == pb.CONTAINER_RUNNING:  # left in a dead sandbox
                    await self._stop(pod, container, cur, grace=0)
                attempt = cur.metadata.attempt + 1
            if await self._start(pod, container, snap=snap, attempt=attempt, paths=paths):
                self.waiting.pop(name, None)
        self.deps.probes.sync(pod, running, pod_ip=snap.pod_ips[0] if snap.pod_ips else None)

    async def _kill_if_needed(self, pod: dict[str, Any], container: dict[str, Any], cur: pb.ContainerStatus) -> bool:
        """Restart a running container whose spec changed or whose liveness probe failed."""
        name = container["name"]
        why = None
        if cur.annotations.get(rs.CONTAINER_HASH, "") != self.deps.plugins.container_hash(container):
            why = f"Container {name} definition changed, will be restarted"
        elif (failure := self.deps.probes.liveness_failed(cur.id)) is not None:
            why = f"Container {name} failed liveness probe, will be restarted"
            log.info("pod %s: %s: %s", pod_label(pod), why, failure)
        if why is None:
            return False
        self.deps.recorder.event(pod, reason="Killing", message=why, field_path=f"spec.containers{{{name}}}")
        await self._stop(pod, container, cur, grace=grace_period(pod))
        self.wake()
        return True

    def _backoff_passed(self, pod: dict[str, Any], name: str, cur: pb.ContainerStatus) -> bool:
        """Upstream ``doBackOff``: a restart waits while now - finishedAt < the current delay."""
        key = backoff.key(self.uid, name)
        finished = cur.finished_at / 1e9 if cur.finished_at else time.time()
        now = time.time()
        if self._exits_seen.get(key) == cur.id:
            return True  # this exit already passed its back-off (the start must have failed)
        if cur.started_at and finished - cur.started_at / 1e9 >= RESET_AFTER_RUN:
            self.deps.backoff.reset(key)
            self._delays.pop(key, None)
        delay = self._delays.get(key)
        if delay is not None and now - finished < delay:
            message = backoff.message(delay, container=name, pod_ref=pod_label(pod))
            if self.waiting.get(name, ("",))[0] != "CrashLoopBackOff":
                self.deps.recorder.event(pod, reason="BackOff", warning=True,
                                         message=f"Back-off restarting failed container {name} in pod "
                                                 f"{pod_label(pod)}",
                                         field_path=f"spec.containers{{{name}}}")
            self.waiting[name] = ("CrashLoopBackOff", message)
            self.wake_after(finished + delay - now)
            return False
        self._delays[key] = self.deps.backoff.next_delay(key, finished)
        self._exits_seen[key] = cur.id
        return True

    # -- starting and stopping ------------------------------------------------------------------------

    async def _start(self, pod: dict[str, Any], container: dict[str, Any], *, snap: rs.PodSnapshot,
                     attempt: int, paths: dict[str, str]) -> bool:
        name = container["name"]
        sandbox = snap.ready_sandbox
        if sandbox is None:
            return False
        image, waiting, retry = await self.images.ensure(pod, container)
        if waiting is not None:
            self.waiting[name] = waiting
        if retry is not None:
            self.wake_after(retry)
        if image is None:
            return False
        deps = self.deps
        field_path = f"spec.containers{{{name}}}"
        pod_ip = snap.pod_ips[0] if snap.pod_ips else ""
        sandbox_config = deps.plugins.sandbox_config(pod, config=deps.config, attempt=sandbox.metadata.attempt)
        try:
            mounts = deps.plugins.container_mounts(pod, container, paths)
            config = await deps.plugins.container_config(
                pod, container, config=deps.config, attempt=attempt, image_ref=image[0], image_user=image[1],
                mounts=mounts, source=deps.source, pod_ip=pod_ip, host_ip=deps.config.node_ip,
                service_env=deps.plugins.service_env(
                    deps.services(), namespace=pod["metadata"].get("namespace", ""),
                    enable_service_links=pod.get("spec", {}).get("enableServiceLinks", True) is not False))
        except deps.plugins.config_error as exc:
            reason = getattr(exc, "reason", "CreateContainerConfigError")
            self.waiting[name] = (reason, str(exc))
            deps.recorder.event(pod, reason="Failed", message=f"Error: {exc}", warning=True, field_path=field_path)
            self.wake_after(RETRY_DELAY * 5)
            return False
        await asyncio.to_thread(_make_dir, f"{sandbox_config.log_directory}/{name}")
        runtime = deps.cri.runtime
        try:
            created = await runtime.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=sandbox.id, config=config, sandbox_config=sandbox_config), timeout=120)
        except grpc.aio.AioRpcError as exc:
            return self._start_failed(pod, name, "CreateContainerError", exc)
        deps.recorder.event(pod, reason="Created", message=f"Created container: {name}", field_path=field_path)
        try:
            await runtime.StartContainer(pb.StartContainerRequest(container_id=created.container_id), timeout=120)
        except grpc.aio.AioRpcError as exc:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=created.container_id))
            return self._start_failed(pod, name, "RunContainerError", exc)
        deps.recorder.event(pod, reason="Started", message=f"Started container {name}", field_path=field_path)
        post_start = (container.get("lifecycle") or {}).get("postStart")
        if post_start:
            error = await deps.plugins.run_handler(post_start, cri=deps.cri, container_id=created.container_id,
                                                   pod_ip=pod_ip, container=container,
                                                   timeout=float(grace_period(pod)), pod=pod)
            if error:
                deps.recorder.event(pod, reason="FailedPostStartHook", message=error, warning=True,
                                    field_path=field_path)
                await deps.cri.runtime.StopContainer(pb.StopContainerRequest(
                    container_id=created.container_id, timeout=0))
        return True

    def _start_failed(self, pod: dict[str, Any], name: str, reason: str, exc: grpc.aio.AioRpcError) -> bool:
        """The runtime refused to create or start a container: a waiting reason, an event, a retry."""
        self.waiting[name] = (reason, exc.details() or "")
        self.deps.recorder.event(pod, reason="Failed", message=f"Error: {exc.details()}", warning=True,
                                 field_path=f"spec.containers{{{name}}}")
        self.wake_after(RETRY_DELAY * 5)
        return False

    async def _stop(self, pod: dict[str, Any] | None, container: dict[str, Any] | None, cs: pb.ContainerStatus, *,
                    grace: int) -> None:
        """preStop (within the grace period), then StopContainer with what is left of it."""
        deadline = time.monotonic() + grace
        handler = (container or {}).get("lifecycle", {}).get("preStop")
        if handler is None and cs.annotations.get(rs.PRESTOP_HANDLER):
            with contextlib.suppress(orjson.JSONDecodeError):
                handler = orjson.loads(cs.annotations[rs.PRESTOP_HANDLER])
        if handler and grace > 0 and cs.state == pb.CONTAINER_RUNNING:
            pod_ip = str(((pod or {}).get("status") or {}).get("podIP") or "")
            error = await self.deps.plugins.run_handler(handler, cri=self.deps.cri, container_id=cs.id, pod_ip=pod_ip,
                                                        container=container or {"name": cs.metadata.name},
                                                        timeout=float(grace), pod=pod)
            if error and pod is not None:
                self.deps.recorder.event(pod, reason="FailedPreStopHook", message=error, warning=True,
                                         field_path=f"spec.containers{{{cs.metadata.name}}}")
        remaining = max(0, int(deadline - time.monotonic() + 0.999))
        try:
            await self.deps.cri.runtime.StopContainer(pb.StopContainerRequest(container_id=cs.id, timeout=remaining),
                                                      timeout=remaining + 60)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise

    async def _stop_all(self, pod: dict[str, Any] | None, snap: rs.PodSnapshot, *, grace: int,
                        reason: str | None) -> None:
        specs = {}
        if pod is not None:
            spec = pod.get("spec", {})
            specs = {c["name"]: c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])}
        jobs = []
        for name, history in snap.containers.items():
            for cs in history:
                if cs.state != pb.CONTAINER_RUNNING:
                    continue
                if reason and pod is not None:
                    self.deps.recorder.event(pod, reason="Killing", message=f"{reason} {name}",
                                             field_path=f"spec.containers{{{name}}}")
                jobs.append(self._stop(pod, specs.get(name), cs, grace=grace))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def teardown(self, pod: dict[str, Any] | None) -> None:
        """Stop every container gracefully, remove sandboxes (and so containers), then volumes."""
        snap = await rs.pod_snapshot(self.deps.cri, self.uid)
        if pod is not None:
            grace = grace_period(pod)
        else:
            annotated = [int(cs.annotations.get(rs.GRACE_PERIOD, DEFAULT_GRACE) or 0)
                         for history in snap.containers.values() for cs in history]
            grace = min(max(annotated, default=0), ORPHAN_GRACE_CAP)
        self.deps.probes.remove_pod(self.uid)
        await self._stop_all(pod, snap, grace=grace, reason="Stopping container")
        for sandbox in snap.sandboxes:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.deps.cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox.id))
            await self.deps.cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox.id))
        for history in snap.containers.values():  # containers whose sandbox was already gone
            for cs in history:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self.deps.cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cs.id))
        await self.deps.volumes.teardown(self.uid)
        self.deps.recorder.forget(self.uid)

    async def _delete(self, pod: dict[str, Any]) -> None:
        """Finish the deletion the API started: gracePeriodSeconds=0 with a uid precondition."""
        md = pod.get("metadata", {})
        try:
            await self.deps.client.delete(PODS, md["name"], namespace=md.get("namespace"), grace_period_seconds=0,
                                          preconditions={"uid": self.uid})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    # -- status ---------------------------------------------------------------------------------------

    async def _write_status(self, pod: dict[str, Any], snap: rs.PodSnapshot) -> None:
        deps = self.deps
        newest = {name: history[0] for name, history in snap.containers.items() if history}
        running = [cs.id for cs in newest.values() if cs.state == pb.CONTAINER_RUNNING]
        # containers started in this very pass are new to the probes: a container with a readiness
        # probe must not count as ready (the no-probe default) before its first success
        deps.probes.sync(pod, {name: (cs.id, cs.started_at / 1e9) for name, cs in newest.items()
                               if cs.state == pb.CONTAINER_RUNNING},
                         pod_ip=snap.pod_ips[0] if snap.pod_ips else None)
        networked = bool(snap.pod_ips or pod.get("spec", {}).get("hostNetwork"))
        obs = PodObservation(sandbox_ready=snap.ready_sandbox is not None and networked,
                             pod_ips=snap.pod_ips, containers=snap.containers, waiting=dict(self.waiting),
                             ready={cid: deps.probes.ready(cid) for cid in running},
                             started={cid: deps.probes.started(cid) for cid in running},
                             host_ip=deps.config.node_ip, qos_class=deps.plugins.qos_class(pod))
        api = pod.get("status") or {}
        # Our last write overlays a cached copy that may predate it; a copy newer than that write has
        # it already, plus whatever another writer changed since (the node lifecycle controller marks
        # pods Ready=False when it loses the node): compare with that, so our view is restored.
        old = api if _newer_than(pod, self._written_rv) else {**api, **self._written}
        new = compute_status({**pod, "status": old}, obs)
        if not status_changed(old, new):
            return
        md = pod.get("metadata", {})
        written = await deps.client.patch(PODS, md["name"], {"status": new}, namespace=md.get("namespace"),
                                          subresource="status")
        self._written = new
        self._written_rv = _resource_version(written)


def _resource_version(obj: Any) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def _newer_than(pod: dict[str, Any], written_rv: int | None) -> bool:
    """The cached pod was changed after our last status write."""
    current = _resource_version(pod)
    return written_rv is not None and current is not None and current > written_rv


def _make_dir(path: str) -> None:
    import os

    if path:
        os.makedirs(path, exist_ok=True)
