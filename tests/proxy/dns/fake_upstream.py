"""A fake upstream resolver on a loopback port: fixed answers, truncation on demand, a query log."""

from __future__ import annotations

import asyncio
import contextlib

from proxy.dns import wire

#: name -> address answered by the fake; "big.example.test" has enough A records to need TCP
RECORDS = {"www.example.test": ["192.0.2.10"],
           "big.example.test": [f"198.51.100.{i}" for i in range(1, 101)]}


class FakeUpstream:
    """Answers A questions from ``RECORDS`` (NXDOMAIN otherwise) over UDP and TCP."""

    def __init__(self) -> None:
        self.port = 0
        self.seen: list[tuple[str, str]] = []  # (transport, name)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def answer(self, data: bytes, *, limit: int) -> bytes:
        q = wire.decode(data)
        name = q.questions[0].name.lower()
        reply = wire.reply_to(q, rcode=wire.NOERROR if name in RECORDS else wire.NXDOMAIN)
        reply.answers = [wire.Record(q.questions[0].name, wire.A, 60, ip) for ip in RECORDS.get(name, ())]
        return wire.encode(reply, limit=limit)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", 0)
        self.port = self._tcp.sockets[0].getsockname()[1]
        fake = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                fake.seen.append(("udp", wire.decode(data).questions[0].name))
                self.transport.sendto(fake.answer(data, limit=wire.CLASSIC_UDP_SIZE), addr)  # type: ignore[attr-defined]

        self._udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", self.port))

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            size = int.from_bytes(await reader.readexactly(2), "big")
            data = await reader.readexactly(size)
            self.seen.append(("tcp", wire.decode(data).questions[0].name))
            out = self.answer(data, limit=65535)
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
