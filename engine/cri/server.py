"""The CRI v1 gRPC server of the engine: ``runtime.v1.RuntimeService`` + ``ImageService`` on a unix socket.

``CRIServer`` is meant to live inside the engine daemon, sharing its ``ImageStore`` and
``ContainerManager`` (one manager per engine root: two would race on the same containers). It
loads the recorded pod sandboxes, starts the streaming server (loopback HTTP, for
Exec/Attach/PortForward URLs), then serves gRPC (``grpc.aio``) on ``socket_path`` (default
/run/pinnace/cri.sock, mode 0660). A stale socket file is replaced; one a live server answers on
is refused.

For running it alone, ``python -m engine.cri.server --root DIR --socket PATH`` opens the store
and a container manager on ``--root`` itself (do not point it at the root of a running
``pinnace engine serve``); SIGINT/SIGTERM stop it, leaving containers and sandboxes running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from engine import unixsocket
from engine.containers.manager import ContainerManager
from engine.cri.cni import CNI, DEFAULT_BIN_DIRS, DEFAULT_CONF_DIR
from engine.cri.image_service import ImageService, RegistryFactory
from engine.cri.namespaces import DEFAULT_RUN_DIR
from engine.cri.proto import api_pb2_grpc as pb_grpc
from engine.cri.runtime_service import RuntimeService
from engine.cri.sandboxes import SandboxManager
from engine.cri.streaming import StreamingServer
from engine.images.errors import ImageError
from engine.images.registry import RegistryPool
from engine.images.store import ImageStore
from engine.runtime import hostsetup

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/run/pinnace/cri.sock"
DEFAULT_ROOT = "/var/lib/pinnace/engine"
SOCKET_MODE = 0o660
STOP_GRACE = 2.0  # seconds in-flight calls get at shutdown
MAX_MESSAGE = 32 << 20  # ExecSync answers carry up to 16 MiB per stream


class ServerError(RuntimeError):
    """The server cannot start (socket taken, bad path); one line."""


def claim_socket(path: Path) -> None:
    """Make ``path`` free for our socket, refusing if another server answers there."""
    unixsocket.claim(path, owner="server", error=ServerError)


class CRIServer:
    """The CRI services of one engine; ``await start()``, later ``await stop()``."""

    def __init__(
        self,
        *,
        store: ImageStore,
        containers: ContainerManager,
        socket_path: str | os.PathLike[str] = DEFAULT_SOCKET,
        state_dir: str | os.PathLike[str] | None = None,
        run_dir: str | os.PathLike[str] = DEFAULT_RUN_DIR,
        cni_conf_dir: str | os.PathLike[str] = DEFAULT_CONF_DIR,
        cni_bin_dirs: Sequence[str] = DEFAULT_BIN_DIRS,
        streaming_port: int = 0,
        registries: RegistryFactory | None = None,
    ) -> None:
        self.socket_path = Path(socket_path)
        self.sandboxes = SandboxManager(
            state_dir=Path(state_dir) if state_dir is not None else Path(containers.root) / "cri",
            run_dir=run_dir,
            cni=CNI(conf_dir=cni_conf_dir, bin_dirs=cni_bin_dirs),
        )
        self.streaming = StreamingServer(port=streaming_port)
        self._own_registries = registries is None
        self.registries = registries or RegistryPool(store)
        self.runtime = RuntimeService(
            sandboxes=self.sandboxes, containers=containers, store=store, streaming=self.streaming
        )
        self.images = ImageService(
            store,
            registries=self.registries,
            in_use=lambda image_id: next(iter(containers.image_users(image_id)), None),
        )
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.sandboxes.load)
            await self.streaming.start()
            await asyncio.to_thread(claim_socket, self.socket_path)
            server = grpc.aio.server(
                options=[("grpc.max_send_message_length", MAX_MESSAGE),
                         ("grpc.max_receive_message_length", MAX_MESSAGE)]
            )
            pb_grpc.add_RuntimeServiceServicer_to_server(self.runtime, server)
            pb_grpc.add_ImageServiceServicer_to_server(self.images, server)
            if server.add_insecure_port(f"unix:{self.socket_path}") == 0:
                raise ServerError(f"cannot listen on {self.socket_path}")
            await server.start()
            self._server = server
            os.chmod(self.socket_path, SOCKET_MODE)
        except BaseException:
            await self.stop()
            raise
        log.info("CRI serving on unix://%s (streaming %s)", self.socket_path, self.streaming.base_url)

    async def stop(self) -> None:
        """Stop serving; containers and sandboxes stay as they are."""
        if self._server is not None:
            await self._server.stop(STOP_GRACE)
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        await self.streaming.stop()
        if self._own_registries and isinstance(self.registries, RegistryPool):
            await self.registries.close()


# ------------------------------------------------------------------------------ standalone


async def serve(args: argparse.Namespace, *, ready: Callable[[], None] | None = None) -> None:
    """Open a store and container manager on ``args.root`` and serve CRI until SIGINT/SIGTERM."""
    root = Path(args.root)
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(hostsetup.ensure_cgroups)  # crun's cgroup needs on this host
    store = await asyncio.to_thread(ImageStore, root)
    containers = ContainerManager(root, store, runtime=args.runtime)
    server: CRIServer | None = None
    try:
        await containers.load()
        server = CRIServer(
            store=store,
            containers=containers,
            socket_path=args.socket,
            run_dir=args.run_dir,
            cni_conf_dir=args.cni_conf_dir,
            cni_bin_dirs=args.cni_bin_dir.split(":"),
            streaming_port=args.streaming_port,
        )
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready()
        await stop.wait()
    finally:
        if server is not None:
            await server.stop()
        await containers.close()
        store.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.cri.server", description="Serve the CRI v1 of the engine.")
    p.add_argument("--root", default=DEFAULT_ROOT, help="engine state directory (default %(default)s)")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="unix socket to serve on (default %(default)s)")
    p.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="where pod namespaces are pinned (default %(default)s)")
    p.add_argument("--cni-conf-dir", default=DEFAULT_CONF_DIR, help="CNI config dir (default %(default)s)")
    p.add_argument("--cni-bin-dir", default=":".join(DEFAULT_BIN_DIRS),
                   help="CNI plugin dirs, colon-separated (default %(default)s)")
    p.add_argument("--streaming-port", type=int, default=0, help="loopback port of the streaming server (0: any)")
    p.add_argument("--runtime", default="crun", help="OCI runtime: crun or runc (default %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready() -> None:
        print(f"pinnace CRI: serving on unix://{args.socket} (root {args.root})", file=sys.stderr, flush=True)

    try:
        asyncio.run(serve(args, ready=ready))
    except (ServerError, ImageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
