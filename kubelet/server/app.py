"""The kubelet's HTTPS server: what the API server proxies pods/log, exec, attach, portforward to.

One aiohttp application on ``config.address:config.port`` with TLS (``tls``), upstream kubelet paths
(``/containerLogs``, ``/exec``, ``/attach``, ``/portforward``, ``/healthz``) and a middleware that
turns away callers without a client certificate signed by the cluster CA (401), as the upstream
kubelet does with anonymous auth off. Each route's work lives in its own module; this one wires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import grpc
from aiohttp import web

from kubelet.config import KubeletConfig
from kubelet.cri import CriClient
from kubelet.server import logs, portforward, streams, tls
from kubelet.server.context import CONTEXT, ServerContext
from machinery import upgrade_proxy

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def healthz(_request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


#: (method, path, handler) of every route; upstream kubelet paths
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/healthz", healthz),
    ("GET", "/containerLogs/{namespace}/{pod}/{container}", logs.handle),
    ("GET", "/exec/{namespace}/{pod}/{container}", streams.handle_exec),
    ("POST", "/exec/{namespace}/{pod}/{container}", streams.handle_exec),
    ("GET", "/attach/{namespace}/{pod}/{container}", streams.handle_attach),
    ("POST", "/attach/{namespace}/{pod}/{container}", streams.handle_attach),
    ("GET", "/portforward/{namespace}/{pod}", portforward.handle),
    ("POST", "/portforward/{namespace}/{pod}", portforward.handle),
)
UNAUTHENTICATED = frozenset({"/healthz"})

#: CRI status -> HTTP error the client gets (the rest are 500s)
GRPC_TO_HTTP: dict[grpc.StatusCode, type[web.HTTPException]] = {
    grpc.StatusCode.INVALID_ARGUMENT: web.HTTPBadRequest,
    grpc.StatusCode.FAILED_PRECONDITION: web.HTTPBadRequest,
    grpc.StatusCode.NOT_FOUND: web.HTTPNotFound,
    grpc.StatusCode.UNAVAILABLE: web.HTTPServiceUnavailable,
}


@web.middleware
async def _runtime_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A failed CRI call becomes an HTTP error with the runtime's message; an unreachable backend 502."""
    try:
        return await handler(request)
    except grpc.aio.AioRpcError as exc:
        error = GRPC_TO_HTTP.get(exc.code(), web.HTTPInternalServerError)
        raise error(text=f"{exc.details() or exc.code().name}\n") from None
    except (upgrade_proxy.DialError, upgrade_proxy.BackendError) as exc:  # the engine's streaming server
        raise web.HTTPBadGateway(text=f"{exc}\n") from None


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only holders of a cluster-CA-signed client cert (verified in the handshake) get through."""
    if request.path not in UNAUTHENTICATED:
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        if not peer:
            raise web.HTTPUnauthorized(text="Unauthorized\n")
    return await handler(request)


class KubeletServer:
    """HTTPS on ``config.address:config.port``; ``port`` is the bound one after ``start``."""

    def __init__(self, *, config: KubeletConfig, cri: CriClient, ca_pem: bytes) -> None:
        self.config = config
        self.cri = cri
        self.ca_pem = ca_pem
        self.port = config.port
        self._runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[_authenticate, _runtime_errors])
        app[CONTEXT] = ServerContext(config=self.config, cri=self.cri)
        for method, path, handler in ROUTES:
            app.router.add_route(method, path, handler)
        return app

    async def start(self) -> None:
        hosts = tuple(h for h in (self.config.node_ip, self.config.address) if h and h not in ("0.0.0.0", "::"))
        cert_path, key_path = await asyncio.to_thread(tls.ensure_serving_cert, self.config.root_dir, hosts=hosts)
        ssl_ctx = tls.server_context(cert_path=cert_path, key_path=key_path, ca_pem=self.ca_pem)
        if not self.ca_pem.strip():
            log.warning("kubelet server has no cluster CA: every client will get 401")
        self._runner = web.AppRunner(self.build_app(), handle_signals=False, shutdown_timeout=1.0,
                                     access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.address, self.config.port, ssl_context=ssl_ctx,
                           reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self.stop()
            raise
        server = site._server  # the bound port when 0 was asked for
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        log.info("kubelet server listening on %s:%d", self.config.address, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.cleanup()
