"""Forwarding of non-cluster names to the host's resolvers (``nameserver`` lines of resolv.conf).

Pods resolve the outside world through the cluster DNS, which relays each such query as bytes:
over UDP under a fresh random id (so a spoofed answer must guess it), again over TCP when the
upstream answer is truncated, within one overall deadline (2 s); the next upstream is tried when
one refuses. When none answers, the client gets SERVFAIL rather than silence, so it fails fast.
Upstreams equal to our own listening address are dropped: forwarding to ourselves would loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

from proxy.dns import wire

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0
DNS_PORT = 53
Upstream = tuple[str, int]


class UpstreamError(Exception):
    """One upstream did not give a usable answer."""


def read_resolv_conf(path: str | Path = "/etc/resolv.conf") -> list[Upstream]:
    """The ``nameserver`` addresses of a resolv.conf (blocking: call it in a thread)."""
    out: list[Upstream] = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            addr = parts[1].split("%")[0]  # drop an IPv6 zone index
            with contextlib.suppress(ValueError):
                out.append((str(ipaddress.ip_address(addr)), DNS_PORT))
    return out


def parse_upstream(text: str) -> Upstream:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT``; ValueError if it is not an IP address."""
    host, port_text = text, str(DNS_PORT)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") or port_text
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in upstream {text!r}")
    try:
        return str(ipaddress.ip_address(host)), int(port_text)
    except ValueError:
        raise ValueError(f"upstream {text!r} is not an IP address (with an optional :port)") from None


def _question_key(buf: bytes) -> bytes:
    """The first question as lower-case bytes, to match an answer to its query."""
    msg_end = len(buf)
    pos = wire.HEADER.size
    while pos < msg_end and buf[pos] != 0:
        if buf[pos] & 0xC0:
            return b""
        pos += buf[pos] + 1
    return buf[wire.HEADER.size:pos + 5].lower()


class _OneAnswer(asyncio.DatagramProtocol):
    def __init__(self, *, ident: int, question: bytes) -> None:
        self.ident, self.question = ident, question
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) >= wire.HEADER.size and wire.peek_id(data) == self.ident \
                and _question_key(data) == self.question and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(UpstreamError(f"refused: {exc}"))


class Forwarder:
    """Relays a query to the first upstream that answers, within ``timeout`` seconds."""

    def __init__(self, upstreams: Sequence[Upstream], *, timeout: float = DEFAULT_TIMEOUT,
                 exclude: Iterable[Upstream] = ()) -> None:
        own = {(str(ipaddress.ip_address(h)), p) for h, p in exclude}
        self.upstreams = [u for u in upstreams if u not in own]
        dropped = [u for u in upstreams if u in own]
        if dropped:
            log.warning("not forwarding to %s: that is this DNS server", ", ".join(f"{h}:{p}" for h, p in dropped))
        self.timeout = timeout

    async def forward(self, query: bytes) -> bytes:
        """The upstream answer under the query's id; a SERVFAIL answer if no upstream gives one."""
        client_id = wire.peek_id(query)
        question = _question_key(query)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        for upstream in self.upstreams:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    answer = await self._ask(upstream, query, question=question)
                return wire.with_id(answer, client_id)
            except (UpstreamError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                log.debug("upstream %s:%d: %s", *upstream, exc or type(exc).__name__)
        return wire.error_reply(query, wire.SERVFAIL) or b""

    async def _ask(self, upstream: Upstream, query: bytes, *, question: bytes) -> bytes:
        ident = secrets.randbelow(0x10000)
        answer = await self._udp(upstream, wire.with_id(query, ident), ident=ident, question=question)
        if struct.unpack_from("!H", answer, 2)[0] & wire.TC:
            answer = await self._tcp(upstream, wire.with_id(query, ident))
            if wire.peek_id(answer) != ident:
                raise UpstreamError("TCP answer with another id")
        return answer

    async def _udp(self, upstream: Upstream, query: bytes, *, ident: int, question: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _OneAnswer(ident=ident, question=question), remote_addr=upstream)
        try:
            transport.sendto(query)
            return await proto.answer
        finally:
            transport.close()

    async def _tcp(self, upstream: Upstream, query: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*upstream)
        try:
            writer.write(len(query).to_bytes(2, "big") + query)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
