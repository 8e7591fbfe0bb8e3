"""Hijacked connections: how attach and exec start turn an HTTP request into a raw byte pipe.

The docker CLI and SDK send ``Connection: Upgrade`` + ``Upgrade: tcp``; dockerd answers ``101
UPGRADED`` (or, to a client that did not ask to upgrade, ``200 OK``) and from then on the socket
carries the process's output (frames from ``frames`` unless it has a TTY) one way and its stdin the
other way, until the server closes it. Two aiohttp defaults stand in the way and are changed for
that one connection only:

- the body must be written raw, neither chunked nor length-delimited: ``HijackResponse``;
- what the client sends after the headers must reach us rather than the HTTP parser (aiohttp's C
  parser only treats ``Upgrade: websocket`` as a protocol switch), and a client that half-closes
  its side when its stdin ends (the docker CLI does) must not make the transport close ours: a
  small protocol (``_HijackProtocol``) replaces aiohttp's on the transport, feeds a
  ``StdinReader`` and answers ``eof_received`` so the write side stays open, and hands connection
  loss and write flow control back to aiohttp.

The connection is always closed once the handler returns, so nothing leaks into a next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from typing import Any, Protocol

from aiohttp import web

from engine.daemon import frames
from engine.daemon.context import API_VERSION

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
STDIN_HIGH_WATER = 1 << 20  # queued stdin bytes above which we stop reading the socket
HANGUP_POLL = 0.5  # seconds between checks that a client at EOF is still connected
MULTIPLEXED_SINCE = (1, 42)  # older clients are told raw-stream even when frames are sent


def api_version(request: web.Request) -> tuple[int, int]:
    """The version the request was made with (its ``/vX.Y`` prefix, else the newest)."""
    text = request.match_info.get("api_version", "v" + API_VERSION)[1:]
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def stream_content_type(request: web.Request, *, tty: bool) -> str:
    """The Content-Type of a logs/attach/exec reply, as dockerd picks it."""
    if not tty and api_version(request) >= MULTIPLEXED_SINCE:
        return MULTIPLEXED_STREAM
    return RAW_STREAM


def wants_upgrade(request: web.Request) -> bool:
    tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return "upgrade" in tokens and bool(request.headers.get("Upgrade"))


def client_gone(request: web.Request) -> bool:
    """True once the client's connection is closed (long waits poll this to stop early)."""
    transport = request.transport
    return transport is None or transport.is_closing()


class HijackResponse(web.StreamResponse):
    """A response whose body is raw bytes until the connection closes."""

    _length_check = False  # aiohttp's switch for "neither chunked nor Content-Length" (as websockets)


class StdinReader:
    """What the client sends after the upgrade, as an async byte source ending in b"" at EOF."""

    def __init__(self, transport: asyncio.BaseTransport | None, *, accept: bool = True) -> None:
        self._transport = transport
        self._accept = accept
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._queued = 0
        self._paused = False
        self.at_eof = not accept
        self.lost = asyncio.Event()  # the connection is gone (not merely half-closed)
        if not accept:
            self._chunks.put_nowait(b"")

    def feed_data(self, data: bytes) -> None:
        if not data or self.at_eof:
            return
        self._chunks.put_nowait(bytes(data))
        self._queued += len(data)
        if self._queued > STDIN_HIGH_WATER and isinstance(self._transport, asyncio.ReadTransport):
            if not self._paused:
                self._paused = True
                self._transport.pause_reading()

    def feed_eof(self) -> None:
        if not self.at_eof:
            self.at_eof = True
            self._chunks.put_nowait(b"")

    async def read(self) -> bytes:
        """The next chunk; b"" once the client has closed its side (and forever after)."""
        chunk = await self._chunks.get()
        if not chunk:
            self._chunks.put_nowait(b"")  # later reads see EOF too
            return b""
        self._queued -= len(chunk)
        drained = self._queued <= STDIN_HIGH_WATER // 2
        if self._paused and drained and isinstance(self._transport, asyncio.ReadTransport):
            self._paused = False
            with contextlib.suppress(RuntimeError):
                self._transport.resume_reading()
        return chunk


