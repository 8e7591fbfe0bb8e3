"""A reverse proxy for one HTTP request, including Upgrade (WebSocket, SPDY) ones.

The API server proxies pods/log|exec|attach|portforward to a kubelet, and the kubelet proxies exec
and attach to the engine's streaming URL. Both need the same thing: forward the method, path, query,
end-to-end headers and body; stream the answer back as it comes (``logs -f``); and for an Upgrade
request complete the handshake with the backend, relay its ``101`` to the client and then pipe raw
bytes both ways until either side closes, so the streaming protocol (``v5.channel.k8s.io``, SPDY in
WebSocket) passes through untouched. Everything is asyncio streams; nothing blocks the loop.

Failing to reach the backend raises :class:`DialError` (message like Go's ``dial tcp ...``) before
anything was sent to the client, so callers can answer with their own error format.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl as ssl_mod
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

#: headers that describe one hop, never forwarded as they are (RFC 9110 §7.6.1) + ones we recompute
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length", "authorization",
})
#: answer headers aiohttp writes itself
OWN_RESPONSE_HEADERS = frozenset({"date", "server", "content-length", "transfer-encoding", "connection",
                                  "keep-alive"})
READ_SIZE = 64 << 10
HIGH_WATER = 1 << 20  # client bytes buffered for a slow backend before reading pauses
MAX_HEAD = 64 << 10
HALF_CLOSE_GRACE = 5.0  # seconds the backend may keep talking after the client stopped sending
CLIENT_POLL = 0.5  # seconds between checks that the client is still there while the backend is quiet


#: turns a backend's error answer (status >= 400, whole body) into the caller's own response (or raises)
Refuse = Callable[[int, bytes], web.StreamResponse]


class DialError(ConnectionError):
    """The backend could not be reached (nothing was sent to the client yet)."""


class BackendError(ConnectionError):
    """The backend answered something that is not HTTP."""


def is_upgrade(request: web.Request) -> bool:
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return "upgrade" in connection and bool(request.headers.get("Upgrade"))


def forwarded_headers(headers: Mapping[str, str], extra: Mapping[str, str] | None = None) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)
    for key, value in (extra or {}).items():
        out[key] = value
    return out


async def forward(request: web.Request, *, url: str, ssl: ssl_mod.SSLContext | bool = True,
                  headers: Mapping[str, str] | None = None, connect_timeout: float = 30.0,
                  refuse: Refuse | None = None) -> web.StreamResponse:
    """Proxy ``request`` to ``url`` (scheme, host, port, path and query of the backend request).

    ``refuse``, when given, answers instead of relaying a backend error (e.g. as a k8s Status)."""
    go = _forward_upgrade if is_upgrade(request) else _forward_plain
    return await go(request, url=url, ssl=ssl, headers=headers, connect_timeout=connect_timeout, refuse=refuse)


# ----------------------------------------------------------------------------------- plain HTTP

async def _forward_plain(request: web.Request, *, url: str, ssl: ssl_mod.SSLContext | bool,
                         headers: Mapping[str, str] | None, connect_timeout: float,
                         refuse: Refuse | None) -> web.StreamResponse:
    body = await request.read() if request.body_exists else None
    client_timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_connect=connect_timeout)
    async with aiohttp.ClientSession(timeout=client_timeout, auto_decompress=False) as session:
        try:
            upstream = await session.request(request.method, url, headers=forwarded_headers(request.headers, headers),
                                             data=body, ssl=ssl, allow_redirects=False)
        except (aiohttp.ClientConnectionError, OSError, TimeoutError) as exc:
            raise DialError(dial_message(url, exc)) from exc
        async with upstream:
            if refuse is not None and upstream.status >= 400:
                return refuse(upstream.status, await upstream.read())
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in OWN_RESPONSE_HEADERS:
                    response.headers.add(key, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            await _relay_body(request, upstream, response)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write_eof()
            return response


async def _relay_body(request: web.Request, upstream: aiohttp.ClientResponse, response: web.StreamResponse) -> None:
    """Copy the body as it arrives; stop when either end goes away (a ``logs -f`` client leaving)."""
    with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientPayloadError):
        while True:
            read = asyncio.ensure_future(upstream.content.readany())
            while not read.done():
                await asyncio.wait([read], timeout=CLIENT_POLL)
                if not read.done() and _client_gone(request):
                    read.cancel()
                    return
            data = read.result()
            if not data:
                return
            await response.write(data)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


# ---------------------------------------------------------------------------------- Upgrade

async def _forward_upgrade(request: web.Request, *, url: str, ssl: ssl_mod.SSLContext | bool,
                           headers: Mapping[str, str] | None, connect_timeout: float,
                           refuse: Refuse | None) -> web.StreamResponse:
    target = urlsplit(url)
    secure = target.scheme == "https"
    port = target.port or (443 if secure else 80)
    host = target.hostname or ""
    tls: ssl_mod.SSLContext | None = None
    if secure:
        tls = ssl if isinstance(ssl, ssl_mod.SSLContext) else _default_tls(verify=bool(ssl))
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None,
                                    limit=MAX_HEAD), connect_timeout)
    except (OSError, TimeoutError, ssl_mod.SSLError) as exc:
        raise DialError(dial_message(url, exc)) from exc
    try:
        try:
            body = await request.read() if request.body_exists else b""
            writer.write(_request_head(request, target=target, body=body, extra=headers) + body)
            await writer.drain()
            status, reason, head = await asyncio.wait_for(_read_head(reader), connect_timeout)
            if status != 101:
                answer = await _relay_refusal(request, reader, status=status, reason=reason, head=head)
                if refuse is not None and status >= 400:
                    return refuse(status, answer.body if isinstance(answer.body, bytes) else b"")
                return answer
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise BackendError(f"error proxying to {host}:{port}: {exc or type(exc).__name__}") from exc
        response = web.StreamResponse(status=101, reason=reason or "Switching Protocols")
        for key, value in head.items():
            if key.lower() not in OWN_RESPONSE_HEADERS - {"connection"}:
                response.headers.add(key, value)
        response.headers.setdefault("Connection", "Upgrade")
        await response.prepare(request)
        await _pipe(request, reader, writer)  # from here on, errors just end the pipe
        return response
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _default_tls(*, verify: bool) -> ssl_mod.SSLContext:
    ctx = ssl_mod.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl_mod.CERT_NONE
    return ctx


def _request_head(request: web.Request, *, target: Any, body: bytes, extra: Mapping[str, str] | None) -> bytes:
    path = target.path or "/"
    if target.query:
        path += "?" + target.query
    lines = [f"{request.method} {path} HTTP/1.1", f"Host: {target.netloc}", "Connection: Upgrade",
             f"Upgrade: {request.headers['Upgrade']}"]
    lines += [f"{k}: {v}" for k, v in forwarded_headers(request.headers, extra).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, CIMultiDict[str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = raw.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise BackendError(f"not an HTTP answer: {status_line[:80]!r}")
    head: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        if ":" in line:
            key, value = line.split(":", 1)
            head.add(key.strip(), value.strip())
    return int(parts[1]), parts[2] if len(parts) > 2 else "", head


async def _relay_refusal(request: web.Request, reader: asyncio.StreamReader, *, status: int, reason: str,
                         head: CIMultiDict[str]) -> web.StreamResponse:
    """The backend declined the upgrade: pass its answer (status, type, body) on as it is."""
    if "chunked" in head.get("Transfer-Encoding", "").lower():
        body = await _read_chunked(reader)
    elif head.get("Content-Length", "").isdigit():
        body = await reader.readexactly(int(head["Content-Length"]))
    else:
        body = await reader.read()
    response = web.Response(status=status, reason=reason or None, body=body)
    for key, value in head.items():
        if key.lower() not in OWN_RESPONSE_HEADERS:
            response.headers.add(key, value)
    return response


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


class _RawFeed:
    """The client's bytes once the connection is upgraded, taken from aiohttp's protocol.

    aiohttp pushes data in as it arrives; reading from the client pauses above ``HIGH_WATER``
    buffered bytes and resumes once the backend has taken them, so a slow backend bounds memory.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.eof = False
        self.paused = False
        self.ready = asyncio.Event()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.chunks.append(bytes(data))
        self.size += len(data)
        self.ready.set()
        if self.size > HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self.eof = True
        self.ready.set()

    async def read(self) -> bytes:
        """The next chunk, or b"" once the client has closed."""
        while not self.chunks:
            if self.eof:
                return b""
            self.ready.clear()
            await self.ready.wait()
        data = self.chunks.popleft()
        self.size -= len(data)
        if self.paused and self.size <= HIGH_WATER // 2:
            self.paused = False
            self.transport.resume_reading()
        return data


