"""KubeletServer against a real CRI and busybox containers: auth, logs, exec (WebSocket relayed)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from engine.images.store import Image
from tests.engine.cri.conftest import needs_host
from tests.kubelet.server import kubelet_env
from tests.kubelet.server.kubelet_env import Kubelet

pytestmark = needs_host
V5 = ("v5.channel.k8s.io",)


async def _get(kubelet: Kubelet, path: str, *, with_cert: bool = True) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.get(kubelet.url + path, ssl=kubelet.client_ssl(with_cert=with_cert)) as answer:
            return answer.status, await answer.read()


async def test_auth_and_logs(kubelet: Kubelet, busybox: Image):
    assert await _get(kubelet, "/healthz", with_cert=False) == (200, b"ok")
    pod = await kubelet_env.run_pod(kubelet, name="logs")
    status, _ = await _get(kubelet, "/containerLogs/default/logs/web", with_cert=False)
    assert status == 401
    status, body = await _get(kubelet, "/containerLogs/default/logs/web?previous=true")
    assert (status, body) == (400, b'previous terminated container "web" in pod "logs" not found')

    first = await kubelet_env.run_container(kubelet, pod, name="web", image=busybox.id,
                                            script="echo one; echo two; echo three; exit 1")
    async with asyncio.timeout(10):
        await kubelet_env.wait_exited(kubelet, first)
    await kubelet_env.run_container(kubelet, pod, name="web", image=busybox.id, script="echo again; sleep 1000")
    await asyncio.sleep(0.5)
    assert await _get(kubelet, "/containerLogs/default/logs/web?previous=true") == (200, b"one\ntwo\nthree\n")
    assert await _get(kubelet, "/containerLogs/default/logs/web?previous=true&tailLines=1") == (200, b"three\n")
    assert await _get(kubelet, "/containerLogs/default/logs/web?previous=true&limitBytes=6") == (200, b"one\ntw")
    assert await _get(kubelet, "/containerLogs/default/logs/web") == (200, b"again\n")
    status, body = await _get(kubelet, "/containerLogs/default/logs/web?timestamps=true")
    stamp, text = body.split(b" ", 1)
    assert status == 200 and text == b"again\n" and stamp.endswith(b"Z")
    assert await _get(kubelet, "/containerLogs/default/logs/web?tailLines=x") == (
        400, b"tailLines: invalid integer 'x'\n")


async def test_follow_ends_when_the_container_exits(kubelet: Kubelet, busybox: Image):
    pod = await kubelet_env.run_pod(kubelet, name="follow")
    await kubelet_env.run_container(kubelet, pod, name="c", image=busybox.id,
                                    script="for i in 1 2 3; do echo line $i; sleep 0.3; done")
    async with asyncio.timeout(15):
        status, body = await _get(kubelet, "/containerLogs/default/follow/c?follow=true")
    assert (status, body) == (200, b"line 1\nline 2\nline 3\n")


async def test_exec_through_the_kubelet(kubelet: Kubelet, busybox: Image):
    pod = await kubelet_env.run_pod(kubelet, name="ex")
    await kubelet_env.run_container(kubelet, pod, name="c", image=busybox.id, script="exec sleep 1000")
    query = "command=sh&command=-c&command=cat;echo+err+>%262;exit+3&stdin=true&stdout=true&stderr=true"
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"{kubelet.url}/exec/default/ex/c?{query}", protocols=V5, ssl=kubelet.client_ssl()) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        await ws.send_bytes(b"\x00hello\n")
        await ws.send_bytes(b"\xff\x00")
        frames: dict[int, bytes] = {}
        async for msg in ws:
            frames[msg.data[0]] = frames.get(msg.data[0], b"") + msg.data[1:]
        assert ws.close_code == 1000
    assert frames[1] == b"hello\n" and frames[2] == b"err\n"
    assert json.loads(frames[3])["details"]["causes"][0]["message"] == "3"


@pytest.mark.parametrize("path", ["/exec/default/ex/nope?command=true&stdout=true", "/exec/default/ex/c"])
async def test_exec_refusals(kubelet: Kubelet, busybox: Image, path: str):
    pod = await kubelet_env.run_pod(kubelet, name="ex")
    await kubelet_env.run_container(kubelet, pod, name="c", image=busybox.id, script="exec sleep 1000")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(kubelet.url + path, protocols=V5, ssl=kubelet.client_ssl())
    assert caught.value.status == 400


async def test_attach_streams_the_running_process(kubelet: Kubelet, busybox: Image):
    pod = await kubelet_env.run_pod(kubelet, name="at")
    await kubelet_env.run_container(kubelet, pod, name="c", image=busybox.id,
                                    script="while true; do echo tick; sleep 0.2; done")
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"{kubelet.url}/attach/default/at/c?stdout=true&stderr=true", protocols=V5,
            ssl=kubelet.client_ssl()) as ws:
        msg = await ws.receive(timeout=5)
        assert msg.data[:1] == b"\x01" and b"tick" in msg.data
