"""/portforward spoken to as kubectl 1.32 does (SPDY/3 in WebSocket), against a real busybox pod."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from engine.images.store import Image
from kubelet.server import spdy
from tests.engine.cri.conftest import needs_host
from tests.kubelet.server import kubelet_env
from tests.kubelet.server.kubelet_env import Kubelet

pytestmark = needs_host
PROTOCOL = "SPDY/3.1+portforward.k8s.io"
SERVE = "mkdir -p /www && echo forwarded > /www/index.html && exec httpd -f -p 8080 -h /www"


class Client:
    """kubectl's side: one SPDY session, frames split over small WebSocket messages."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.framer = spdy.Framer()
        self.frames: list[spdy.Frame] = []

    async def send(self, frame: bytes) -> None:
        for start in range(0, len(frame), 5):  # as kubectl, one frame may span several messages
            await self.ws.send_bytes(frame[start:start + 5])

    async def open(self, *, request_id: int, port: int) -> tuple[int, int]:
        error_id, data_id = 4 * request_id + 1, 4 * request_id + 3
        headers = {"port": str(port), "requestid": str(request_id)}
        await self.send(self.framer.syn_stream(error_id, {"streamtype": "error", **headers}))
        await self.send(spdy.data(error_id, b"", fin=True))
        await self.send(self.framer.syn_stream(data_id, {"streamtype": "data", **headers}))
        return error_id, data_id

    async def until(self, done) -> None:
        while not done():
            msg = await self.ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            self.frames += self.framer.feed(msg.data)

    def data(self, stream_id: int) -> bytes:
        return b"".join(f.data for f in self.frames if isinstance(f, spdy.DataFrame) and f.stream_id == stream_id)

    def finished(self, stream_id: int) -> bool:
        return any(isinstance(f, spdy.DataFrame) and f.stream_id == stream_id and f.fin for f in self.frames)


async def test_forward_two_connections_and_a_closed_port(kubelet: Kubelet, busybox: Image):
    pod = await kubelet_env.run_pod(kubelet, name="pf")
    await kubelet_env.run_container(kubelet, pod, name="web", image=busybox.id, script=SERVE)
    await asyncio.sleep(0.3)  # httpd binds
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"{kubelet.url}/portforward/default/pf", protocols=(PROTOCOL,), ssl=kubelet.client_ssl()) as ws:
        assert ws.protocol == PROTOCOL
        client = Client(ws)
        for request_id in (0, 1):
            error_id, data_id = await client.open(request_id=request_id, port=8080)
            await client.send(spdy.data(data_id, b"GET /index.html HTTP/1.0\r\n\r\n"))
            await client.until(lambda: client.data(data_id).endswith(b"\r\n\r\nforwarded\n"))  # noqa: B023
            await client.send(spdy.rst_stream(data_id, spdy.CANCEL))  # kubectl, once the local side closed
            await client.until(lambda: client.finished(data_id) and client.finished(error_id))  # noqa: B023
            assert client.data(error_id) == b""
            replies = [f for f in client.frames if isinstance(f, spdy.SynReply)]
            assert spdy.SynReply(error_id, {}) in replies and spdy.SynReply(data_id, {}) in replies
        await client.send(spdy.ping(9))
        await client.until(lambda: spdy.Ping(9) in client.frames)

        error_id, data_id = await client.open(request_id=2, port=9)
        await client.until(lambda: client.finished(error_id))
        assert b"9" in client.data(error_id) and client.finished(data_id)
        await client.send(spdy.goaway(0))


@pytest.mark.parametrize("headers", [{"Upgrade": "SPDY/3.1", "Connection": "Upgrade",
                                      "X-Stream-Protocol-Version": "portforward.k8s.io"}, {}])
async def test_only_the_websocket_tunnel_is_served(kubelet: Kubelet, busybox: Image, headers: dict[str, str]):
    await kubelet_env.run_pod(kubelet, name="pf")
    async with aiohttp.ClientSession() as http, http.post(
            f"{kubelet.url}/portforward/default/pf", headers=headers, ssl=kubelet.client_ssl()) as answer:
        assert answer.status == 400 and PROTOCOL in await answer.text()
