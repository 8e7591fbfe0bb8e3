"""File objects that let blocking code (tarfile, the archive and store code, in a worker thread)
read a request body or write a response body that lives on the event loop.

Each read or write hops to the loop and waits for it, which gives natural back-pressure: a slow
client slows the thread down instead of filling memory. Both are wrapped in 1 MiB buffers so the
hop happens once per megabyte, not once per 512-byte tar block.
"""

from __future__ import annotations

import asyncio
import io

from aiohttp import web

BUFFER = 1 << 20


class _BodyRaw(io.RawIOBase):
    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self._content = request.content
        self._loop = loop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        data = asyncio.run_coroutine_threadsafe(self._content.read(want), self._loop).result()
        buffer[: len(data)] = data
        return len(data)


class _ResponseRaw(io.RawIOBase):
    def __init__(self, response: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> None:
        self._response = response
        self._loop = loop

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        chunk = bytes(data)
        asyncio.run_coroutine_threadsafe(self._response.write(chunk), self._loop).result()
        return len(chunk)


def body_reader(request: web.Request) -> io.BufferedReader:
    """A blocking reader of ``request``'s body, for use in a worker thread only."""
    return io.BufferedReader(_BodyRaw(request, asyncio.get_running_loop()), BUFFER)


def response_writer(response: web.StreamResponse) -> io.BufferedWriter:
    """A blocking writer into a prepared ``response``, for use in a worker thread only."""
    return io.BufferedWriter(_ResponseRaw(response, asyncio.get_running_loop()), BUFFER)
