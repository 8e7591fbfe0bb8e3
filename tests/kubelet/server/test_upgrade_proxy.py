"""machinery.upgrade_proxy between two real aiohttp servers: plain, streamed, upgraded, refused, down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from e2e.cluster import free_port
from machinery import upgrade_proxy


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    headers = request.headers
    return web.json_response({"method": request.method, "query": request.rel_url.raw_query_string,
                              "body": body.decode(), "x": headers.get("X-Test", ""),
                              "auth": headers.get("Authorization", ""), "extra": headers.get("X-Extra", "")})


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for i in range(3):
        await response.write(f"chunk {i}\n".encode())
        await asyncio.sleep(0.2)
    await response.write_eof()
    return response


async def websocket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io",))
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="websocket only")
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            if msg.data == b"bye":
                await ws.close(code=4001, message=b"done")
                break
            await ws.send_bytes(msg.data[::-1])
    return ws


ENDED: dict[str, asyncio.Event] = {}  # streams the backend saw end, by ?id=


async def forever(request: web.Request) -> web.StreamResponse:
    """A ``logs -f`` that never ends by itself; notes when its client went away."""
    response = web.StreamResponse()
    await response.prepare(request)
    quiet = request.query.get("quiet") == "1"  # one line, then silence (a quiet container)
    try:
        while True:
            if not quiet or response.body_length == 0:
                await response.write(b"tick\n")
            await asyncio.sleep(0.1)
            if request.transport is None or request.transport.is_closing():
                return response  # as the kubelet's follow loop does
    finally:
        ENDED.setdefault(request.query.get("id", ""), asyncio.Event()).set()


@pytest.fixture
async def backend() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/forever", forever)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/ws", websocket)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def refuse_as_json(status: int, body: bytes) -> web.StreamResponse:
    return web.json_response({"refused": status, "why": body.decode()}, status=status)


@pytest.fixture
async def front(backend: str) -> AsyncIterator[tuple[str, dict]]:
    """Proxies /p/<path> to the backend; /dead/ to a closed port; /json/ turns errors into JSON."""
    state: dict = {"target": backend}

    async def handler(request: web.Request) -> web.StreamResponse:
        kind, _, rest = request.match_info["tail"].partition("/")
        base = f"http://127.0.0.1:{free_port()}" if kind == "dead" else state["target"]
        query = request.rel_url.raw_query_string
        url = f"{base}/{rest}" + (f"?{query}" if query else "")
        try:
            return await upgrade_proxy.forward(request, url=url, headers={"X-Extra": "added"},
                                               refuse=refuse_as_json if kind == "json" else None)
        except upgrade_proxy.DialError as exc:
            return web.Response(status=502, text=str(exc))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", state
    finally:
        await runner.cleanup()


async def test_plain_requests_keep_method_query_headers_and_body(front):
    url, _ = front
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/p/echo?a=1&a=2&b=x%20y", data=b"payload",
                             headers={"X-Test": "kept", "Authorization": "Bearer secret"}) as answer:
            assert answer.status == 200
            assert await answer.json() == {"method": "POST", "query": "a=1&a=2&b=x%20y", "body": "payload",
                                           "x": "kept", "auth": "", "extra": "added"}


async def test_streamed_answers_arrive_as_they_are_written(front):
    url, _ = front
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http, http.get(f"{url}/p/stream") as answer:
        start = loop.time()
        first = await answer.content.readline()
        first_at = loop.time() - start
        rest = await answer.content.read()
    assert first == b"chunk 0\n" and rest == b"chunk 1\nchunk 2\n"
    assert first_at < 0.3  # before the backend finished (0.6 s)


async def test_websocket_upgrades_pass_through(front):
    url, _ = front
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{url}/p/ws", protocols=("v5.channel.k8s.io",)) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            for payload in (b"\x01abc", bytes(range(256)) * 300):
                await ws.send_bytes(payload)
                assert (await ws.receive_bytes(timeout=5)) == payload[::-1]
            await ws.send_bytes(b"bye")
            msg = await ws.receive(timeout=5)
            assert msg.type == WSMsgType.CLOSE and msg.data == 4001


async def test_refused_upgrades_and_errors(front):
    url, _ = front
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/p/ws", headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}) as answer:
            assert (answer.status, await answer.text()) == (400, "websocket only")
        async with http.get(f"{url}/json/ws", headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}) as answer:
            assert (answer.status, await answer.json()) == (400, {"refused": 400, "why": "websocket only"})
        async with http.get(f"{url}/json/missing") as answer:
            assert answer.status == 404 and (await answer.json())["refused"] == 404
        for path in ("/dead/echo", "/dead/ws"):
            headers = {"Connection": "Upgrade", "Upgrade": "websocket"} if path.endswith("ws") else {}
            async with http.get(url + path, headers=headers) as answer:
                text = await answer.text()
                assert answer.status == 502 and text.startswith("dial tcp 127.0.0.1:")
                assert text.endswith("connect: connection refused")


async def test_large_upgraded_transfers_pause_and_resume_without_loss(front):
    url, _ = front
    payloads = [bytes([i]) * (1536 << 10) + b"end" for i in range(4)]  # each above the 1 MiB high water
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{url}/p/ws", protocols=("v5.channel.k8s.io",)) as ws:
            for payload in payloads:
                await ws.send_bytes(payload)
            for payload in payloads:
                assert (await ws.receive_bytes(timeout=10)) == payload[::-1]


@pytest.mark.parametrize("quiet", ["0", "1"])
async def test_a_client_leaving_a_stream_ends_the_backend_request(front, quiet: str):
    url, _ = front
    ended = ENDED.setdefault(quiet, asyncio.Event())
    async with aiohttp.ClientSession() as http, http.get(f"{url}/p/forever?id={quiet}&quiet={quiet}") as answer:
        assert await answer.content.readline() == b"tick\n"
    async with asyncio.timeout(5):
        await ended.wait()
