"""``/portforward/{ns}/{pod}``: kubectl's SPDY-in-WebSocket port-forward, bridged to the engine.

kubectl 1.32 opens a WebSocket with subprotocol ``SPDY/3.1+portforward.k8s.io`` and speaks SPDY/3
inside it (``spdy``). For each local connection it opens an error stream and a data stream with the
same ``requestid`` and a ``port`` header; the kubelet answers every SYN_STREAM with a SYN_REPLY. Once
a pair is complete, one CRI PortForward call for the pod's sandbox gives an engine streaming URL, and
one engine WebSocket (channel protocol: data on channel 0, errors on 1, each first sending the port)
carries that connection. Data flows both ways; when the pod side ends, the data stream gets a FIN;
a failure is written on the error stream. RST_STREAM from kubectl ends that connection; GOAWAY or
the WebSocket closing ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType, web

from kubelet.cri import CriClient, pb
from kubelet.server import context, pods, spdy

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
ENGINE_PROTOCOLS = ("portforward.k8s.io", "v4.channel.k8s.io")
DATA_CHANNEL, ERROR_CHANNEL = 0, 1
CHUNK = 32 << 10
INBOUND_FRAMES = 64  # data frames from kubectl queued per connection before the session waits


async def handle(request: web.Request) -> web.StreamResponse:
    offered = {p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")}
    if request.headers.get("Upgrade", "").lower() != "websocket" or PROTOCOL not in offered:
        raise web.HTTPBadRequest(
            text=f"port-forward needs a WebSocket with subprotocol {PROTOCOL} (plain SPDY is not supported)\n")
    ctx = context.of(request)
    info = request.match_info
    sandbox = await pods.ready_sandbox(ctx.cri, namespace=info["namespace"], pod=info["pod"])
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=0, autoping=True)
    await ws.prepare(request)
    session = Session(ws=ws, cri=ctx.cri, sandbox_id=sandbox.id)
    try:
        await session.run()
    finally:
        await session.close()
    return ws


@dataclass
class _Pair:
    """The two SPDY streams of one forwarded connection and the task that serves them."""

    key: str
    port: int
    error_id: int = 0
    data_id: int = 0
    task: asyncio.Task[None] | None = None
    inbound: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(INBOUND_FRAMES))
    reset: asyncio.Event = field(default_factory=asyncio.Event)  # kubectl reset the connection

    async def put(self, data: bytes) -> None:
        """Queue kubectl's bytes for the pod; waits while the queue is full (backpressure on the
        whole session, as one TCP connection carries it) unless the connection ends meanwhile."""
        if self.task is None or self.task.done():
            return
        put = asyncio.ensure_future(self.inbound.put(data))
        await asyncio.wait([put, self.task], return_when=asyncio.FIRST_COMPLETED)
        put.cancel()


@dataclass
class Session:
    ws: web.WebSocketResponse
    cri: CriClient
    sandbox_id: str
    framer: spdy.Framer = field(default_factory=spdy.Framer)
    pairs: dict[str, _Pair] = field(default_factory=dict)
    by_stream: dict[int, _Pair] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _http: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.BINARY:
                continue
            try:
                frames = self.framer.feed(msg.data)
            except spdy.SpdyError as exc:
                log.info("port-forward to %s: %s", self.sandbox_id[:12], exc)
                return
            for frame in frames:
                if not await self._on_frame(frame):
                    return

    async def _on_frame(self, frame: spdy.Frame) -> bool:
        """Handle one frame from kubectl; False ends the session."""
        if isinstance(frame, spdy.SynStream):
            await self._on_syn(frame)
        elif isinstance(frame, spdy.DataFrame):
            pair = self.by_stream.get(frame.stream_id)
            if pair is not None and frame.stream_id == pair.data_id and frame.data:
                await pair.put(frame.data)
        elif isinstance(frame, spdy.RstStream):
            pair = self.by_stream.get(frame.stream_id)
            if pair is not None:
                self._end(pair)
        elif isinstance(frame, spdy.Ping):
            await self.send(spdy.ping(frame.ping_id))
        elif isinstance(frame, spdy.GoAway):
            return False
        return True

    async def _on_syn(self, frame: spdy.SynStream) -> None:
        headers = frame.headers
        async with self._send_lock:  # replies share one compression stream: keep them in order
            await self.ws.send_bytes(self.framer.syn_reply(frame.stream_id))
        kind, port_text = headers.get("streamtype", ""), headers.get("port", "")
        if kind not in ("data", "error") or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            await self.send(spdy.rst_stream(frame.stream_id, spdy.PROTOCOL_ERROR))
            return
        key = headers.get("requestid") or f"port-{port_text}"
        pair = self.pairs.setdefault(key, _Pair(key=key, port=int(port_text)))
        setattr(pair, "data_id" if kind == "data" else "error_id", frame.stream_id)
        self.by_stream[frame.stream_id] = pair
        if pair.data_id and pair.error_id and pair.task is None:
            pair.task = asyncio.create_task(self._serve(pair))
            self.tasks.add(pair.task)
            pair.task.add_done_callback(self.tasks.discard)

    async def send(self, frame: bytes) -> None:
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(frame)

    def _end(self, pair: _Pair) -> None:
        pair.reset.set()
        self.pairs.pop(pair.key, None)
        for stream_id in (pair.data_id, pair.error_id):
            self.by_stream.pop(stream_id, None)

    # ------------------------------------------------------------------------ one connection

    async def _serve(self, pair: _Pair) -> None:
        error = ""
        try:
            error = await self._bridge(pair)
        except aiohttp.ClientError as exc:
            error = f"error forwarding port {pair.port} to pod {self.sandbox_id}: {exc}"
        except Exception as exc:  # a CRI failure: reported to kubectl on the error stream
            details = getattr(exc, "details", None)
            error = details() if callable(details) else str(exc)
        if error:
            await self.send(spdy.data(pair.error_id, error.encode()))
        await self.send(spdy.data(pair.data_id, b"", fin=True))
        await self.send(spdy.data(pair.error_id, b"", fin=True))
        self._end(pair)

    async def _bridge(self, pair: _Pair) -> str:
        """Carry one connection through an engine WebSocket; the error text, if any."""
        answer = await self.cri.runtime.PortForward(
            pb.PortForwardRequest(pod_sandbox_id=self.sandbox_id, port=[pair.port]), timeout=pods.CALL_TIMEOUT)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.ws_connect(answer.url, protocols=ENGINE_PROTOCOLS, max_msg_size=0) as engine:
            upstream = asyncio.create_task(_to_engine(pair, engine))
            try:
                return await self._from_engine(pair, engine)
            finally:
                upstream.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await upstream

    async def _from_engine(self, pair: _Pair, engine: aiohttp.ClientWebSocketResponse) -> str:
        seen: set[int] = set()  # each channel's first message is its port number
        errors: list[bytes] = []
        closed = asyncio.ensure_future(pair.reset.wait())
        try:
            while True:
                receive = asyncio.ensure_future(engine.receive())
                done, _ = await asyncio.wait([receive, closed], return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:  # kubectl reset the streams
                    receive.cancel()
                    return ""
                msg = receive.result()
                if msg.type != WSMsgType.BINARY:
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
                    continue
                if not msg.data:
                    continue
                channel, payload = msg.data[0], msg.data[1:]
                if channel not in seen:
                    seen.add(channel)
                    continue
                if channel == DATA_CHANNEL:
                    for start in range(0, len(payload), CHUNK):
                        await self.send(spdy.data(pair.data_id, payload[start:start + CHUNK]))
                elif channel == ERROR_CHANNEL:
                    errors.append(payload)
                    break  # the engine does not close after a failed dial
        finally:
            closed.cancel()
        return b"".join(errors).decode("utf-8", "replace")

    async def close(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()


async def _to_engine(pair: _Pair, engine: aiohttp.ClientWebSocketResponse) -> None:
    """kubectl's bytes to the pod, until kubectl resets the connection."""
    while True:
        chunk = await pair.inbound.get()
        await engine.send_bytes(bytes([DATA_CHANNEL]) + chunk)
