"""Container endpoints of the Docker Engine API: create, start, stop, kill, restart, wait, remove,
list, inspect, logs, attach, resize, stats, top, prune.

Each handler parses Docker's parameters, calls the container service (``service``) or the
manager's lookups, and answers in Docker's shape (``ctrshapes``). Streams: ``wait`` sends its
headers at once and its body at the exit, as dockerd does since API 1.30 (the CLI waits for those
headers before it starts the container); ``logs`` is a chunked stream of frames (``frames``)
unless the container has a TTY; ``attach`` hijacks the connection (``streams``). Long waits check
that the client is still there, so an abandoned request never holds a task forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from aiohttp import web

from engine.containers.attach import AttachSession
from engine.containers.errors import ContainerError, NotRunning
from engine.containers.logs import LogLine
from engine.containers.record import Container, Status
from engine.daemon import createbody, ctrshapes, frames, hoststats, params, streams
from engine.daemon.context import EngineContext, context_of
from engine.daemon.errors import BadParameter
from engine.daemon.events import parse_time
from engine.daemon.execs import terminal_size
from engine.daemon.network import Endpoint
from engine.daemon.replies import json_response
from engine.daemon.service import ContainerService, endpoint_key

T = TypeVar("T")
POLL = 0.5  # seconds between "is the client still there?" checks in long waits
STATS_INTERVAL = 1.0  # seconds between streamed stats samples (dockerd's)
NO_STREAM_GAP = 0.5  # seconds between the two samples of a one-off stats reply (for CPU %)


def _service(request: web.Request) -> ContainerService:
    return context_of(request).require_containers()


def _container(request: web.Request) -> Container:
    return _service(request).manager.get(request.match_info["name"])


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


async def _guarded(request: web.Request, items: AsyncIterator[T]) -> AsyncIterator[T]:
    """``items`` until they end or the client goes away (checked every ``POLL`` seconds)."""
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(items))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=POLL)
            if not done:
                if streams.client_gone(request):
                    return
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            yield item
            pending = asyncio.ensure_future(anext(items))
    finally:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        with contextlib.suppress(BaseException):
            await items.aclose()  # type: ignore[attr-defined]


async def _until_gone(request: web.Request, work: asyncio.Future[T]) -> T | None:
    """The result of ``work``, or None (and ``work`` cancelled) if the client leaves first."""
    try:
        while True:
            done, _ = await asyncio.wait({work}, timeout=POLL)
            if done:
                return work.result()
            if streams.client_gone(request):
                return None
    finally:
        if not work.done():
            work.cancel()
            with contextlib.suppress(BaseException):
                await work


# ---------------------------------------------------------------------------------- create


async def create_container(request: web.Request) -> web.Response:
    service = _service(request)
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise BadParameter(f"invalid JSON: {exc}") from None
    create = createbody.parse(body, name=request.query.get("name") or None)
    container, warnings = await service.create(create)
    return json_response({"Id": container.id, "Warnings": warnings}, status=201)


# ---------------------------------------------------------------------------------- lifecycle


def _timeout(request: web.Request) -> float | None:
    raw = request.query.get("t", "")
    if not raw:
        return None
    try:
        return float(int(raw))
    except ValueError:
        raise BadParameter(f"invalid value for 't': {raw!r} is not an integer") from None


async def start_container(request: web.Request) -> web.Response:
    service = _service(request)
    if _container(request).running:
        return web.Response(status=304)
    await service.start(request.match_info["name"])
    return web.Response(status=204)


async def stop_container(request: web.Request) -> web.Response:
    stopped = await _service(request).stop(request.match_info["name"], _timeout(request))
    return web.Response(status=204 if stopped else 304)


async def restart_container(request: web.Request) -> web.Response:
    await _service(request).restart(request.match_info["name"], _timeout(request))
    return web.Response(status=204)


async def kill_container(request: web.Request) -> web.Response:
    await _service(request).kill(request.match_info["name"], request.query.get("signal") or "SIGKILL")
    return web.Response(status=204)


async def remove_container(request: web.Request) -> web.Response:
    await _service(request).remove(request.match_info["name"], force=params.flag(request, "force"))
    return web.Response(status=204)


async def wait_container(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise BadParameter(f'invalid condition: "{condition}"')
    container = _container(request)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)  # headers now: the CLI starts the container only after them
    body: dict[str, Any]
    try:
        code = await _until_gone(request, asyncio.ensure_future(service.wait(container.id, condition)))
        if code is None:
            return response
        body = {"StatusCode": code, "Error": None}
    except ContainerError as exc:
        body = {"StatusCode": -1, "Error": {"Message": str(exc)}}
    with contextlib.suppress(ConnectionResetError):
        await response.write(orjson.dumps(body) + b"\n")
        await response.write_eof()
    return response


# ----------------------------------------------------------------------------- list/inspect


def _label(container: Container, wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in container.config.labels and (not sep or container.config.labels[key] == value)


def _ancestor(ctx: EngineContext, container: Container, wanted: str) -> bool:
    if container.config.image == wanted or container.state.image_id.removeprefix("sha256:").startswith(
        wanted.removeprefix("sha256:")
    ):
        return True
    try:
        return ctx.store.resolve(wanted).id == container.state.image_id
    except Exception:  # an unknown or malformed reference matches nothing
        return False


def _exited(container: Container, wanted: str) -> bool:
    if not wanted.lstrip("-").isdigit():
        raise BadParameter(f"invalid filter 'exited={wanted}': not an exit code")
    return container.state.status is Status.EXITED and container.state.exit_code == int(wanted)


ListPredicate = Callable[[EngineContext, Container, str], bool]
_LIST_FILTERS: dict[str, ListPredicate] = {
    "id": lambda _, c, v: c.id.startswith(v),
    "name": lambda _, c, v: re.search(v.lstrip("/"), c.name) is not None,
    "label": lambda _, c, v: _label(c, v),
    "status": lambda _, c, v: c.state.status.value == v,
    "exited": lambda _, c, v: _exited(c, v),
    "ancestor": _ancestor,
    "network": lambda _, c, v: ctrshapes.network_mode(c) == v,
}


def _selected(ctx: EngineContext, container: Container, wanted: dict[str, list[str]]) -> bool:
    for key, values in wanted.items():
        test = _LIST_FILTERS[key]
        combine = all if key == "label" else any
        if not combine(test(ctx, container, v) for v in values):
            return False
    return True


async def list_containers(request: web.Request) -> web.Response:
    ctx = context_of(request)
    service = ctx.require_containers()
    wanted = params.filters(request, allowed=frozenset(_LIST_FILTERS))
    limit_raw = request.query.get("limit", "")
    try:
        limit = int(limit_raw) if limit_raw else -1
    except ValueError:
        raise BadParameter(f"invalid value for 'limit': {limit_raw!r}") from None
    show_all = params.flag(request, "all") or limit > 0 or "status" in wanted or "exited" in wanted
    chosen = [c for c in service.manager.list(all=show_all) if _selected(ctx, c, wanted)]
    if limit > 0:
        chosen = chosen[:limit]
    now = time.time()

    def rows() -> list[dict[str, Any]]:
        return [
            ctrshapes.summary(c, args=service.resolved(c).args, endpoint=_endpoint_of(service, c), now=now)
            for c in chosen
        ]

    return json_response(await asyncio.to_thread(rows))


def _endpoint_of(service: ContainerService, container: Container) -> Endpoint | None:
    """Blocking (a small file read): the container's bridge endpoint, if it has one."""
    key = endpoint_key(container)
    return service.networks.endpoint(key) if key else None


