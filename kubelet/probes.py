"""Container probes (exec, httpGet, tcpSocket, grpc) and the manager that runs them on a schedule.

``run_probe`` performs one check the way upstream's prober does and answers (success, message) with
upstream's texts ('HTTP probe failed with statuscode: 500', 'dial tcp IP:PORT: connect: connection
refused'...). ``ProbeManager`` keeps one asyncio task per (pod, container, probe kind), applies
initialDelay/period/thresholds as upstream's probe workers do (readiness starts False, liveness and
readiness wait for a startup probe to pass; a failed liveness/startup result holds until the
container is replaced) and calls ``on_change(pod_uid)`` whenever a result the pod status or the
restart decision depends on changes. The action helpers are shared with lifecycle hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc

from kubelet.containers.expansion import expand, mapping_for
from kubelet.containers.hostport import join_host_port
from kubelet.cri import CriClient, pb

USER_AGENT = "kube-probe/1.32"
MAX_BODY = 10 * 1024
DEFAULT_PERIOD = 10
DEFAULT_TIMEOUT = 1
DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_SUCCESS_THRESHOLD = 1
GRPC_MARGIN = 5.0  # extra seconds the gRPC deadline gives an ExecSync over its own timeout
KINDS = ("startup", "readiness", "liveness")
TITLES = {"startup": "Startup", "readiness": "Readiness", "liveness": "Liveness"}
# errno -> Go's text for a failed dial
DIAL_ERRORS: dict[int, str] = {
    errno.ECONNREFUSED: "connect: connection refused",
    errno.EHOSTUNREACH: "connect: no route to host",
    errno.ENETUNREACH: "connect: network is unreachable",
    errno.ECONNRESET: "read: connection reset by peer",
}
GRPC_SERVING = 1
GRPC_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
# how a failed Check reads (upstream dials blocking, so an unreachable server is a connect timeout)
GRPC_FAILURES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAVAILABLE: 'timeout: failed to connect service "{address}" within {timeout}: '
                                 "context deadline exceeded",
    grpc.StatusCode.DEADLINE_EXCEEDED: "timeout: health rpc did not complete within {timeout}",
    grpc.StatusCode.UNIMPLEMENTED: "error: this server does not implement the grpc health protocol "
                                   "(grpc.health.v1.Health): {details}",
}


class ProbeError(Exception):
    """A probe or hook that cannot even be tried (bad port name, unknown action)."""


# ---------------------------------------------------------------------------------- actions


def resolve_port(port: Any, container: dict[str, Any]) -> int:
    """A port number, or a named container port looked up in ``container.ports``."""
    if isinstance(port, int) and not isinstance(port, bool):
        number = port
    elif isinstance(port, str) and port.isdigit():
        number = int(port)
    else:
        found = [p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == port]
        if not found:
            raise ProbeError(f"couldn't find port: {port} in {container.get('name', '')}")
        number = int(found[0])
    if not 0 < number < 65536:
        raise ProbeError(f"invalid port number: {number}")
    return number


def dial_error(exc: BaseException, address: str) -> str:
    if isinstance(exc, TimeoutError):
        return f"dial tcp {address}: i/o timeout"
    if isinstance(exc, OSError) and exc.errno in DIAL_ERRORS:
        return f"dial tcp {address}: {DIAL_ERRORS[exc.errno]}"
    text = str(getattr(exc, "strerror", None) or exc) or type(exc).__name__
    return f"dial tcp {address}: {text[:1].lower()}{text[1:]}"


async def exec_action(cmd: list[str], *, cri: CriClient, container_id: str,
                      timeout: float) -> tuple[int | None, str, str]:  # noqa: ASYNC109 (the runtime's own)
    """(exit code or None on timeout, combined output, error text) of a command in the container."""
    joined = " ".join(cmd)
    try:
        answer = await cri.runtime.ExecSync(
            pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=max(1, round(timeout))),
            timeout=timeout + GRPC_MARGIN)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return None, "", f'command "{joined}" timed out'
        return None, "", f"rpc error: code = {exc.code().name} desc = {exc.details()}"
    output = (answer.stdout + answer.stderr).decode("utf-8", "replace")
    if answer.exit_code:
        stderr = answer.stderr.decode("utf-8", "replace")
        return answer.exit_code, output, f"command '{joined}' exited with {answer.exit_code}: {stderr}"
    return 0, output, ""


def http_url(action: dict[str, Any], *, pod_ip: str, container: dict[str, Any]) -> str:
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = action.get("host") or pod_ip
    path = str(action.get("path") or "")
    if path and not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{join_host_port(host, resolve_port(action.get('port'), container))}{path}"


async def http_get(action: dict[str, Any], *, pod_ip: str, container: dict[str, Any],
                   timeout: float,  # noqa: ASYNC109 (the probe's timeoutSeconds, given to the client)
                   session: aiohttp.ClientSession | None = None) -> tuple[int | None, str]:
    """(status code, body) of a GET as upstream's prober sends it; (None, Go-like error) when it fails."""
    url = http_url(action, pod_ip=pod_ip, container=container)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        headers[str(header.get("name", ""))] = str(header.get("value", ""))
    own = session is None
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=False))
    try:
        async with session.get(url, headers=headers, allow_redirects=False, ssl=False,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.content.read(MAX_BODY)
            return response.status, body.decode("utf-8", "replace")
    except TimeoutError:
        return None, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except aiohttp.ClientConnectorError as exc:
        address = join_host_port(exc.host, exc.port)
        return None, f'Get "{url}": {dial_error(exc.os_error, address)}'
    except aiohttp.ClientError as exc:
        return None, f'Get "{url}": {exc}'
    finally:
        if own:
            await session.close()


async def tcp_connect(host: str, port: int, *, timeout: float) -> str | None:  # noqa: ASYNC109 (timeoutSeconds)
    """None when a connection opens within ``timeout``, else Go's dial error text."""
    address = join_host_port(host, port)
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        return dial_error(exc, address)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while pos < len(data):
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            break
        shift += 7
    return result, pos


def _encode_varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _health_request(service: str) -> bytes:
    """HealthCheckRequest{service} in protobuf wire form (field 1, length-delimited)."""
    raw = service.encode()
    return (b"\x0a" + _encode_varint(len(raw)) + raw) if raw else b""


def _health_status(data: bytes) -> int:
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        if tag == 0x08:
            return _varint(data, pos)[0]
        if tag & 7 == 2:
            length, pos = _varint(data, pos)
            pos += length
        else:
            pos = _varint(data, pos)[1]
    return 0


async def grpc_check(address: str, service: str, *, timeout: float) -> str | None:  # noqa: ASYNC109 (the RPC's)
    """None when grpc.health.v1 Check says SERVING, else upstream's failure text."""
    async with grpc.aio.insecure_channel(address, options=[("grpc.primary_user_agent", USER_AGENT)]) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            answer = await check(_health_request(service), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            text = GRPC_FAILURES.get(exc.code(), "error: health rpc probe failed: {details}")
            return text.format(address=address, timeout=go_seconds(timeout), details=exc.details())
    status = _health_status(answer)
    if status != GRPC_SERVING:
        return f'service unhealthy (responded with "{GRPC_STATUS.get(status, str(status))}")'
    return None  # upstream's output: "service healthy"


def static_command(cmd: list[Any], container: dict[str, Any]) -> list[str]:
    """A probe's command with ``$(VAR)`` expanded against the container's literal env values only
    (a ``valueFrom`` variable reads as empty), as upstream's ExpandContainerCommandOnlyStatic."""
    lookup = mapping_for({str(e.get("name", "")): str(e.get("value") or "") for e in container.get("env") or []})
    return [expand(str(c), lookup) for c in cmd]


def go_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


@dataclass(frozen=True)
class _Target:
    """What every probe action needs besides its own spec."""

    cri: CriClient
    container_id: str
    pod_ip: str
    container: dict[str, Any]
    timeout: float
    session: aiohttp.ClientSession | None


async def _probe_exec(action: dict[str, Any], t: _Target) -> tuple[bool, str]:
    cmd = static_command(action.get("command") or [], t.container)
    code, output, error = await exec_action(cmd, cri=t.cri, container_id=t.container_id, timeout=t.timeout)
    return (False, error) if code is None else (code == 0, output)


async def _probe_http(action: dict[str, Any], t: _Target) -> tuple[bool, str]:
    status, body = await http_get(action, pod_ip=t.pod_ip, container=t.container, timeout=t.timeout,
                                  session=t.session)
    if status is None:
        return False, body
    if 200 <= status < 400:
        return True, body
    return False, f"HTTP probe failed with statuscode: {status}"


async def _probe_tcp(action: dict[str, Any], t: _Target) -> tuple[bool, str]:
    port = resolve_port(action.get("port"), t.container)
    error = await tcp_connect(action.get("host") or t.pod_ip, port, timeout=t.timeout)
    return error is None, error or ""


async def _probe_grpc(action: dict[str, Any], t: _Target) -> tuple[bool, str]:
    port = resolve_port(action.get("port"), t.container)
    error = await grpc_check(join_host_port(t.pod_ip, port), str(action.get("service") or ""), timeout=t.timeout)
    return error is None, error or ""


PROBE_ACTIONS = {"exec": _probe_exec, "httpGet": _probe_http, "tcpSocket": _probe_tcp, "grpc": _probe_grpc}


async def run_probe(probe: dict[str, Any], *, cri: CriClient, container_id: str, pod_ip: str,
                    container: dict[str, Any], session: aiohttp.ClientSession | None = None) -> tuple[bool, str]:
    """One check: (succeeded, upstream's output or failure message)."""
    target = _Target(cri=cri, container_id=container_id, pod_ip=pod_ip, container=container,
                     timeout=float(probe.get("timeoutSeconds") or DEFAULT_TIMEOUT), session=session)
    for kind, action in PROBE_ACTIONS.items():
        if kind in probe:
            try:
                return await action(probe[kind] or {}, target)
            except ProbeError as exc:
                return False, str(exc)
    return False, "missing probe handler"


# ---------------------------------------------------------------------------------- manager


@dataclass(eq=False)
class _Worker:
    kind: str
    pod_uid: str
    container: dict[str, Any]
    container_id: str
    started_at: float
    pod_ip: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last: bool | None = None
    run: int = 0
    on_hold: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def probe(self) -> dict[str, Any]:
        return self.container.get(f"{self.kind}Probe") or {}


def _pod_ip(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("podIP") or "")


def _awaits_ip(worker: _Worker) -> bool:
    """A network probe without its own host cannot run before the pod's IP is known (upstream's
    prober always has it from the runtime); it is not counted as a failure meanwhile."""
    probe = worker.probe
    needs = [k for k in ("httpGet", "tcpSocket", "grpc") if k in probe]
    return bool(needs) and not worker.pod_ip and not (probe[needs[0]] or {}).get("host")


def _probed_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Regular containers and sidecars (init containers with restartPolicy Always)."""
    spec = pod.get("spec", {})
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    return [*sidecars, *(spec.get("containers") or [])]


class ProbeManager:
    """Probe workers for every running container of every pod ``sync`` was told about."""

    def __init__(self, *, cri: CriClient, on_change: Callable[[str], None],
                 on_event: Callable[[str, str, str], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``on_event(pod_uid, container_name, message)`` hears every failed check with upstream's
        Unhealthy text ('Readiness probe failed: ...'); ``clock`` gives epoch seconds."""
        self.cri, self.on_change, self.on_event, self.clock = cri, on_change, on_event, clock
        self._workers: dict[tuple[str, str, str], _Worker] = {}
        self._kinds: dict[str, set[str]] = {}  # container id -> kinds of probe it has
        self._results: dict[tuple[str, str], bool] = {}  # (container id, kind) -> settled result
        self._failed: dict[str, str] = {}  # container id -> liveness/startup failure message
        self._session: aiohttp.ClientSession | None = None

    # ---- what the pod worker asks

    def ready(self, container_id: str) -> bool:
        kinds = self._kinds.get(container_id)
        if kinds is None:
            return True  # no probe registered: ready while running, as upstream
        if not self.started(container_id):
            return False
        return "readiness" not in kinds or self._results.get((container_id, "readiness"), False)

    def started(self, container_id: str) -> bool:
        kinds = self._kinds.get(container_id)
        if kinds is None or "startup" not in kinds:
            return True
        return self._results.get((container_id, "startup"), False)

    def liveness_failed(self, container_id: str) -> str | None:
        """'Liveness probe failed: ...' (or 'Startup probe failed: ...') once the probe has failed
        failureThreshold times in a row; the container must then be killed and restarted."""
        return self._failed.get(container_id)

    # ---- what the pod worker tells

    def sync(self, pod: dict[str, Any], running: dict[str, tuple[str, float]], *, pod_ip: str | None = None) -> None:
        """Start workers for newly running containers, replace those of restarted ones (new id),
        stop those of containers no longer running. ``pod_ip`` overrides ``status.podIP`` (the
        kubelet knows the sandbox's IP before the API object carries it)."""
        uid = str(pod.get("metadata", {}).get("uid", ""))
        address = pod_ip or _pod_ip(pod)
        wanted: set[tuple[str, str, str]] = set()
        for container in _probed_containers(pod):
            name = str(container.get("name", ""))
            if name not in running:
                continue
            container_id, started_at = running[name]
            kinds = {k for k in KINDS if container.get(f"{k}Probe")}
            if kinds:
                self._kinds[container_id] = kinds
            for kind in kinds:
                key = (uid, name, kind)
                wanted.add(key)
                worker = self._workers.get(key)
                if worker is not None and worker.container_id == container_id:
                    if address and not worker.pod_ip:
                        worker.wake.set()  # it was waiting for the pod's IP
                    worker.container, worker.pod_ip = container, address or worker.pod_ip
                    continue
                if worker is not None:
                    self._stop(key)
                self._start(_Worker(kind=kind, pod_uid=uid, container=container, container_id=container_id,
                                    started_at=started_at, pod_ip=address), key)
        for key in [k for k in self._workers if k[0] == uid and k not in wanted]:
            self._stop(key)

    def remove_pod(self, pod_uid: str) -> None:
        for key in [k for k in self._workers if k[0] == pod_uid]:
            self._stop(key)

    async def close(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task]
        for key in list(self._workers):
            self._stop(key)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- workers

    def _start(self, worker: _Worker, key: tuple[str, str, str]) -> None:
        self._workers[key] = worker
        worker.task = asyncio.get_running_loop().create_task(self._run(worker), name=f"probe-{'/'.join(key)}")

    def _stop(self, key: tuple[str, str, str]) -> None:
        worker = self._workers.pop(key)
        if worker.task is not None:
            worker.task.cancel()
        cid = worker.container_id
        self._results.pop((cid, worker.kind), None)
        if not any(w.container_id == cid for w in self._workers.values()):
            self._kinds.pop(cid, None)
            self._failed.pop(cid, None)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=False))
        return self._session

    async def _sleep(self, worker: _Worker, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await worker.wake.wait()
        worker.wake.clear()

    async def _run(self, worker: _Worker) -> None:
        probe = worker.probe
        period = float(probe.get("periodSeconds") or DEFAULT_PERIOD)
        delay = float(probe.get("initialDelaySeconds") or 0)
        while True:
            pending = worker.started_at + delay - self.clock()
            if pending > 0:
                await self._sleep(worker, pending)
                continue
            started = self.started(worker.container_id)
            if worker.kind == "startup" and started:
                return  # a replaced container gets a new worker
            if (worker.kind == "startup" or started) and not worker.on_hold and not _awaits_ip(worker):
                try:
                    ok, output = await run_probe(worker.probe, cri=self.cri, container_id=worker.container_id,
                                                 pod_ip=worker.pod_ip, container=worker.container,
                                                 session=self._http())
                except Exception as exc:  # a probe that cannot run counts as failed, the worker goes on
                    ok, output = False, f"probe errored: {exc}"
                self._record(worker, ok=ok, output=output)
            await self._sleep(worker, period)

    def _record(self, worker: _Worker, *, ok: bool, output: str) -> None:
        name, probe = str(worker.container.get("name", "")), worker.probe
        if not ok and self.on_event is not None:
            self.on_event(worker.pod_uid, name, f"{TITLES[worker.kind]} probe failed: {output}")
        if ok == worker.last:
            worker.run += 1
        else:
            worker.last, worker.run = ok, 1
        if ok:
            threshold = int(probe.get("successThreshold") or DEFAULT_SUCCESS_THRESHOLD)
        else:
            threshold = int(probe.get("failureThreshold") or DEFAULT_FAILURE_THRESHOLD)
        if worker.run < threshold:
            return
        key = (worker.container_id, worker.kind)
        changed = self._results.get(key) != ok
        self._results[key] = ok
        if not ok and worker.kind in ("liveness", "startup"):
            self._failed[worker.container_id] = f"{TITLES[worker.kind]} probe failed: {output}"
            worker.on_hold, worker.run, changed = True, 0, True
        if ok and worker.kind == "startup":
            for other in self._workers.values():
                if other.container_id == worker.container_id:
                    other.wake.set()
        if changed:
            self.on_change(worker.pod_uid)
