"""``runtime.v1.RuntimeService``: pod sandboxes and their containers, as the kubelet drives them.

Sandboxes come from ``SandboxManager``; containers are the engine's own (``ContainerManager``),
created from a translated config (``container_config``) that carries the CRI's metadata with it,
so only containers made through the CRI are listed here and both survive an engine restart.
Idempotency follows the CRI's comments and containerd: stopping or removing what is already
stopped/removed succeeds; removing an unknown sandbox or container succeeds; any other call on an
unknown id is NOT_FOUND. Stopping a sandbox kills its containers first (they are SIGKILLed: the
kubelet has already stopped them gracefully), then releases its network; removing one removes its
containers, then the sandbox. Exec/Attach/PortForward only prepare a URL on ``StreamingServer``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import grpc
import orjson

from engine.containers.errors import Conflict
from engine.containers.errors import NotFound as ContainerNotFound
from engine.containers.manager import ContainerManager
from engine.containers.record import Container, Status
from engine.cri import convert, logfiles, netdial
from engine.cri.cni import CNI
from engine.cri.container_config import CriInfo, resources, translate
from engine.cri.errors import (
    AlreadyExists,
    CRIError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from engine.cri.filters import id_matches, labels_match
from engine.cri.fsusage import tree_usage
from engine.cri.proto import api_pb2 as pb
from engine.cri.proto import api_pb2_grpc as pb_grpc
from engine.cri.sandboxes import NOTREADY, READY, Sandbox, SandboxManager
from engine.cri.servicer import translate_errors
from engine.cri.streaming import Session, StreamingServer, StreamRequest
from engine.images.errors import ImageError, ImageNotFound
from engine.images.store import ImageStore

log = logging.getLogger(__name__)

RUNTIME_NAME = "pinnace"
RUNTIME_VERSION = "0.1.0"
RUNTIME_API_VERSION = "v1"
KUBELET_API_VERSION = "0.1.0"
RUNTIME_HANDLERS: tuple[str, ...] = ("",)  # "" = the default handler (crun, or runc if chosen)
# CRI sandbox state filter value -> our sandbox state
SANDBOX_STATE_FILTER: dict[int, str] = {pb.SANDBOX_READY: READY, pb.SANDBOX_NOTREADY: NOTREADY}


class _Streams:
    """The streaming server's backend: opens exec/attach sessions and pod connections."""

    def __init__(self, service: RuntimeService) -> None:
        self.service = service

    async def open_exec(self, request: StreamRequest) -> Session:
        return await self.service.containers.exec_stream(
            request.target, list(request.cmd), tty=request.tty, stdin=request.stdin
        )

    async def open_attach(self, request: StreamRequest) -> Session:
        return await self.service.containers.attach(request.target)

    async def dial(self, sandbox_id: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sandbox = self.service.sandboxes.get(sandbox_id)
        if not sandbox.ready:
            raise FailedPrecondition(f"pod sandbox {sandbox.id} is not ready")
        return await netdial.dial("" if sandbox.host_network else sandbox.netns, port)


def _check_streams(*, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
    if not (stdin or stdout or stderr):
        raise InvalidArgument("one of stdin, stdout and stderr must be requested")
    if tty and stderr:
        raise InvalidArgument("tty and stderr cannot both be requested (a terminal has one output)")


def _check_cmd(cmd: Sequence[str]) -> None:
    if not cmd or not cmd[0]:
        raise InvalidArgument("no command given (cmd is empty)")


@translate_errors
class RuntimeService(pb_grpc.RuntimeServiceServicer):
    """The CRI runtime service over the engine's sandboxes and containers."""

    def __init__(
        self,
        *,
        sandboxes: SandboxManager,
        containers: ContainerManager,
        store: ImageStore,
        streaming: StreamingServer | None = None,
    ) -> None:
        self.sandboxes = sandboxes
        self.containers = containers
        self.store = store
        self.streaming = streaming if streaming is not None else StreamingServer()
        self.streaming.backend = _Streams(self)
        self.cpu = convert.CpuRates()
        self.pod_cidr = ""
        self._abandoned: set[asyncio.Future[Any]] = set()

    @property
    def cni(self) -> CNI:
        return self.sandboxes.cni

    # ------------------------------------------------------------------------------ lookups

    def _cri(self, container: Container) -> CriInfo | None:
        return CriInfo.from_extra(container.config.extra)

    def _container(self, wanted: str) -> tuple[Container, CriInfo]:
        if not wanted:
            raise InvalidArgument("container id is empty")
        try:
            container = self.containers.get(wanted)
        except ContainerNotFound:
            raise NotFound(f"container {wanted!r} not found") from None
        info = self._cri(container)
        if info is None or container.name == wanted:  # only CRI containers, by id (not engine name)
            raise NotFound(f"container {wanted!r} not found")
        return container, info

    def _image_ref(self, image_id: str) -> str:
        """A digested reference of the image (``repo@sha256:...``) when it has one, else its id."""
        try:
            image = self.store.resolve(image_id)
        except ImageError:
            return image_id
        return next((r for r in image.references if "@" in r), image_id)

    def _pod_containers(self) -> list[tuple[Container, CriInfo]]:
        out = []
        for container in self.containers.list(all=True):
            info = self._cri(container)
            if info is not None:
                out.append((container, info))
        return out

    def _of_sandbox(self, sandbox_id: str) -> list[tuple[Container, CriInfo]]:
        return [(c, i) for c, i in self._pod_containers() if i.sandbox_id == sandbox_id]

    # ------------------------------------------------------------------------ version, status

    async def Version(self, request: pb.VersionRequest, context: grpc.aio.ServicerContext) -> pb.VersionResponse:
        return pb.VersionResponse(
            version=KUBELET_API_VERSION,
            runtime_name=RUNTIME_NAME,
            runtime_version=RUNTIME_VERSION,
            runtime_api_version=RUNTIME_API_VERSION,
        )

    async def Status(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        network = pb.RuntimeCondition(type="NetworkReady", status=True)
        try:
            await self.cni.network()
        except CRIError as exc:
            network = pb.RuntimeCondition(
                type="NetworkReady", status=False, reason="NetworkPluginNotReady", message=str(exc)
            )
        info = {}
        if request.verbose:
            info["config"] = orjson.dumps(
                {"cniConfDir": str(self.cni.conf_dir), "cniBinDirs": list(self.cni.bin_dirs),
                 "runtime": self.containers.runtime, "streamingURL": self.streaming.base_url}
            ).decode()
        return pb.StatusResponse(
            status=pb.RuntimeStatus(conditions=[pb.RuntimeCondition(type="RuntimeReady", status=True), network]),
            info=info,
            runtime_handlers=[
                pb.RuntimeHandler(name=name, features=pb.RuntimeHandlerFeatures()) for name in RUNTIME_HANDLERS
            ],
            features=pb.RuntimeFeatures(),
        )

    async def RuntimeConfig(
        self, request: pb.RuntimeConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.RuntimeConfigResponse:
        return pb.RuntimeConfigResponse(linux=pb.LinuxRuntimeConfiguration(cgroup_driver=pb.CGROUPFS))

    async def UpdateRuntimeConfig(
        self, request: pb.UpdateRuntimeConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateRuntimeConfigResponse:
        self.pod_cidr = request.runtime_config.network_config.pod_cidr  # the CNI config owns IPAM
        return pb.UpdateRuntimeConfigResponse()

    # ------------------------------------------------------------------------------ sandboxes

    async def RunPodSandbox(
        self, request: pb.RunPodSandboxRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunPodSandboxResponse:
        if request.runtime_handler not in RUNTIME_HANDLERS:
            raise InvalidArgument(f"unknown runtime handler {request.runtime_handler!r}")
        sandbox = await self.sandboxes.run(request.config, runtime_handler=request.runtime_handler)
        log.info("pod sandbox %s ready for %s/%s (ip %s)", sandbox.id[:12], sandbox.metadata.namespace,
                 sandbox.metadata.name, ",".join(sandbox.ips) or "host")
        return pb.RunPodSandboxResponse(pod_sandbox_id=sandbox.id)

    async def _kill_containers(self, sandbox: Sandbox) -> None:
        running = [c for c, _ in self._of_sandbox(sandbox.id) if c.state.status is Status.RUNNING]
        await asyncio.gather(*(self.containers.stop(c.id, timeout=0) for c in running))

    async def StopPodSandbox(
        self, request: pb.StopPodSandboxRequest, context: grpc.aio.ServicerContext
    ) -> pb.StopPodSandboxResponse:
        sandbox = self.sandboxes.get(request.pod_sandbox_id)
        await self._kill_containers(sandbox)
        await self.sandboxes.stop(sandbox)
        return pb.StopPodSandboxResponse()

    async def RemovePodSandbox(
        self, request: pb.RemovePodSandboxRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemovePodSandboxResponse:
        sandbox = self.sandboxes.find(request.pod_sandbox_id)
        if sandbox is None:
            return pb.RemovePodSandboxResponse()
        await self._kill_containers(sandbox)
        for container, info in self._of_sandbox(sandbox.id):
            await self._remove_container(container, info)
        await self.sandboxes.remove(sandbox)
        return pb.RemovePodSandboxResponse()

    async def PodSandboxStatus(
        self, request: pb.PodSandboxStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.PodSandboxStatusResponse:
        sandbox = self.sandboxes.get(request.pod_sandbox_id)
        info = self.sandboxes.status_info(sandbox) if request.verbose else {}
        return pb.PodSandboxStatusResponse(status=convert.sandbox_status(sandbox), info=info)

    async def ListPodSandbox(
        self, request: pb.ListPodSandboxRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPodSandboxResponse:
        flt = request.filter
        state = SANDBOX_STATE_FILTER[flt.state.state] if flt.HasField("state") else None
        found = self.sandboxes.list(id_prefix=flt.id, state=state, labels=flt.label_selector)
        return pb.ListPodSandboxResponse(items=[convert.sandbox_message(s) for s in found])

    # ----------------------------------------------------------------------------- containers

    async def CreateContainer(
        self, request: pb.CreateContainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateContainerResponse:
        sandbox = self.sandboxes.get(request.pod_sandbox_id)
        config = request.config
        if not config.image.image:
            raise InvalidArgument("no image given (ContainerConfig.image.image is empty)")
        try:
            image = self.store.resolve(config.image.image)
        except ImageNotFound:
            raise NotFound(f"image {config.image.image!r} not found: pull it first") from None
        async with self.sandboxes.lock(sandbox.id):
            if not sandbox.ready:
                raise FailedPrecondition(f"pod sandbox {sandbox.id} is not ready")
            meta = config.metadata
            for _, info in self._of_sandbox(sandbox.id):
                if (info.name, info.attempt) == (meta.name, meta.attempt):
                    raise AlreadyExists(
                        f"container {meta.name!r} attempt {meta.attempt} already exists in pod sandbox {sandbox.id}"
                    )
            target_pid = 0
            if config.linux.security_context.namespace_options.pid == pb.TARGET:
                target, _ = self._container(config.linux.security_context.namespace_options.target_id)
                target_pid = target.state.pid
            engine_config = translate(config, sandbox, image=image.id, target_pid=target_pid)
            try:
                container = await self.containers.create(engine_config)
            except Conflict as exc:
                raise AlreadyExists(str(exc)) from None
        info = self._cri(container)
        if info is not None:
            await asyncio.to_thread(logfiles.link, info.log_path, container.paths.log)
        return pb.CreateContainerResponse(container_id=container.id)

    async def StartContainer(
        self, request: pb.StartContainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartContainerResponse:
        container, info = self._container(request.container_id)
        sandbox = self.sandboxes.get(info.sandbox_id)
        if not sandbox.ready:
            raise FailedPrecondition(f"pod sandbox {sandbox.id} of container {container.id} is not ready")
        if container.state.status is Status.RUNNING:
            raise FailedPrecondition(f"container {container.id} is already running")
        await self.containers.start(container.id)
        await asyncio.to_thread(logfiles.link, info.log_path, container.paths.log)
        return pb.StartContainerResponse()

    async def StopContainer(
        self, request: pb.StopContainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.StopContainerResponse:
        if request.timeout < 0:
            raise InvalidArgument(f"timeout must not be negative: {request.timeout}")
        container, _ = self._container(request.container_id)
        await self.containers.stop(container.id, timeout=request.timeout)
        return pb.StopContainerResponse()

    async def _remove_container(self, container: Container, info: CriInfo) -> None:
        with_log = container.paths.log
        try:
            await self.containers.remove(container.id, force=True)
        except ContainerNotFound:
            pass
        self.cpu.forget(container.id)
        await asyncio.to_thread(logfiles.unlink, info.log_path, with_log)

    async def RemoveContainer(
        self, request: pb.RemoveContainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemoveContainerResponse:
        try:
            container, info = self._container(request.container_id)
        except NotFound:
            return pb.RemoveContainerResponse()
        await self._remove_container(container, info)
        return pb.RemoveContainerResponse()

    async def ListContainers(
        self, request: pb.ListContainersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListContainersResponse:
        flt = request.filter
        state = convert.STATE_FILTER.get(flt.state.state) if flt.HasField("state") else None
        out = [
            convert.container_message(c, i, image_ref=self._image_ref(c.state.image_id))
            for c, i in self._pod_containers()
            if id_matches(c.id, flt.id)
            and id_matches(i.sandbox_id, flt.pod_sandbox_id)
            and (not flt.HasField("state") or c.state.status is state)
            and labels_match(i.labels, flt.label_selector)
        ]
        return pb.ListContainersResponse(containers=out)

    async def ContainerStatus(
        self, request: pb.ContainerStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.ContainerStatusResponse:
        container, info = self._container(request.container_id)
        extra = {}
        if request.verbose:
            extra["info"] = orjson.dumps(
                {"pid": container.state.pid, "sandboxID": info.sandbox_id, "name": container.name,
                 "bundle": str(container.paths.bundle), "runtime": container.state.runtime}
            ).decode()
        status = convert.container_status(container, info, image_ref=self._image_ref(container.state.image_id))
        return pb.ContainerStatusResponse(status=status, info=extra)

    async def UpdateContainerResources(
        self, request: pb.UpdateContainerResourcesRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateContainerResourcesResponse:
        container, _ = self._container(request.container_id)
        await self.containers.update(container.id, resources(request.linux))
        return pb.UpdateContainerResourcesResponse()

    async def ReopenContainerLog(
        self, request: pb.ReopenContainerLogRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReopenContainerLogResponse:
        container, info = self._container(request.container_id)
        await self.containers.reopen_log(container.id)
        await asyncio.to_thread(logfiles.link, info.log_path, container.paths.log)
        return pb.ReopenContainerLogResponse()

    # ------------------------------------------------------------------------ exec and streams

    def _running(self, wanted: str) -> Container:
        container, _ = self._container(wanted)
        if container.state.status is not Status.RUNNING:
            raise FailedPrecondition(f"container {container.id} is not running")
        return container

    async def ExecSync(self, request: pb.ExecSyncRequest, context: grpc.aio.ServicerContext) -> pb.ExecSyncResponse:
        _check_cmd(request.cmd)
        if request.timeout < 0:
            raise InvalidArgument(f"timeout must not be negative: {request.timeout}")
        container = self._running(request.container_id)
        task = asyncio.ensure_future(self.containers.exec(container.id, list(request.cmd)))
        try:
            result = await asyncio.wait_for(asyncio.shield(task), request.timeout or None)
        except TimeoutError:
            self._abandon(task)
            raise DeadlineExceeded(f"command {list(request.cmd)} timed out after {request.timeout}s") from None
        except asyncio.CancelledError:  # the client went away
            self._abandon(task)
            raise
        return pb.ExecSyncResponse(stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code)

    def _abandon(self, task: asyncio.Future[Any]) -> None:
        """Cancel an exec we no longer wait for. Its end is not awaited: the session's close waits
        until the command's output pipes close, i.e. until the command itself has ended."""
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def Exec(self, request: pb.ExecRequest, context: grpc.aio.ServicerContext) -> pb.ExecResponse:
        _check_cmd(request.cmd)
        _check_streams(stdin=request.stdin, stdout=request.stdout, stderr=request.stderr, tty=request.tty)
        container = self._running(request.container_id)
        url = self.streaming.prepare(
            StreamRequest(kind="exec", target=container.id, cmd=tuple(request.cmd), tty=request.tty,
                          stdin=request.stdin, stdout=request.stdout, stderr=request.stderr)
        )
        return pb.ExecResponse(url=url)

    async def Attach(self, request: pb.AttachRequest, context: grpc.aio.ServicerContext) -> pb.AttachResponse:
        _check_streams(stdin=request.stdin, stdout=request.stdout, stderr=request.stderr, tty=request.tty)
        container = self._running(request.container_id)
        if request.tty != container.config.tty:
            raise InvalidArgument(f"tty={request.tty} does not match the container's tty={container.config.tty}")
        if request.stdin and not container.config.stdin:
            raise InvalidArgument(f"container {container.id} was not created with stdin")
        url = self.streaming.prepare(
            StreamRequest(kind="attach", target=container.id, tty=request.tty, stdin=request.stdin,
                          stdout=request.stdout, stderr=request.stderr)
        )
        return pb.AttachResponse(url=url)

    async def PortForward(
        self, request: pb.PortForwardRequest, context: grpc.aio.ServicerContext
    ) -> pb.PortForwardResponse:
        sandbox = self.sandboxes.get(request.pod_sandbox_id)
        if not sandbox.ready:
            raise FailedPrecondition(f"pod sandbox {sandbox.id} is not ready")
        for port in request.port:
            if not 0 < port < 65536:
                raise InvalidArgument(f"invalid port {port}")
        url = self.streaming.prepare(StreamRequest(kind="portforward", target=sandbox.id, ports=tuple(request.port)))
        return pb.PortForwardResponse(url=url)

    # ---------------------------------------------------------------------------------- stats

    async def _stats(self, container: Container, info: CriInfo) -> pb.ContainerStats:
        sample = await self.containers.stats(container.id)
        writable = await asyncio.to_thread(tree_usage, container.paths.upper)
        return convert.stats_message(
            container,
            info,
            sample,
            nano_cores=self.cpu.rate(container.id, sample.cpu_usage_ns),
            writable=writable,
            mountpoint=str(container.paths.upper),
        )

    async def ContainerStats(
        self, request: pb.ContainerStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ContainerStatsResponse:
        container, info = self._container(request.container_id)
        return pb.ContainerStatsResponse(stats=await self._stats(container, info))

    async def ListContainerStats(
        self, request: pb.ListContainerStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListContainerStatsResponse:
        flt = request.filter
        chosen = [
            (c, i)
            for c, i in self._pod_containers()
            if id_matches(c.id, flt.id)
            and id_matches(i.sandbox_id, flt.pod_sandbox_id)
            and labels_match(i.labels, flt.label_selector)
        ]
        stats = await asyncio.gather(*(self._stats(c, i) for c, i in chosen))
        return pb.ListContainerStatsResponse(stats=stats)
