"""The CRI streaming server: the URLs Exec, Attach and PortForward answer, served over HTTP.

The CRI's streaming calls do not stream over gRPC: they return a URL, and the client (the kubelet,
or crictl) opens it. Each URL is ``http://127.0.0.1:PORT/{exec|attach|portforward}/TOKEN``; the
token is single-use and expires after ``TOKEN_TTL`` seconds (the kubelet's cache keeps them for a
minute), and it carries the request, so the URL alone decides what runs.

The wire is the Kubernetes WebSocket channel protocol (subprotocol ``v5.channel.k8s.io``, or
``v4.channel.k8s.io`` which lacks the close frame): binary messages whose first byte is the channel.
Server to client: 1 stdout, 2 stderr, 3 the final ``metav1.Status`` JSON (Success, or Failure with
reason ``NonZeroExitCode`` and the exit code in ``details.causes``). Client to server: 0 stdin,
4 terminal size JSON (``{"Width": W, "Height": H}``), and in v5 ``0xFF 0x00`` = stdin closed. After
the status the server closes the WebSocket normally (1000); kubectl treats a missing status or an
abnormal close as a failure.

Port-forward uses the kubelet's WebSocket port-forward protocol: for the i-th requested port, data
on channel 2i and errors on channel 2i+1; the first message on each channel is the channel byte and
the port as a little-endian uint16. One WebSocket is one connection to each port, opened from inside
the pod's network namespace (``netdial``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import WSMsgType, web

from engine.cri.errors import message_of

log = logging.getLogger(__name__)

TOKEN_TTL = 60.0
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
OUTPUT_CHANNELS = {"stdout": STDOUT, "stderr": STDERR}
READ_SIZE = 32 << 10
SUCCESS: dict[str, Any] = {"metadata": {}, "status": "Success"}


class Session(Protocol):
    """What the server needs of an exec or attach session (``engine.containers.stdio``'s shape)."""

    async def read(self) -> tuple[str, bytes] | None: ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, *, height: int, width: int) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class StreamRequest:
    """One prepared stream: what to open and which channels the client asked for."""

    kind: str  # "exec" | "attach" | "portforward"
    target: str  # container id (exec/attach) or sandbox id (portforward)
    cmd: tuple[str, ...] = ()
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    ports: tuple[int, ...] = ()
    expires: float = field(default_factory=lambda: time.monotonic() + TOKEN_TTL)


