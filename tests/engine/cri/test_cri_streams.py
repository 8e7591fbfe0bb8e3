"""Exec, Attach and PortForward URLs against a real pod, spoken to as kubectl/the kubelet would."""

from __future__ import annotations

import json
import struct
import uuid

import aiohttp

from engine.cri.proto import api_pb2 as pb
from engine.images.store import Image
from tests.engine.cri import cri_env
from tests.engine.cri.conftest import needs_host

pytestmark = needs_host

V5 = ("v5.channel.k8s.io",)
SERVE = "mkdir -p /www && echo forwarded > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"


async def _pod(cri: cri_env.Harness, busybox: Image, command: str, **kw) -> tuple[str, str]:
    config = cri_env.sandbox_config("streams", uid=str(uuid.uuid4()), log_dir=cri.log_dir)
    sandbox_id = (await cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))).pod_sandbox_id
    ctr = cri_env.container_config("main", busybox.id, ["sh", "-c", command])
    for key, value in kw.items():
        setattr(ctr, key, value)
    cid = (await cri.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=ctr, sandbox_config=config))).container_id
    await cri.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    return sandbox_id, cid


async def _frames(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    async for msg in ws:
        out[msg.data[0]] = out.get(msg.data[0], b"") + msg.data[1:]
    return out


async def test_exec_stream_with_stdin_and_exit_code(cri: cri_env.Harness, busybox: Image):
    _, cid = await _pod(cri, busybox, "exec busybox sleep 1000")
    url = (await cri.runtime.Exec(pb.ExecRequest(
        container_id=cid, cmd=["sh", "-c", "cat; echo to-err >&2; exit 4"], stdin=True, stdout=True,
        stderr=True))).url
    assert url.startswith(cri.server.streaming.base_url + "/exec/")
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=V5) as ws:
        await ws.send_bytes(b"\x00piped input\n")
        await ws.send_bytes(b"\xff\x00")
        frames = await _frames(ws)
        assert ws.close_code == 1000
    assert (frames[1], frames[2]) == (b"piped input\n", b"to-err\n")
    status = json.loads(frames[3])
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0]["message"] == "4"

    url = (await cri.runtime.Exec(pb.ExecRequest(container_id=cid, cmd=["no-such-command"], stdout=True))).url
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=V5) as ws:
        frames = await _frames(ws)
    status = json.loads(frames[3])
    assert status["status"] == "Failure" and "no-such-command" in status["message"]


async def test_attach_sees_the_main_process_output(cri: cri_env.Harness, busybox: Image):
    _, cid = await _pod(cri, busybox, "while true; do echo tick; busybox sleep 0.1; done")
    url = (await cri.runtime.Attach(pb.AttachRequest(container_id=cid, stdout=True, stderr=True))).url
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=V5) as ws:
        msg = await ws.receive_bytes(timeout=5)
    assert msg.startswith(b"\x01tick")


async def test_port_forward_reaches_the_pods_loopback(cri: cri_env.Harness, busybox: Image):
    sandbox_id, cid = await _pod(cri, busybox, SERVE)
    for _ in range(100):  # until httpd listens
        probe = await cri.runtime.ExecSync(pb.ExecSyncRequest(
            container_id=cid, cmd=["wget", "-qO-", "http://127.0.0.1:8080/"], timeout=5))
        if probe.exit_code == 0:
            break
    url = (await cri.runtime.PortForward(pb.PortForwardRequest(pod_sandbox_id=sandbox_id, port=[8080]))).url
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
        assert [await ws.receive_bytes() for _ in range(2)] == [b"\x00" + struct.pack("<H", 8080),
                                                                 b"\x01" + struct.pack("<H", 8080)]
        await ws.send_bytes(b"\x00GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
        answer = b""
        while b"forwarded" not in answer:
            answer += (await ws.receive_bytes(timeout=5))[1:]
    assert answer.startswith(b"HTTP/1.") and answer.endswith(b"forwarded\n")


async def test_exec_with_a_terminal(cri: cri_env.Harness, busybox: Image):
    _, cid = await _pod(cri, busybox, "exec busybox sleep 1000")
    url = (await cri.runtime.Exec(pb.ExecRequest(
        container_id=cid, cmd=["busybox", "tty"], tty=True, stdin=True, stdout=True))).url
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=V5) as ws:
        await ws.send_bytes(b"\x04" + json.dumps({"Width": 100, "Height": 30}).encode())
        frames = await _frames(ws)
    assert frames[1].startswith(b"/dev/pts/") and 2 not in frames  # one stream on a terminal
    assert json.loads(frames[3])["status"] == "Success"
