"""The streaming server's wire protocol against a fake runtime backend (no containers needed).

Frames as kubectl exchanges them (v5.channel.k8s.io): output on channels 1/2, the final Status on
channel 3 followed by a normal close, stdin on 0, resize on 4, ``0xFF 0x00`` closing stdin; the
port-forward channel pairs; single-use tokens and refused upgrades.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator

import aiohttp
import pytest

from engine.cri.errors import FailedPrecondition
from engine.cri.streaming import StreamingServer, StreamRequest


class FakeSession:
    """Echoes stdin to stdout (uppercased) until stdin closes, after ``lines`` of output."""

    def __init__(self, *, lines: list[tuple[str, bytes]], code: int, echo: bool) -> None:
        self.queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        for line in lines:
            self.queue.put_nowait(line)
        if not echo:
            self.queue.put_nowait(None)
        self.code = code
        self.error = ""
        self.resized: list[tuple[int, int]] = []
        self.closed = False

    async def read(self) -> tuple[str, bytes] | None:
        return await self.queue.get()

    async def write(self, data: bytes) -> None:
        self.queue.put_nowait(("stdout", data.upper()))

    async def close_stdin(self) -> None:
        self.queue.put_nowait(None)

    async def resize(self, *, height: int, width: int) -> None:
        self.resized.append((height, width))

    async def close(self) -> None:
        self.closed = True


class FakeExec(FakeSession):
    """An exec session also has an exit code (an attach session has none of its own)."""

    async def wait(self) -> int:
        return self.code


class FakeBackend:
    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []
        self.echo_port = 0

    async def open_exec(self, request: StreamRequest) -> FakeExec:
        if request.cmd[0] == "missing":
            raise FailedPrecondition('exec: "missing": executable file not found in $PATH')
        code = int(request.cmd[1]) if len(request.cmd) > 1 else 0
        session = FakeExec(lines=[("stdout", b"out\n"), ("stderr", b"err\n")], code=code, echo=request.stdin)
        self.sessions.append(session)
        return session

    async def open_attach(self, request: StreamRequest) -> FakeSession:
        session = FakeSession(lines=[("stdout", b"tick\n")], code=0, echo=False)
        self.sessions.append(session)
        return session

    async def dial(self, sandbox_id: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if port != 80:
            raise FailedPrecondition(f"cannot connect to port {port} in the pod: Connection refused")
        return await asyncio.open_connection("127.0.0.1", self.echo_port)


@pytest.fixture
async def streams() -> AsyncIterator[tuple[StreamingServer, FakeBackend]]:
    backend = FakeBackend()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.readline())
        await writer.drain()
        writer.close()

    tcp = await asyncio.start_server(echo, "127.0.0.1", 0)
    backend.echo_port = tcp.sockets[0].getsockname()[1]
    server = StreamingServer(backend)
    await server.start()
    try:
        yield server, backend
    finally:
        await server.stop()
        tcp.close()
        await tcp.wait_closed()


async def _frames(ws: aiohttp.ClientWebSocketResponse) -> list[tuple[int, bytes]]:
    out = []
    async for msg in ws:
        assert msg.type == aiohttp.WSMsgType.BINARY
        out.append((msg.data[0], msg.data[1:]))
    return out


async def test_exec_output_then_status_then_normal_close(streams):
    server, backend = streams
    url = server.prepare(StreamRequest(kind="exec", target="c1", cmd=("sh",)))
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        frames = await _frames(ws)
        assert ws.close_code == 1000
    assert frames[:2] == [(1, b"out\n"), (2, b"err\n")]
    assert frames[2][0] == 3 and json.loads(frames[2][1]) == {"metadata": {}, "status": "Success"}
    assert backend.sessions[0].closed
    async with aiohttp.ClientSession() as http:  # the token was single-use
        async with http.get(url) as resp:
            assert resp.status == 404


async def test_nonzero_exit_and_unstartable_command_report_failure(streams):
    server, _ = streams
    url = server.prepare(StreamRequest(kind="exec", target="c1", cmd=("sh", "3"), stderr=False))
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        frames = await _frames(ws)
    assert frames[0] == (1, b"out\n") and all(ch != 2 for ch, _ in frames)  # stderr was not asked for
    status = json.loads(frames[-1][1])
    assert (status["status"], status["reason"]) == ("Failure", "NonZeroExitCode")
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert "exit code 3" in status["message"]

    url = server.prepare(StreamRequest(kind="exec", target="c1", cmd=("missing",)))
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        frames = await _frames(ws)
    status = json.loads(frames[-1][1])
    assert status["status"] == "Failure" and "executable file not found" in status["message"]


async def test_stdin_resize_and_close(streams):
    server, backend = streams
    url = server.prepare(StreamRequest(kind="exec", target="c1", cmd=("cat",), stdin=True))
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b"\x04" + json.dumps({"Width": 80, "Height": 24}).encode())
        await ws.send_bytes(b"\x00piped input\n")
        await ws.send_bytes(b"\xff\x00")
        frames = await _frames(ws)
    assert (1, b"PIPED INPUT\n") in frames
    assert json.loads(frames[-1][1])["status"] == "Success"
    assert backend.sessions[0].resized == [(24, 80)]


async def test_attach_ends_with_success_when_the_process_ends(streams):
    server, _ = streams
    url = server.prepare(StreamRequest(kind="attach", target="c1"))
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
        frames = await _frames(ws)
    assert frames[0] == (1, b"tick\n") and json.loads(frames[-1][1])["status"] == "Success"


async def test_refused_requests(streams):
    server, _ = streams
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base_url}/exec/nonsense") as resp:
            assert resp.status == 404
        url = server.prepare(StreamRequest(kind="exec", target="c1", cmd=("sh",)))
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(url, protocols=("channel.k8s.io",))
        assert err.value.status == 400
        url = server.prepare(StreamRequest(kind="attach", target="c1"))
        async with http.get(url.replace("/attach/", "/exec/")) as resp:  # a token is for its own kind
            assert resp.status == 404


async def test_portforward_channels(streams):
    server, _ = streams
    url = server.prepare(StreamRequest(kind="portforward", target="s1", ports=(80, 81)))
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        first = [await ws.receive_bytes() for _ in range(4)]
        assert first[:2] == [b"\x00" + struct.pack("<H", 80), b"\x01" + struct.pack("<H", 80)]
        assert first[2:] == [b"\x02" + struct.pack("<H", 81), b"\x03" + struct.pack("<H", 81)]
        error = await ws.receive_bytes()
        assert error[0] == 3 and b"Connection refused" in error
        await ws.send_bytes(b"\x00hello\n")
        assert await ws.receive_bytes() == b"\x00echo:hello\n"
