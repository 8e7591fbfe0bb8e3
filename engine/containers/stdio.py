"""The one shape of every interactive stream: exec sessions and attach sessions alike.

A streaming server (Docker's hijacked HTTP, the CRI's streaming endpoint) needs the same five
operations whether it talks to an exec'd process or to a container's main process through conmon:
read the next chunk with the stream it came from, write to stdin, close stdin, resize the
terminal, close. ``StdioSession`` is that protocol; ``ChunkQueue`` merges several sources into the
one ``read()``; ``FdReader`` reads a raw fd (a pty master) on the event loop, treating the EIO a
pty master gives once its last slave is closed as end of file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from typing import Protocol

Chunk = tuple[str, bytes]  # ("stdout" | "stderr", data)
READ_SIZE = 64 << 10


class StdioSession(Protocol):
    async def read(self) -> Chunk | None:
        """The next output chunk, or None once every output stream has ended."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, *, height: int, width: int) -> None: ...

    async def close(self) -> None: ...


class ChunkQueue:
    """Chunks from ``sources`` producers, in arrival order; ends when every producer has finished."""

    def __init__(self, sources: int) -> None:
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue()
        self._open = sources

    def put(self, chunk: Chunk) -> None:
        self._queue.put_nowait(chunk)

    def finish(self) -> None:
        self._queue.put_nowait(None)

    async def get(self) -> Chunk | None:
        while self._open > 0:
            item = await self._queue.get()
            if item is not None:
                return item
            self._open -= 1
        return None


async def pump_stream(reader: asyncio.StreamReader, *, name: str, into: ChunkQueue) -> None:
    """Copy a StreamReader into the queue until EOF."""
    try:
        while chunk := await reader.read(READ_SIZE):
            into.put((name, chunk))
    finally:
        into.finish()


class FdReader:
    """Non-blocking reads of a raw fd on the loop (EIO from a pty master = EOF)."""

    def __init__(self, fd: int, *, name: str, into: ChunkQueue) -> None:
        self.fd = fd
        self._name = name
        self._into = into
        self._loop = asyncio.get_running_loop()
        self._done = False
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._ready)

    def _ready(self) -> None:
        try:
            chunk = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            chunk = b""
        if chunk:
            self._into.put((self._name, chunk))
        else:
            self.stop()

    def stop(self) -> None:
        if not self._done:
            self._done = True
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.fd)
            self._into.finish()


async def write_fd(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking fd, waiting on the loop when it is full."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_writer(fd)
            continue
        view = view[written:]