async def _pipe(request: web.Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Raw bytes both ways until either side closes; then both are closed."""
    transport = request.transport
    assert transport is not None
    protocol = request.protocol
    protocol.keep_alive(False)
    from_client = _RawFeed(transport)  # type: ignore[arg-type]
    protocol.set_parser(from_client)  # type: ignore[arg-type]

    async def upstream() -> None:
        while data := await from_client.read():
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def downstream() -> None:
        while data := await reader.read(READ_SIZE):
            if transport.is_closing():
                return
            transport.write(data)
            await protocol._drain_helper()  # aiohttp's own flow control for this transport

    tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[0] in done and not tasks[1].done():  # client closed its side: let the backend finish
            await asyncio.wait([tasks[1]], timeout=HALF_CLOSE_GRACE)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        transport.close()


def dial_message(url: str, exc: BaseException) -> str:
    """Go's wording, which kubectl users know: ``dial tcp 10.0.0.5:10250: connect: connection refused``."""
    target = urlsplit(url)
    where = f"{target.hostname}:{target.port or (443 if target.scheme == 'https' else 80)}"
    cause = exc.__cause__ or exc
    if isinstance(cause, ConnectionRefusedError) or "refused" in str(exc).lower():
        detail = "connect: connection refused"
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        detail = "i/o timeout"
    else:
        detail = str(getattr(cause, "strerror", None) or cause or type(cause).__name__)
    return f"dial tcp {where}: {detail}"
