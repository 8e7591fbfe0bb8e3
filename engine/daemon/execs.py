"""Exec endpoints: ``POST /containers/{id}/exec``, ``POST /exec/{id}/start``, ``GET /exec/{id}/json``.

Docker splits an exec in two: create records what to run and returns an id, start runs it (over a
hijacked connection, or detached), and inspect reports whether it runs and its exit code, which
is how the CLI and SDK learn a command's status after the stream ends. So the exit code is
recorded before the stream is closed. Records live in memory (an exec does not survive the daemon,
as in Docker) and are dropped with their container; at most ``KEEP_PER_CONTAINER`` finished ones
are kept per container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from engine.containers.errors import ContainerError
from engine.daemon import frames, streams
from engine.daemon.context import context_of
from engine.daemon.errors import ApiError, BadParameter, NotFound
from engine.daemon.replies import json_response

log = logging.getLogger(__name__)

KEEP_PER_CONTAINER = 64


class ExecConflict(ApiError):
    status = 409


@dataclass
class ExecRecord:
    id: str
    container_id: str
    cmd: list[str]
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    env: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = ""
    privileged: bool = False
    console_size: tuple[int, int] | None = None
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    session: Any = None

    def inspect(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd[0],
                "arguments": self.cmd[1:],
                "privileged": self.privileged,
                "user": self.user,
            },
            "OpenStdin": self.stdin,
            "OpenStderr": self.stderr,
            "OpenStdout": self.stdout,
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": "",
            "Pid": self.pid,
        }


class ExecRegistry:
    """The daemon's exec records, by id."""

    def __init__(self) -> None:
        self._records: dict[str, ExecRecord] = {}

    def add(self, record: ExecRecord) -> None:
        mine = [r for r in self._records.values() if r.container_id == record.container_id and not r.running]
        for old in mine[: max(0, len(mine) - KEEP_PER_CONTAINER + 1)]:
            self._records.pop(old.id, None)
        self._records[record.id] = record

    def get(self, exec_id: str) -> ExecRecord:
        record = self._records.get(exec_id)
        if record is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return record

    def ids_of(self, container_id: str) -> list[str]:
        return [r.id for r in self._records.values() if r.container_id == container_id]

    def forget_container(self, container_id: str) -> None:
        for exec_id in self.ids_of(container_id):
            self._records.pop(exec_id, None)


def _console_size(value: Any) -> tuple[int, int] | None:
    if value in (None, [], [0, 0]):
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v >= 0 for v in value)):
        raise BadParameter("invalid ConsoleSize: want [height, width]")
    return value[0], value[1]


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadParameter(f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise BadParameter("invalid JSON body: expected an object")
    return body


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadParameter(f"invalid {key}: expected a list of strings")
    return value


async def create_exec(request: web.Request) -> web.Response:
    ctx = context_of(request)
    service = ctx.require_containers()
    body = await _json_body(request)
    container = service.manager.get(request.match_info["name"])
    if not container.running:
        raise ExecConflict(f"container {container.id} is not running")
    cmd = _strings(body, "Cmd")
    if not cmd:
        raise BadParameter("No exec command specified")
    record = ExecRecord(
        id=secrets.token_hex(32),
        container_id=container.id,
        cmd=cmd,
        tty=bool(body.get("Tty")),
        stdin=bool(body.get("AttachStdin")),
        stdout=bool(body.get("AttachStdout", True)),
        stderr=bool(body.get("AttachStderr", True)),
        env=_strings(body, "Env"),
        user=str(body.get("User") or ""),
        workdir=str(body.get("WorkingDir") or ""),
        privileged=bool(body.get("Privileged")),
        console_size=_console_size(body.get("ConsoleSize")),
    )
    ctx.execs.add(record)
    service.events.publish(action=f"exec_create: {' '.join(cmd)}", actor_id=container.id,
                           attributes={"name": container.name, "image": container.config.image, "execID": record.id})
    return json_response({"Id": record.id}, status=201)


async def _begin(request: web.Request, record: ExecRecord, *, tty: bool) -> Any:
    """Start the record's process; a command that cannot even be started is a 4xx here."""
    service = context_of(request).require_containers()
    if record.started:
        raise ExecConflict(f"exec instance {record.id} has already been started")
    record.started = record.running = True
    try:
        session = await service.manager.exec_stream(
            record.container_id, record.cmd, tty=tty, stdin=record.stdin, env=record.env,
            user=record.user or None, workdir=record.workdir or None, size=record.console_size,
        )
    except BaseException:
        record.running = False
        record.exit_code = 126
        raise
    record.session, record.pid = session, session.pid
    return session


async def _finish(record: ExecRecord, session: Any) -> int:
    try:
        code = await session.wait()
    finally:
        await session.close()
        record.session = None
    record.exit_code, record.running = code, False
    return code


async def _run_detached(record: ExecRecord, session: Any) -> None:
    try:
        while await session.read() is not None:
            pass
        await _finish(record, session)
    except ContainerError as exc:
        log.info("detached exec %s ended: %s", record.id[:12], exc)


_detached: set[asyncio.Task[None]] = set()


async def start_exec(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    record = ctx.execs.get(request.match_info["id"])
    body = await _json_body(request)
    tty = bool(body.get("Tty", record.tty))
    if size := _console_size(body.get("ConsoleSize")):
        record.console_size = size
    session = await _begin(request, record, tty=tty)
    if body.get("Detach"):
        task = asyncio.ensure_future(_run_detached(record, session))
        _detached.add(task)
        task.add_done_callback(_detached.discard)
        return web.Response(status=200)
    conn = await streams.hijack(request, tty=tty)
    try:
        complete = await streams.pump(session, conn, forward_stdin=record.stdin)
        if not complete:
            await session.close()  # the client left: end the process as dockerd does
        code = await _finish(record, session)
        if session.error and complete:
            with contextlib.suppress(ConnectionResetError):
                await conn.send(frames.STDERR, (session.error + "\n").encode())
        log.debug("exec %s in %s exited with %d", record.id[:12], record.container_id[:12], code)
    finally:
        if record.session is not None:
            await _finish(record, session)
        await conn.close()
    return conn.response


async def inspect_exec(request: web.Request) -> web.Response:
    record = context_of(request).execs.get(request.match_info["id"])
    return json_response(record.inspect())


async def resize_exec(request: web.Request) -> web.Response:
    record = context_of(request).execs.get(request.match_info["id"])
    height, width = terminal_size(request)
    if record.session is None:
        raise ExecConflict(f"exec instance {record.id} is not running")
    await record.session.resize(height=height, width=width)
    return web.Response(status=200)


def terminal_size(request: web.Request) -> tuple[int, int]:
    try:
        return int(request.query.get("h", "")), int(request.query.get("w", ""))
    except ValueError:
        raise BadParameter("resize needs integer h and w") from None
