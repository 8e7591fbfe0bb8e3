"""Probe actions against real things: an aiohttp server, listening/closed sockets, a gRPC health
server; and the ProbeManager's thresholds, startup gating and hold, with a scripted exec runtime."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aiohttp import web

from kubelet.cri import pb
from kubelet.hooks import run_handler
from kubelet.probes import ProbeManager, resolve_port, run_probe, static_command

CONTAINER = {"name": "app", "ports": [{"name": "http", "containerPort": 0}]}


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.path_qs, **request.headers})
        if request.path == "/slow":
            await asyncio.sleep(1.3)
        if request.path == "/redirect":
            raise web.HTTPFound("http://192.0.2.1/elsewhere")
        status = 500 if request.path == "/fail" else 200
        return web.Response(status=status, text=f"body of {request.path}")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, seen
    finally:
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def probe(spec: dict[str, Any], container: dict[str, Any] = CONTAINER) -> tuple[bool, str]:
    return await run_probe(spec, cri=None, container_id="", pod_ip="127.0.0.1", container=container)  # type: ignore[arg-type]


async def test_http_get(http_server: tuple[int, list]) -> None:
    port, seen = http_server
    ok, body = await probe({"httpGet": {"path": "/healthz?x=1", "port": port,
                                        "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}})
    assert (ok, body) == (True, "body of /healthz")
    assert seen[-1]["path"] == "/healthz?x=1"
    assert seen[-1]["User-Agent"] == "kube-probe/1.32" and seen[-1]["X-Probe"] == "yes"
    assert await probe({"httpGet": {"path": "/fail", "port": port}}) == \
        (False, "HTTP probe failed with statuscode: 500")
    assert (await probe({"httpGet": {"path": "/redirect", "port": port}}))[0]  # 3xx counts as success


async def test_http_get_by_port_name_and_host(http_server: tuple[int, list]) -> None:
    port, _ = http_server
    named = {"name": "app", "ports": [{"name": "http", "containerPort": port}]}
    assert (await probe({"httpGet": {"path": "/", "port": "http", "host": "127.0.0.1"}}, named))[0]
    assert await probe({"httpGet": {"port": "nope"}}, named) == (False, "couldn't find port: nope in app")


async def test_http_get_timeout(http_server: tuple[int, list]) -> None:
    port, _ = http_server
    ok, message = await probe({"httpGet": {"path": "/slow", "port": port}, "timeoutSeconds": 1})
    assert not ok
    assert message == (f'Get "http://127.0.0.1:{port}/slow": context deadline exceeded '
                       "(Client.Timeout exceeded while awaiting headers)")


async def test_http_get_refused() -> None:
    port = closed_port()
    assert await probe({"httpGet": {"path": "/", "port": port}}) == \
        (False, f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: connection refused')


async def test_tcp_socket() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert await probe({"tcpSocket": {"port": port}}) == (True, "")
    port = closed_port()
    assert await probe({"tcpSocket": {"port": port}}) == \
        (False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


def _health_handler(status: int, seen: list[bytes]) -> grpc.GenericRpcHandler:
    async def check(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen.append(request)
        return bytes([0x08, status])

    method = grpc.unary_unary_rpc_method_handler(check, request_deserializer=lambda b: b,
                                                 response_serializer=lambda b: b)
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": method})


@pytest.mark.parametrize(("status", "expected"), [
    (1, (True, "")), (2, (False, 'service unhealthy (responded with "NOT_SERVING")'))])
async def test_grpc(status: int, expected: tuple[bool, str]) -> None:
    seen: list[bytes] = []
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_health_handler(status, seen),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        assert await probe({"grpc": {"port": port}}) == expected
        assert await probe({"grpc": {"port": port, "service": "s" * 200}}) == expected
        assert seen == [b"", b"\x0a\xc8\x01" + b"s" * 200]  # HealthCheckRequest{service}, varint length
    finally:
        await server.stop(None)


async def test_grpc_unreachable() -> None:
    port = closed_port()
    assert await probe({"grpc": {"port": port}, "timeoutSeconds": 1}) == (
        False, f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: context deadline exceeded')


def test_static_command_expansion() -> None:
    container = {"env": [{"name": "F", "value": "/tmp/x"}, {"name": "D", "valueFrom": {"fieldRef": {}}}]}
    assert static_command(["cat", "$(F)", "$(D)", "$(U)", "$$(F)"], container) == ["cat", "/tmp/x", "", "$(U)", "$(F)"]


def test_resolve_port() -> None:
    assert resolve_port(8080, CONTAINER) == 8080
    assert resolve_port("8080", CONTAINER) == 8080


async def test_http_hook_ignores_status_but_not_errors(http_server: tuple[int, list]) -> None:
    port, seen = http_server
    kw: dict[str, Any] = {"cri": None, "container_id": "", "pod_ip": "127.0.0.1", "container": CONTAINER,
                          "timeout": 2}
    assert await run_handler({"httpGet": {"path": "/fail", "port": port}}, **kw) is None
    assert seen[-1]["path"] == "/fail"
    closed = closed_port()
    message = await run_handler({"httpGet": {"path": "/stop", "port": closed}}, **kw,
                                pod={"metadata": {"name": "p", "namespace": "ns", "uid": "u"}})
    assert message == (f'HTTP lifecycle hook (/stop) for Container "app" in Pod "p_ns(u)" failed - error: '
                       f'Get "http://127.0.0.1:{closed}/stop": dial tcp 127.0.0.1:{closed}: '
                       "connect: connection refused")


async def test_sleep_hook_is_bounded_by_timeout() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    kw: dict[str, Any] = {"cri": None, "container_id": "", "pod_ip": "", "container": CONTAINER}
    assert await run_handler({"sleep": {"seconds": 30}}, **kw, timeout=0.2) is None
    assert 0.15 < loop.time() - start < 2


# ---------------------------------------------------------------------------------- ProbeManager


class ScriptedRuntime:
    """ExecSync answers from a per-command script: ``exit_codes[cmd]`` is popped (last one sticks)."""

    def __init__(self, exit_codes: dict[str, list[int]]) -> None:
        self.exit_codes = exit_codes
        self.calls: list[str] = []

    async def ExecSync(self, request: pb.ExecSyncRequest, timeout: float) -> pb.ExecSyncResponse:  # noqa: ASYNC109
        cmd = request.cmd[0]
        self.calls.append(cmd)
        if cmd == "boom":
            raise RuntimeError("runtime exploded")
        codes = self.exit_codes[cmd]
        code = codes.pop(0) if len(codes) > 1 else codes[0]
        return pb.ExecSyncResponse(stdout=f"{cmd} said {code}".encode(), exit_code=code)


class ScriptedCri:
    def __init__(self, exit_codes: dict[str, list[int]]) -> None:
        self.runtime = ScriptedRuntime(exit_codes)


def exec_probe(cmd: str, **extra: Any) -> dict[str, Any]:
    return {"exec": {"command": [cmd]}, "periodSeconds": 0.05, **extra}


async def wait_for(predicate: Any, *, within: float = 3.0) -> None:
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true within {within}s")


async def test_manager_readiness_flips_and_liveness_fails_after_threshold() -> None:
    cri = ScriptedCri({"ready": [0, 0, 1, 1, 0], "live": [0, 1, 1, 1]})
    changes: list[str] = []
    events: list[tuple[str, str, str]] = []
    manager = ProbeManager(cri=cri, on_change=changes.append, on_event=lambda *e: events.append(e))  # type: ignore[arg-type]
    container = {"name": "app", "readinessProbe": exec_probe("ready", failureThreshold=2),
                 "livenessProbe": exec_probe("live", failureThreshold=3)}
    pod = {"metadata": {"uid": "u1"}, "spec": {"containers": [container]}, "status": {"podIP": "127.0.0.1"}}
    try:
        manager.sync(pod, {"app": ("cid-1", 0.0)})
        assert not manager.ready("cid-1")  # readiness starts False
        assert manager.started("cid-1")  # no startup probe
        await wait_for(lambda: manager.ready("cid-1"))
        await wait_for(lambda: not manager.ready("cid-1"))  # two failures in a row
        await wait_for(lambda: manager.ready("cid-1"))  # then success again
        await wait_for(lambda: manager.liveness_failed("cid-1") is not None)
        assert manager.liveness_failed("cid-1") == "Liveness probe failed: live said 1"
        live_calls = cri.runtime.calls.count("live")
        assert live_calls == 4  # 1 success + 3 failures, then held
        await asyncio.sleep(0.2)
        assert cri.runtime.calls.count("live") == live_calls
        assert set(changes) == {"u1"} and len(changes) >= 4
        assert ("u1", "app", "Readiness probe failed: ready said 1") in events
        # the restarted container gets fresh state
        manager.sync(pod, {"app": ("cid-2", 0.0)})
        assert manager.liveness_failed("cid-2") is None and not manager.ready("cid-2")
        assert manager.liveness_failed("cid-1") is None
    finally:
        await manager.close()


async def test_manager_startup_gates_other_probes_and_initial_delay() -> None:
    cri = ScriptedCri({"start": [1, 1, 0], "ready": [0]})
    manager = ProbeManager(cri=cri, on_change=lambda _uid: None)  # type: ignore[arg-type]
    container = {"name": "app", "startupProbe": exec_probe("start", failureThreshold=10),
                 "readinessProbe": exec_probe("ready", initialDelaySeconds=0.3)}
    pod = {"metadata": {"uid": "u2"}, "spec": {"containers": [container]}, "status": {}}
    loop_start = asyncio.get_running_loop().time()
    try:
        manager.sync(pod, {"app": ("c", time.time())})
        assert not manager.started("c") and not manager.ready("c")
        await wait_for(lambda: manager.started("c"))
        assert "ready" not in cri.runtime.calls  # readiness waited for startup
        await wait_for(lambda: manager.ready("c"))
        assert asyncio.get_running_loop().time() - loop_start >= 0.29  # initial delay honoured
        assert cri.runtime.calls.count("start") == 3  # no more startup probes once started
        manager.remove_pod("u2")
        assert manager.ready("c")  # unknown again: no probe registered
    finally:
        await manager.close()


async def test_manager_startup_failure_reports_and_no_probe_is_ready() -> None:
    cri = ScriptedCri({"start": [1]})
    manager = ProbeManager(cri=cri, on_change=lambda _uid: None)  # type: ignore[arg-type]
    pod = {"metadata": {"uid": "u3"}, "status": {}, "spec": {"containers": [
        {"name": "a", "startupProbe": exec_probe("start", failureThreshold=2)}, {"name": "b"}]}}
    try:
        manager.sync(pod, {"a": ("ca", 0.0), "b": ("cb", 0.0)})
        assert manager.ready("cb") and manager.started("cb")
        await wait_for(lambda: manager.liveness_failed("ca") is not None)
        assert manager.liveness_failed("ca") == "Startup probe failed: start said 1"
        manager.sync(pod, {"b": ("cb", 0.0)})  # a stopped: its workers go
        assert manager.liveness_failed("ca") is None
    finally:
        await manager.close()


async def test_manager_http_with_given_pod_ip_and_errors_count_as_failures(http_server: tuple[int, list]) -> None:
    port, _ = http_server
    cri = ScriptedCri({"boom": [0]})
    manager = ProbeManager(cri=cri, on_change=lambda _uid: None)  # type: ignore[arg-type]
    container = {"name": "app", "readinessProbe": {"httpGet": {"path": "/", "port": port}, "periodSeconds": 0.05},
                 "livenessProbe": exec_probe("boom", failureThreshold=1)}
    pod = {"metadata": {"uid": "u4"}, "spec": {"containers": [container]}, "status": {}}
    try:
        manager.sync(pod, {"app": ("c4", 0.0)}, pod_ip="127.0.0.1")
        await wait_for(lambda: manager.ready("c4"))
        await wait_for(lambda: manager.liveness_failed("c4") is not None)
        assert manager.liveness_failed("c4") == "Liveness probe failed: probe errored: runtime exploded"
    finally:
        await manager.close()


async def test_manager_network_probe_waits_for_the_pod_ip(http_server: tuple[int, list]) -> None:
    port, seen = http_server
    events: list[tuple[str, str, str]] = []
    manager = ProbeManager(cri=ScriptedCri({}), on_change=lambda _uid: None,  # type: ignore[arg-type]
                           on_event=lambda *e: events.append(e))
    container = {"name": "app", "readinessProbe": {"httpGet": {"path": "/ip", "port": port}, "periodSeconds": 30}}
    pod = {"metadata": {"uid": "u5"}, "spec": {"containers": [container]}, "status": {}}
    try:
        manager.sync(pod, {"app": ("c5", 0.0)})
        await asyncio.sleep(0.2)
        assert not manager.ready("c5") and not events and not seen  # no IP yet: no probe, no failure
        manager.sync(pod, {"app": ("c5", 0.0)}, pod_ip="127.0.0.1")
        await wait_for(lambda: manager.ready("c5"), within=2)  # at once, not after the 30 s period
    finally:
        await manager.close()
