"""``GET /containerLogs/{ns}/{pod}/{container}``: a container's CRI log file as plain text.

The file is the one the CRI's ContainerStatus names (``log_path``). Without ``follow`` the answer is
the selected lines and ends; with ``follow`` the handler keeps reading what the file grows by until
the container has exited (then drains the rest), and reopens the path when it now names another
file (a rotation). File reads run in a thread; the poll interval bounds ``logs -f`` latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import os
from collections.abc import Callable

from aiohttp import web

from kubelet.cri import CriClient, pb
from kubelet.server import context, pods
from kubelet.server.logfmt import Limiter, LogOptions, LogOptionsError, LogParser, Record, select

POLL = 0.2  # seconds between looks at a followed file
STATUS_EVERY = 5  # polls between checks that the followed container still runs
READ_SIZE = 1 << 20


async def handle(request: web.Request) -> web.StreamResponse:
    ctx = context.of(request)
    ns, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
    try:
        options = LogOptions.from_query(request.query, now=dt.datetime.now(dt.UTC))
    except LogOptionsError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from None
    find = pods.previous_container if options.previous else pods.current_container
    container = await find(ctx.cri, namespace=ns, pod=pod, container=name)
    status = (await ctx.cri.runtime.ContainerStatus(
        pb.ContainerStatusRequest(container_id=container.id), timeout=pods.CALL_TIMEOUT)).status
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    follower = _Follower(path=status.log_path, options=options)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await follower.run(response, cri=ctx.cri, container_id=container.id,
                           follow=options.follow and not options.previous, gone=lambda: _gone(request))
        await response.write_eof()
    follower.close()
    return response


class _Follower:
    """One open log file, its parser and position; ``run`` writes what the options select."""

    def __init__(self, *, path: str, options: LogOptions) -> None:
        self.path = path
        self.options = options
        self.limiter = Limiter(options.limit_bytes)
        self.parser = LogParser()
        self.file: io.BufferedReader | None = None
        self.inode: tuple[int, int] | None = None

    async def run(self, response: web.StreamResponse, *, cri: CriClient, container_id: str, follow: bool,
                  gone: Callable[[], bool]) -> None:
        first = await asyncio.to_thread(self._read)
        await self._send(response, select(first, self.options))
        polls = 0
        while follow and not self.limiter.exhausted and not gone():
            await asyncio.sleep(POLL)
            polls += 1
            records = await asyncio.to_thread(self._read)
            await self._send(response, self._since(records))
            if polls % STATUS_EVERY == 0 and not records and not await _running(cri, container_id):
                await self._send(response, self._since(await asyncio.to_thread(self._read)))
                break
        await self._send(response, self._since(self.parser.flush()))

    def _since(self, records: list[Record]) -> list[Record]:
        return select(records, LogOptions(since=self.options.since))

    async def _send(self, response: web.StreamResponse, records: list[Record]) -> None:
        for record in records:
            data = self.limiter.take(record.render(timestamps=self.options.timestamps))
            if data:
                await response.write(data)
            if self.limiter.exhausted:
                return

    # --------------------------------------------------------------------------- blocking

    def _read(self) -> list[Record]:
        """Records the file grew by; switches to the new file after a rotation."""
        out: list[Record] = []
        if self.file is None:
            self._open()
        if self.file is not None:
            out += self.parser.feed(self.file.read(READ_SIZE))
            if self._rotated():
                out += self.parser.feed(self.file.read())
                self.close()
                self._open()
                if self.file is not None:
                    out += self.parser.feed(self.file.read(READ_SIZE))
        return out

    def _open(self) -> None:
        try:
            self.file = open(self.path, "rb")  # kept open across polls
        except OSError:
            self.file = None
            return
        st = os.fstat(self.file.fileno())
        self.inode = (st.st_dev, st.st_ino)

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False  # moved away and not yet recreated: keep reading the old one
        return (st.st_dev, st.st_ino) != self.inode

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _running(cri: CriClient, container_id: str) -> bool:
    try:
        answer = await cri.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=container_id),
                                                   timeout=pods.CALL_TIMEOUT)
    except Exception:  # gone or unreachable: nothing more will be written
        return False
    return answer.status.state == pb.CONTAINER_RUNNING
