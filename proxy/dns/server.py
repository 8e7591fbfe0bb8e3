"""The DNS server proper: asyncio UDP and TCP listeners on one address and port.

Each query is decoded, answered from the ``Zone`` if it is a cluster name (or a known reverse
name), else relayed by the ``Forwarder``. Malformed queries get FORMERR, other opcodes NOTIMP,
EDNS versions other than 0 BADVERS; answers are never answered. A UDP answer larger than the
client takes (512 bytes, or its EDNS0 size) goes out truncated with TC set, and the client retries
over TCP, where the full answer fits.
Zone answers are cached by the query bytes (less the id) until the zone changes, since the hot path
of a pod's lookups is the same few names asked again and again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from proxy.dns import wire
from proxy.dns.forward import Forwarder
from proxy.dns.zone import Zone

log = logging.getLogger(__name__)

#: a TCP connection idle this long is closed (RFC 7766 suggests seconds, not minutes)
TCP_IDLE_TIMEOUT = 10.0
CACHE_ENTRIES = 20000
#: forwarded UDP queries in flight at once; beyond this they get SERVFAIL at once
MAX_FORWARDS = 1024


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply, query = self.server.answer_local(data, tcp=False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
        elif query is not None:
            self.server.spawn(self._forward(data, query, addr))

    async def _forward(self, data: bytes, query: wire.Message, addr: tuple[str, int]) -> None:
        reply = await self.server.forward(data, query, tcp=False)
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class DnsServer:
    """Serves ``zone`` (and forwards the rest through ``forwarder``) on ``address``:``port``."""

    def __init__(self, zone: Zone, forwarder: Forwarder | None, *, address: str = "127.0.0.1",
                 port: int = 53) -> None:
        self.zone, self.forwarder = zone, forwarder
        self.address, self.port = address, port
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._cache: dict[tuple[bytes, bool], bytes] = {}
        self._cache_generation = -1

    async def start(self) -> None:
        """Bind both listeners; port 0 picks a free port (the same one for TCP and UDP)."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, self.address, self.port)
        self.port = self._tcp.sockets[0].getsockname()[1]
        try:
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self),
                                                               local_addr=(self.address, self.port))
        except OSError:
            self._tcp.close()
            raise

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- answering --------------------------------------------------------------------------------

    def answer_local(self, data: bytes, *, tcp: bool) -> tuple[bytes | None, wire.Message | None]:
        """(answer, None) when this server answers on its own; (None, query) when the query is to
        be forwarded; (None, None) when it is dropped (not even a header, or itself an answer)."""
        if self._cache_generation != self.zone.generation:
            self._cache.clear()
            self._cache_generation = self.zone.generation
        key = (data[2:], tcp)
        cached = self._cache.get(key)
        if cached is not None:
            return data[:2] + cached, None
        try:
            query = wire.decode(data)
        except wire.FormatError:
            return wire.error_reply(data, wire.FORMERR), None
        if query.flags & wire.QR:
            return None, None
        if query.opcode != wire.OPCODE_QUERY:
            return self._encode(wire.reply_to(query, rcode=wire.NOTIMP), query, tcp=tcp), None
        if len(query.questions) != 1:
            return self._encode(wire.reply_to(query, rcode=wire.FORMERR), query, tcp=tcp), None
        opt = query.opt
        if opt is not None and wire.edns_version(opt) != 0:
            return self._encode(wire.reply_to(query, rcode=wire.BADVERS), query, tcp=tcp), None
        q = query.questions[0]
        found = self.zone.lookup(q.name, q.qtype) if q.qclass in (wire.CLASS_IN, wire.ANY) else None
        if found is None:
            if self.forwarder is None or self.zone.is_cluster_name(q.name):
                return self._encode(wire.reply_to(query, rcode=wire.REFUSED), query, tcp=tcp), None
            if len(self._tasks) >= MAX_FORWARDS:  # a flood must not grow without bound: fail fast
                return self._encode(wire.reply_to(query, rcode=wire.SERVFAIL), query, tcp=tcp), None
            return None, query
        reply = wire.reply_to(query, rcode=found.rcode, authoritative=True)
        owner = q.name.lower().rstrip(".")
        reply.answers = [wire.Record(q.name, r.rtype, r.ttl, r.data) if r.name == owner else r
                         for r in found.answers]
        reply.authority = found.authority
        reply.additional = found.additional + reply.additional
        out = self._encode(reply, query, tcp=tcp)
        if found.rcode != wire.SERVFAIL:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = out[2:]
        return out, None

    async def forward(self, data: bytes, query: wire.Message, *, tcp: bool) -> bytes | None:
        assert self.forwarder is not None
        reply = await self.forwarder.forward(data)
        limit = 65535 if tcp else query.udp_limit()
        if len(reply) <= limit:
            return reply
        try:
            return wire.encode(wire.decode(reply), limit=limit)
        except wire.FormatError:
            return self._encode(wire.reply_to(query, rcode=wire.SERVFAIL), query, tcp=tcp)

    @staticmethod
    def _encode(reply: wire.Message, query: wire.Message, *, tcp: bool) -> bytes:
        limit = 65535 if tcp else query.udp_limit()
        try:
            return wire.encode(reply, limit=limit)
        except wire.FormatError as exc:  # a record the wire cannot carry: say so, do not crash
            log.warning("cannot encode the answer to %s: %s", query.questions[:1], exc)
            return wire.encode(wire.reply_to(query, rcode=wire.SERVFAIL), limit=limit)

    # -- TCP --------------------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                reply, query = self.answer_local(data, tcp=True)
                if query is not None:
                    reply = await self.forward(data, query, tcp=True)
                if reply:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("DNS over TCP: unexpected failure")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