async def inspect_container(request: web.Request) -> web.Response:
    ctx = context_of(request)
    service = ctx.require_containers()
    container = _container(request)
    resolved = service.resolved(container)
    endpoint = await asyncio.to_thread(_endpoint_of, service, container)
    return json_response(
        ctrshapes.inspect(container, args=resolved.args, env=resolved.env, image_settings=resolved.settings,
                          endpoint=endpoint, exec_ids=ctx.execs.ids_of(container.id), runtime=service.manager.runtime)
    )


# ------------------------------------------------------------------------------------- logs


def _tail(request: web.Request) -> int | None:
    raw = request.query.get("tail", "all") or "all"
    if raw == "all":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"invalid value for 'tail': {raw!r}") from None
    return None if value < 0 else value


async def container_logs(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    container = _container(request)
    stdout, stderr = params.flag(request, "stdout"), params.flag(request, "stderr")
    if not (stdout or stderr):
        raise BadParameter("Bad parameters: you must choose at least one stream")
    since = parse_time(request.query.get("since", ""), "since") or None
    until = parse_time(request.query.get("until", ""), "until") or None
    timestamps = params.flag(request, "timestamps")
    lines = service.manager.logs(container.id, follow=params.flag(request, "follow"), tail=_tail(request),
                                 since=since, until=until, stdout=stdout, stderr=stderr)
    tty = container.config.tty
    response = web.StreamResponse(status=200, headers={"Content-Type": streams.stream_content_type(request, tty=tty)})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await _write_log_lines(response, _guarded(request, lines), tty=tty, timestamps=timestamps)
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


async def _write_log_lines(response: web.StreamResponse, lines: AsyncIterator[LogLine], *, tty: bool,
                           timestamps: bool) -> None:
    """Each line as soon as it is read (a follower sees it at once), framed unless TTY."""
    async for line in lines:
        await _write_batch(response, line.stream, line.render(timestamps=timestamps), tty=tty)


async def _write_batch(response: web.StreamResponse, stream: str, data: bytes, *, tty: bool) -> None:
    number = frames.STDERR if stream == "stderr" else frames.STDOUT
    await response.write(data if tty else frames.encode(number, data))


# ----------------------------------------------------------------------------------- attach


class _Selected:
    """A session whose output is limited to the streams the client asked for."""

    def __init__(self, session: Any, *, keep: frozenset[str]) -> None:
        self._session = session
        self._keep = keep

    async def read(self) -> tuple[str, bytes] | None:
        while (chunk := await self._session.read()) is not None:
            if chunk[0] in self._keep:
                return chunk
        return None

    async def write(self, data: bytes) -> None:
        await self._session.write(data)

    async def close_stdin(self) -> None:
        await self._session.close_stdin()


async def attach_container(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    container = _container(request)
    want_stdin = params.flag(request, "stdin")
    keep = frozenset(n for n in ("stdout", "stderr") if params.flag(request, n))
    stream, logs = params.flag(request, "stream"), params.flag(request, "logs")
    session = None
    if stream:
        if container.state.status not in (Status.CREATED, Status.RUNNING):
            raise NotRunning("You cannot attach to a stopped container, start it first")
        try:
            session = await AttachSession.open(container.paths.bundle)
        except OSError as exc:
            raise NotRunning(f"cannot attach to container {container.id}: {exc.strerror or exc}") from None
    try:
        conn = await streams.hijack(request, tty=container.config.tty)
        try:
            if logs and keep:
                async for line in service.manager.logs(container.id, stdout="stdout" in keep,
                                                       stderr="stderr" in keep):
                    await conn.send(frames.STDERR if line.stream == "stderr" else frames.STDOUT, line.data)
            if session is not None:
                await streams.pump(_Selected(session, keep=keep), conn,
                                   forward_stdin=want_stdin and container.config.stdin)
        except ConnectionResetError:
            pass
        finally:
            await conn.close()
        return conn.response
    finally:
        if session is not None:
            await session.close()


async def resize_container(request: web.Request) -> web.Response:
    height, width = terminal_size(request)
    await _service(request).manager.resize(request.match_info["name"], height=height, width=width)
    return web.Response(status=200)


# ------------------------------------------------------------------------------ stats / top


async def _sample(service: ContainerService, container: Container) -> tuple[dict[str, int], dict[str, Any]]:
    stats = await service.manager.stats(container.id)
    pid = service.manager.get(container.id).state.pid if container.running else 0
    return await asyncio.to_thread(lambda: (hoststats.sample(stats), hoststats.net_dev(pid)))


async def container_stats(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    container = _container(request)
    stream = params.flag(request, "stream", default=True)
    one_shot = params.flag(request, "one-shot")
    memory = await asyncio.to_thread(hoststats.host_memory)
    previous: dict[str, int] | None = None
    preread = ctrshapes.ZERO_TIME
    if not stream and not one_shot:
        previous, _ = await _sample(service, container)
        preread = _now_iso()
        await asyncio.sleep(NO_STREAM_GAP)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    if stream:
        response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        while True:
            with contextlib.suppress(ContainerError):
                container = service.manager.get(container.id)
            sample, networks = await _sample(service, container)
            read = _now_iso()
            doc = ctrshapes.stats(container, sample=sample, previous=previous, read=read, preread=preread,
                                  host_memory=memory, networks=networks)
            await response.write(orjson.dumps(doc) + b"\n")
            if not stream:
                break
            previous, preread = sample, read
            await asyncio.sleep(STATS_INTERVAL)
            if streams.client_gone(request):
                break
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


async def container_top(request: web.Request) -> web.Response:
    ps_args = request.query.get("ps_args") or "-ef"
    titles, rows = await _service(request).manager.top(request.match_info["name"], ps_args=ps_args)
    return json_response({"Titles": titles, "Processes": rows})


# ------------------------------------------------------------------------------------ prune

_PRUNE_FILTERS = frozenset({"label", "until"})


async def prune_containers(request: web.Request) -> web.Response:
    service = _service(request)
    wanted = params.filters(request, allowed=_PRUNE_FILTERS)
    until = [parse_time(v, "until") or 0.0 for v in wanted.get("until", [])]
    deleted = []
    for container in service.manager.list(all=True):
        if container.state.status is Status.RUNNING:
            continue
        if not all(_label(container, v) for v in wanted.get("label", [])):
            continue
        if until and not all(ctrshapes.parse_time(container.state.created_at) < u for u in until):
            continue
        with contextlib.suppress(ContainerError):
            await service.remove(container.id, force=False)
            deleted.append(container.id)
    return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": 0})
