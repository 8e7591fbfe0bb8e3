"""Real kubectl -> API server -> KubeletServer -> CRI -> busybox: logs, exec and port-forward.

The API server runs in this process (so its app can be given the kubelet client certificate, see
``api`` below), with a Node pointing at the KubeletServer (InternalIP 127.0.0.1, its port) and Pods
bound to it whose sandbox and containers the test makes through the CRI with the kubelet's labels.
kubectl runs as a subprocess through asyncio, so the loop keeps serving while it waits.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from apiserver import app as app_module
from apiserver import kubelet_client
from apiserver.server import ApiServer
from e2e.cluster import KUBECTL, free_port, kubectl_missing
from engine.images.store import Image
from tests.engine.cri.conftest import needs_host
from tests.kubelet.server import kubelet_env
from tests.kubelet.server.kubelet_env import Kubelet

pytestmark = [needs_host, pytest.mark.skipif(kubectl_missing(), reason="needs /usr/bin/kubectl")]

WEB = ("echo hello; mkdir -p /www && echo page > /www/index.html && head -c 3000000 /dev/zero > /www/big"
       " && exec httpd -f -p 8080 -h /www")


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ApiServer]:
    data_dir = tmp_path / "cluster"  # the kubelet fixture trusts the CA made here
    build = app_module.build_app

    def build_with_kubelet_client(store, *, authenticator):  # what `pinnace server` wiring does
        app = build(store, authenticator=authenticator)
        kubelet_client.install(app, data_dir / "pki")
        return app

    monkeypatch.setattr(app_module, "build_app", build_with_kubelet_client)
    server = ApiServer(data_dir=data_dir, port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def kubectl(api: ApiServer, *args: str, stdin: bytes | None = None,
                  limit: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(api.kubeconfig), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(limit):
            out, err = await proc.communicate(stdin)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(), err.decode()


async def apply(api: ApiServer, obj: dict) -> None:
    code, _, err = await kubectl(api, "create", "-f", "-", stdin=json.dumps(obj).encode())
    assert code == 0, err


async def make_node(api: ApiServer, name: str, *, port: int, address: str | None) -> None:
    await apply(api, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    status = {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
              "addresses": [{"type": "InternalIP", "address": address}] if address else []}
    code, _, err = await kubectl(api, "patch", "node", name, "--subresource=status", "--type=merge",
                                 "-p", json.dumps({"status": status}))
    assert code == 0, err


async def make_pod(api: ApiServer, name: str, *, node: str, containers: list[str]) -> str:
    await apply(api, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                      "spec": {"nodeName": node, "containers": [{"name": c, "image": "busybox"} for c in containers]}})
    code, _, err = await kubectl(api, "patch", "pod", name, "--subresource=status", "--type=merge",
                                 "-p", '{"status": {"phase": "Running"}}')  # kubectl port-forward checks it
    assert code == 0, err
    code, out, err = await kubectl(api, "get", "pod", name, "-o", "jsonpath={.metadata.uid}")
    assert code == 0, err
    return out


def admin_ssl(api: ApiServer) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(api.data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(api.data_dir / "pki" / "admin.crt", api.data_dir / "pki" / "admin.key")
    return ctx


async def api_get(api: ApiServer, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(api.url + path, ssl=admin_ssl(api)) as answer:
        return answer.status, await answer.json(content_type=None)


async def test_kubectl_logs_exec_port_forward(api: ApiServer, kubelet: Kubelet, busybox: Image):
    await make_node(api, "node-1", port=kubelet.server.port, address="127.0.0.1")
    uid = await make_pod(api, "demo", node="node-1", containers=["web", "counter"])
    pod = await kubelet_env.run_pod(kubelet, name="demo", uid=uid)
    first = await kubelet_env.run_container(kubelet, pod, name="web", image=busybox.id,
                                            script="echo one; echo two; exit 1")
    async with asyncio.timeout(10):
        await kubelet_env.wait_exited(kubelet, first)
    await kubelet_env.run_container(kubelet, pod, name="web", image=busybox.id, script=WEB)
    await kubelet_env.run_container(kubelet, pod, name="counter", image=busybox.id,
                                    script="for i in 1 2 3; do echo line $i; sleep 0.4; done")

    code, out, err = await kubectl(api, "logs", "demo", "-c", "web", "--previous")
    assert (code, out) == (0, "one\ntwo\n"), err
    assert (await kubectl(api, "logs", "demo", "-c", "web", "--previous", "--tail=1"))[:2] == (0, "two\n")
    for _ in range(50):
        code, out, err = await kubectl(api, "logs", "demo", "-c", "web")
        if out:
            break
        await asyncio.sleep(0.1)
    assert (code, out) == (0, "hello\n"), err
    assert (await kubectl(api, "logs", "-f", "demo", "-c", "counter", limit=20))[:2] == (
        0, "line 1\nline 2\nline 3\n")
    code, _, err = await kubectl(api, "logs", "demo", "-c", "counter", "--previous")
    assert code == 1 and 'previous terminated container "counter" in pod "demo" not found' in err

    code, out, err = await kubectl(api, "exec", "demo", "-c", "web", "--", "sh", "-c", "echo hi; exit 3")
    assert (code, out) == (3, "hi\n") and "command terminated with exit code 3" in err
    assert (await kubectl(api, "exec", "-i", "demo", "-c", "web", "--", "cat", stdin=b"piped\n"))[:2] == (
        0, "piped\n")

    local = free_port()
    forward = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(api.kubeconfig), "port-forward", "pod/demo", f"{local}:8080",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(10):
            line = await forward.stdout.readline()
        if b"Forwarding from" not in line:
            forward.kill()
            raise AssertionError((await forward.stderr.read()).decode())
        async with aiohttp.ClientSession() as http:
            for _ in range(2):  # two connections: two stream pairs in one session
                async with http.get(f"http://127.0.0.1:{local}/index.html") as answer:
                    assert (answer.status, await answer.text()) == (200, "page\n")
            async with http.get(f"http://127.0.0.1:{local}/big") as answer:  # far beyond any SPDY window
                assert (answer.status, await answer.read()) == (200, bytes(3000000))
    finally:
        forward.kill()
        await forward.wait()

    status, body = await api_get(api, "/api/v1/namespaces/default/pods/demo/log")
    assert (status, body["message"]) == (400, "a container name must be specified for pod demo, "
                                              "choose one of: [web counter]")
    status, body = await api_get(api, "/api/v1/namespaces/default/pods/demo/log?container=nope")
    assert (status, body["message"]) == (400, "container nope is not valid for pod demo")


async def test_unreachable_kubelets(api: ApiServer, tmp_path: Path):
    await make_node(api, "no-address", port=10250, address=None)
    await make_node(api, "down", port=free_port(), address="127.0.0.1")
    await make_pod(api, "a", node="no-address", containers=["c"])
    await make_pod(api, "b", node="down", containers=["c"])
    status, body = await api_get(api, "/api/v1/namespaces/default/pods/a/log")
    assert status == 503 and "no preferred addresses found" in body["message"]
    status, body = await api_get(api, "/api/v1/namespaces/default/pods/b/log")
    assert status == 503 and body["message"].startswith("error dialing backend: dial tcp 127.0.0.1:")
    assert body["message"].endswith("connect: connection refused")
