"""The daemon's lifetime: prepare the host and state dir, open the store, serve the app on a socket.

Start-up order: the state dir (and an emptied scratch dir), the host's cgroup set-up from
``engine.runtime.hostsetup`` when that module exists (containers need it; images do not), the
store, the container half (a ``ContainerManager`` on crun, else runc, with conmon; it ``load``s
the containers a previous daemon left running, which kept running while no daemon was up), then
the unix socket. Without conmon or an OCI runtime the daemon still serves images and says why
container calls fail. A socket file left by a dead daemon is replaced; one a live daemon
still answers on is refused, so two daemons never share a root by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import shutil
import signal
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from engine import unixsocket
from engine.daemon.app import make_app
from engine.daemon.context import EngineContext
from engine.daemon.events import EventBus
from engine.images.store import ImageStore

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
SHUTDOWN_TIMEOUT = 5.0
RUNTIMES = ("crun", "runc")  # in order of preference


class DaemonError(RuntimeError):
    """The daemon cannot start (socket taken, state dir unusable); the message is one line."""


def run_host_setup() -> bool:
    """``engine.runtime.hostsetup.ensure_cgroups()`` if the runtime half exists; True if it ran."""
    try:
        hostsetup = importlib.import_module("engine.runtime.hostsetup")
    except ModuleNotFoundError as exc:
        if exc.name in ("engine.runtime", "engine.runtime.hostsetup"):
            return False
        raise
    hostsetup.ensure_cgroups()
    return True


def claim_socket(path: Path) -> None:
    """Make ``path`` free for our socket, refusing if another engine daemon answers there."""
    unixsocket.claim(path, owner="engine daemon", error=DaemonError)


def pick_runtime(wanted: str | None = None) -> tuple[str | None, str]:
    """(runtime, "") for the OCI runtime to use, or (None, why containers are unavailable)."""
    if shutil.which("conmon") is None:
        return None, "containers are not available: conmon is not installed"
    for name in (wanted,) if wanted else RUNTIMES:
        if shutil.which(name):
            return name, ""
    return None, f"containers are not available: no OCI runtime ({wanted or ' or '.join(RUNTIMES)}) is installed"


def prepare_root(root: Path, scratch: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    engine_id = root / "engine-id"
    if not engine_id.exists():
        engine_id.write_text(uuid.uuid4().hex + "\n")


class EngineDaemon:
    """One daemon: ``await start()``, serve until ``await stop()``."""

    def __init__(
        self,
        *,
        root: str | os.PathLike[str],
        socket_path: str | os.PathLike[str],
        insecure_registries: Iterable[str] = (),
        registry_timeout: float = 30.0,
        host_setup: Callable[[], object] = run_host_setup,
        runtime: str | None = None,
        containers: bool = True,
        cri_socket: str | os.PathLike[str] | None = None,
        cri_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.root = Path(root)
        self.socket_path = Path(socket_path)
        self.insecure_registries = tuple(insecure_registries)
        self.registry_timeout = registry_timeout
        self._host_setup = host_setup
        self._runtime = runtime
        self._with_containers = containers
        #: where to serve the Kubernetes CRI (gRPC) too; None: not at all
        self.cri_socket = Path(cri_socket) if cri_socket is not None else None
        #: extra CRIServer arguments: a node agent's own CNI dirs and namespace run dir
        self.cri_options = dict(cri_options or {})
        self._cri: Any = None
        self.context: EngineContext | None = None
        self._runner: web.AppRunner | None = None
        self._listening = False  # the socket file is ours to remove

    async def start(self) -> None:
        store = await asyncio.to_thread(self._open_store)
        self.context = EngineContext(
            store=store,
            root=self.root,
            socket_path=self.socket_path,
            insecure_registries=self.insecure_registries,
            registry_timeout=self.registry_timeout,
        )
        try:
            await asyncio.to_thread(prepare_root, self.root, self.context.scratch)
            await asyncio.to_thread(self._host_setup)
            await asyncio.to_thread(claim_socket, self.socket_path)  # before loading: one daemon per root
            await self._open_containers(self.context)
            await self._open_cri(self.context)
            runner = web.AppRunner(make_app(self.context), shutdown_timeout=SHUTDOWN_TIMEOUT)
            await runner.setup()
            self._runner = runner
            await web.UnixSite(runner, str(self.socket_path)).start()
            self._listening = True
            os.chmod(self.socket_path, SOCKET_MODE)
        except BaseException:
            await self.stop()
            raise
        log.info("engine daemon serving on unix://%s (root %s)", self.socket_path, self.root)

    async def _open_containers(self, context: EngineContext) -> None:
        """The container service, with the containers a previous daemon left (see module doc)."""
        runtime, why = pick_runtime(self._runtime)
        if not self._with_containers:
            runtime, why = None, "containers are disabled on this daemon"
        if runtime is None:
            context.containers_unavailable = why
            log.warning("%s", why)
            return
        from engine.containers.manager import ContainerManager  # only a daemon with containers pays for it
        from engine.daemon.network import Networks
        from engine.daemon.service import ContainerService

        networks = Networks(self.root)
        await asyncio.to_thread(networks.prepare)
        events: EventBus = context.events
        service = ContainerService(ContainerManager(self.root, context.store, runtime=runtime),
                                   networks=networks, events=events)
        service.on_remove(context.execs.forget_container)
        context.store.in_use = service.image_in_use
        context.containers = service
        found = await service.load()
        running = sum(1 for c in found if c.running)
        bridge = "bridge network ready" if networks.bridge_available else networks.unavailable_reason
        log.info("containers: runtime %s under conmon; %d found (%d running); %s", runtime, len(found), running, bridge)

    async def _open_cri(self, context: EngineContext) -> None:
        """The CRI v1 server on its own socket, over the same store and containers (the kubelet's way in)."""
        if self.cri_socket is None:
            return
        if context.containers is None:
            log.warning("CRI not served: %s", context.containers_unavailable)
            return
        from engine.cri.server import CRIServer  # gRPC is only loaded by daemons that serve the CRI

        self._cri = CRIServer(store=context.store, containers=context.containers.manager,
                              socket_path=self.cri_socket, registries=context.registry, **self.cri_options)
        await self._cri.start()
        log.info("CRI v1 serving on unix://%s", self.cri_socket)

    def _open_store(self) -> ImageStore:
        self.root.mkdir(parents=True, exist_ok=True)
        return ImageStore(self.root)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._cri is not None:
            await self._cri.stop()
            self._cri = None
        if self.context is not None and self.context.containers is not None:
            await self.context.containers.close()  # the containers themselves keep running
            self.context.containers = None
        if self._listening:
            self._listening = False
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        if self.context is not None:
            await self.context.close()
            self.context.store.close()
            self.context = None


async def serve(daemon: EngineDaemon, *, ready: Callable[[], None] | None = None) -> None:
    """Run ``daemon`` until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await daemon.start()
    try:
        if ready is not None:
            ready()
        await stop.wait()
    finally:
        await daemon.stop()