class _HijackProtocol(asyncio.Protocol):
    """Stands in for aiohttp's protocol on a hijacked transport: input goes to ``reader``, a
    half-close ends stdin but keeps our side open, and the rest is aiohttp's business."""

    def __init__(self, inner: asyncio.Protocol, reader: StdinReader) -> None:
        self._inner = inner
        self._reader = reader

    def data_received(self, data: bytes) -> None:
        self._reader.feed_data(data)

    def eof_received(self) -> bool:
        self._reader.feed_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._reader.feed_eof()
        self._reader.lost.set()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class Hijacked:
    """One hijacked connection: ``send`` output, ``stdin.read()`` input, then ``close``."""

    def __init__(self, request: web.Request, response: HijackResponse, *, tty: bool, stdin: StdinReader) -> None:
        self.request = request
        self.response = response
        self.tty = tty
        self.stdin = stdin

    @property
    def closed(self) -> bool:
        return self.stdin.lost.is_set() or client_gone(self.request)

    async def send(self, stream: int, data: bytes) -> None:
        """Write ``data`` of ``stream`` (framed unless TTY); raises ConnectionResetError if the
        client went away."""
        if not data:
            return
        await self.response.write(data if self.tty else frames.encode(stream, data))

    async def close(self) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.response.write_eof()


def _install_stdin(request: web.Request, *, accept: bool) -> StdinReader:
    """Route the connection's further input to a new reader (this connection only: it is closed
    when the handler returns); without ``accept`` input is dropped but connection loss is seen."""
    transport = request.transport
    reader = StdinReader(transport, accept=accept)
    if transport is None:
        reader.lost.set()
        return reader
    inner: Any = request.protocol
    transport.set_protocol(_HijackProtocol(inner, reader))
    return reader


async def hijack(request: web.Request, *, tty: bool) -> Hijacked:
    """Answer ``request`` with 101 (or 200) and take over its connection."""
    if wants_upgrade(request):
        response = HijackResponse(
            status=101,
            reason="UPGRADED",
            headers={
                "Content-Type": stream_content_type(request, tty=tty),
                "Connection": "Upgrade",
                "Upgrade": "tcp",
            },
        )
        stdin = _install_stdin(request, accept=True)
    else:  # without an upgrade the rest of the connection is HTTP, not stdin
        response = HijackResponse(status=200, headers={"Content-Type": RAW_STREAM})
        stdin = _install_stdin(request, accept=False)
    response.force_close()
    await response.prepare(request)
    return Hijacked(request, response, tty=tty, stdin=stdin)


class StdioSession(Protocol):
    """What ``pump`` needs of an attach or exec session (``engine.containers.stdio``'s shape)."""

    async def read(self) -> tuple[str, bytes] | None: ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...


_STREAM_NUMBERS = {"stdout": frames.STDOUT, "stderr": frames.STDERR}


async def _feed_stdin(session: StdioSession, conn: Hijacked) -> None:
    while chunk := await conn.stdin.read():
        await session.write(chunk)
    await session.close_stdin()


def peer_closed(transport: asyncio.BaseTransport | None) -> bool:
    """True if the client closed its socket entirely (POLLHUP), not just its sending side: after
    a half-close the docker CLI still reads, so only a hang-up means it left."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return True
    poller = select.poll()
    try:
        poller.register(sock.fileno(), select.POLLHUP | select.POLLERR)
    except (OSError, ValueError):
        return True
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


async def _watch_hangup(conn: Hijacked) -> None:
    """Set ``conn.stdin.lost`` once the client hangs up (checked while its input is at EOF)."""
    while not conn.stdin.lost.is_set():
        await asyncio.sleep(HANGUP_POLL)
        if conn.stdin.at_eof and peer_closed(conn.request.transport):
            conn.stdin.lost.set()


async def pump(session: StdioSession, conn: Hijacked, *, forward_stdin: bool) -> bool:
    """Copy the session's output to the connection (and the client's input to the session) until
    the output ends; returns False if the client went away first."""
    feeder = asyncio.ensure_future(_feed_stdin(session, conn)) if forward_stdin else None
    watcher = asyncio.ensure_future(_watch_hangup(conn))
    lost = asyncio.ensure_future(conn.stdin.lost.wait())
    try:
        while True:
            reader = asyncio.ensure_future(session.read())
            await asyncio.wait({reader, lost}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                reader.cancel()
                return False
            chunk = reader.result()
            if chunk is None:
                return True
            try:
                await conn.send(_STREAM_NUMBERS.get(chunk[0], frames.STDOUT), chunk[1])
            except ConnectionResetError:
                return False
    finally:
        lost.cancel()
        watcher.cancel()
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionError):
                await feeder
