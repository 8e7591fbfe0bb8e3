"""Docker's streamed JSON messages: the response shape of pull, push, load and build.

Docker answers these with a 200 and then one JSON object per line (``{"status": ..., "id": ...}``
progress, ``{"stream": "..."}`` text, ``{"aux": {...}}`` results, ``{"error": ...}`` failures). The
status line is only sent with the first message, so a failure before any progress (a bad reference,
an unknown image, an unreachable registry) still becomes a plain HTTP error the CLI and SDK map to
their usual exceptions; a failure after it becomes an error message inside the stream.

``emit`` may be called from the event loop or from a worker thread (the builder reports progress
from threads); messages are queued and written in order by the request's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from engine.daemon import errors
from engine.daemon.units import progress_bar

log = logging.getLogger(__name__)

T = TypeVar("T")
CONTENT_TYPE = "application/json"


class JsonStream:
    """One streamed response, opened lazily by its first message."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @property
    def started(self) -> bool:
        return self.response is not None

    def emit(self, message: dict[str, Any]) -> None:
        """Queue a message; safe from any thread, never blocks."""
        if threading.get_ident() == self._loop_thread:
            self._queue.put_nowait(message)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, message)

    async def _write(self, message: dict[str, Any]) -> None:
        if self.response is None:
            response = web.StreamResponse(status=200, headers={"Content-Type": CONTENT_TYPE})
            response.enable_chunked_encoding()
            await response.prepare(self.request)
            self.response = response
        await self.response.write(orjson.dumps(message) + b"\r\n")

    async def _drain(self) -> None:
        while not self._queue.empty():
            await self._write(self._queue.get_nowait())

    async def run(self, work: Awaitable[T]) -> T:
        """Await ``work`` while writing what it emits; its exception propagates (work is cancelled
        if the client goes away)."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                getter = asyncio.ensure_future(self._queue.get())
                done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await self._write(getter.result())
                else:
                    getter.cancel()
                if task in done:
                    await self._drain()
                    return task.result()
        except BaseException:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            raise

    async def finish(self) -> web.StreamResponse:
        """Flush what is queued and end the response (an empty 200 if nothing was ever sent)."""
        await self._drain()
        if self.response is None:
            self.response = web.StreamResponse(status=200, headers={"Content-Type": CONTENT_TYPE})
            await self.response.prepare(self.request)
        await self.response.write_eof()
        return self.response


async def respond(request: web.Request, work: Callable[[JsonStream], Awaitable[Any]]) -> web.StreamResponse:
    """Run ``work(stream)`` as a streamed response, with Docker's error rules (see module doc)."""
    stream = JsonStream(request)
    try:
        await stream.run(work(stream))
    except ConnectionResetError:
        log.info("%s %s: client went away", request.method, request.path)
        return stream.response or web.StreamResponse()
    except Exception as exc:
        if not stream.started:
            raise
        if not errors.is_expected(exc):
            log.exception("%s %s failed mid-stream", request.method, request.path)
        with contextlib.suppress(ConnectionResetError):
            await stream._write(errors.stream_error(errors.message_of(exc)))
    with contextlib.suppress(ConnectionResetError):
        return await stream.finish()
    return stream.response or web.StreamResponse()


def progress_message(*, id: str | None, status: str, current: int = 0, total: int = 0) -> dict[str, Any]:
    """A progress line as ``docker pull/push`` send them (a bar only while bytes are moving)."""
    message: dict[str, Any] = {"status": status}
    if total > 0 and current < total:
        message["progressDetail"] = {"current": current, "total": total}
        message["progress"] = progress_bar(current, total)
    else:
        message["progressDetail"] = {}
    if id:
        message["id"] = id
    return message


def stream_text(text: str) -> dict[str, Any]:
    """A ``{"stream": ...}`` message: build output and load results, newline-terminated."""
    return {"stream": text if text.endswith("\n") else text + "\n"}