class Backend(Protocol):
    """The runtime side: opens what a prepared request names."""

    async def open_exec(self, request: StreamRequest) -> Session: ...

    async def open_attach(self, request: StreamRequest) -> Session: ...

    async def dial(self, sandbox_id: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...


def failure(message: str, *, reason: str = "InternalError", exit_code: int | None = None) -> dict[str, Any]:
    """A ``metav1.Status`` of a failed stream (with the exit code when the command itself failed)."""
    status: dict[str, Any] = {"metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if exit_code is not None:
        status["details"] = {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}
    else:
        status["code"] = 500
    return status


def exit_status(code: int, cmd: Sequence[str]) -> dict[str, Any]:
    if code == 0:
        return SUCCESS
    message = f"command terminated with non-zero exit code: error executing command {list(cmd)}, exit code {code}"
    return failure(message, reason="NonZeroExitCode", exit_code=code)


class StreamingServer:
    """aiohttp on loopback; ``prepare`` hands out URLs, ``start``/``stop`` run the listener.

    ``backend`` may be set after construction (the runtime service sets itself up as it)."""

    def __init__(self, backend: Backend | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backend = backend
        self.host = host
        self.port = port
        self._tokens: dict[str, StreamRequest] = {}
        self._runner: web.AppRunner | None = None
        self._sessions: set[asyncio.Task[Any]] = set()

    # --------------------------------------------------------------------------- lifetime

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/exec/{token}", self._exec)
        app.router.add_get("/attach/{token}", self._attach)
        app.router.add_get("/portforward/{token}", self._portforward)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # the bound port when 0 was asked for
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ----------------------------------------------------------------------------- tokens

    def prepare(self, request: StreamRequest) -> str:
        """A fresh single-use URL for ``request``."""
        now = time.monotonic()
        for token in [t for t, r in self._tokens.items() if r.expires < now]:
            del self._tokens[token]
        token = secrets.token_urlsafe(24)
        self._tokens[token] = request
        return f"{self.base_url}/{request.kind}/{token}"

    def _take(self, request: web.Request, kind: str) -> StreamRequest:
        found = self._tokens.pop(request.match_info["token"], None)
        if found is None or found.kind != kind or found.expires < time.monotonic():
            raise web.HTTPNotFound(text="unknown or expired stream token\n")
        return found

    # -------------------------------------------------------------------------- exec/attach

    @property
    def _backend(self) -> Backend:
        if self.backend is None:
            raise web.HTTPServiceUnavailable(text="no runtime behind this streaming server\n")
        return self.backend

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        prepared = self._take(request, "exec")
        return await self._stdio(request, prepared, self._backend.open_exec)

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        prepared = self._take(request, "attach")
        return await self._stdio(request, prepared, self._backend.open_attach)

    async def _upgrade(self, request: web.Request, protocols: Sequence[str]) -> web.WebSocketResponse:
        offered = {p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")}
        if not offered & set(protocols):
            raise web.HTTPBadRequest(text=f"a WebSocket with subprotocol {' or '.join(protocols)} is needed\n")
        ws = web.WebSocketResponse(protocols=protocols, autoping=True, max_msg_size=0)
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="this endpoint speaks WebSocket only\n")
        await ws.prepare(request)
        return ws

    async def _stdio(
        self,
        request: web.Request,
        prepared: StreamRequest,
        opener: Callable[[StreamRequest], Awaitable[Session]],
    ) -> web.StreamResponse:
        ws = await self._upgrade(request, PROTOCOLS)
        try:
            session = await opener(prepared)
        except Exception as exc:
            await _finish(ws, failure(message_of(exc)))
            return ws
        pump_in = asyncio.create_task(_pump_input(ws, session, v5=ws.ws_protocol == PROTOCOLS[0]))
        try:
            status = await _pump_output(ws, session, prepared)
        except (ConnectionError, RuntimeError) as exc:  # the client went away mid-stream
            log.debug("stream %s of %s ended early: %s", prepared.kind, prepared.target[:12], exc)
            status = None
        finally:
            pump_in.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump_in
            await session.close()
        if status is not None:
            await _finish(ws, status)
        return ws

    # --------------------------------------------------------------------------- port-forward

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        prepared = self._take(request, "portforward")
        ports = prepared.ports or tuple(int(p) for p in request.query.getall("port", []) if p.isdigit())
        if not ports:
            raise web.HTTPBadRequest(text="no port to forward\n")
        ws = await self._upgrade(request, PORTFORWARD_PROTOCOLS)
        writers: dict[int, asyncio.StreamWriter] = {}
        tasks: list[asyncio.Task[None]] = []
        try:
            for index, port in enumerate(ports):
                header = struct.pack("<H", port)
                await ws.send_bytes(bytes([2 * index]) + header)
                await ws.send_bytes(bytes([2 * index + 1]) + header)
                try:
                    reader, writer = await self._backend.dial(prepared.target, port)
                except Exception as exc:
                    await ws.send_bytes(bytes([2 * index + 1]) + message_of(exc).encode())
                    continue
                writers[2 * index] = writer
                tasks.append(asyncio.create_task(_pump_port(ws, reader, channel=2 * index)))
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                writer = writers.get(msg.data[0])
                if writer is not None and len(msg.data) > 1:
                    writer.write(msg.data[1:])
                    await writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            log.debug("port-forward to %s ended: %s", prepared.target[:12], exc)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in writers.values():
                writer.close()
            await ws.close()
        return ws


async def _pump_input(ws: web.WebSocketResponse, session: Session, *, v5: bool) -> None:
    """Client frames to the session: stdin data, resizes and (v5) the close of stdin."""
    async for msg in ws:
        if msg.type != WSMsgType.BINARY or not msg.data:
            continue
        channel, payload = msg.data[0], msg.data[1:]
        if channel == STDIN and payload:
            await session.write(payload)
        elif channel == RESIZE:
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                size = orjson.loads(payload)
                if size.get("Width") and size.get("Height"):
                    await session.resize(height=int(size["Height"]), width=int(size["Width"]))
        elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]):
            await session.close_stdin()


async def _pump_output(ws: web.WebSocketResponse, session: Session, prepared: StreamRequest) -> dict[str, Any]:
    """Session output to the client until it ends; then the final status."""
    wanted = {"stdout": prepared.stdout or prepared.tty, "stderr": prepared.stderr and not prepared.tty}
    while (chunk := await session.read()) is not None:
        name, data = chunk
        if wanted.get(name):
            await ws.send_bytes(bytes([OUTPUT_CHANNELS[name]]) + data)
    wait = getattr(session, "wait", None)
    if wait is None:  # attach: the container's process ended
        return SUCCESS
    code = await wait()
    error = getattr(session, "error", "")
    if error:
        return failure(error, reason="InternalError")
    return exit_status(code, prepared.cmd)


async def _pump_port(ws: web.WebSocketResponse, reader: asyncio.StreamReader, *, channel: int) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        while data := await reader.read(READ_SIZE):
            await ws.send_bytes(bytes([channel]) + data)


async def _finish(ws: web.WebSocketResponse, status: dict[str, Any]) -> None:
    """The status frame, then a normal close: what kubectl needs to report the right exit."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_bytes(bytes([ERROR]) + orjson.dumps(status))
        await ws.close(code=1000)
