"""Attaching to a running container's main process through conmon's attach socket.

conmon listens on ``BUNDLE/attach``, a SOCK_SEQPACKET unix socket. Every packet it sends is one
chunk of output prefixed by one byte naming the pipe (2 = stdout, 3 = stderr; a TTY's output is
stdout); bytes we send go to the container's stdin (if it was created with ``stdin``), and shutting
down our write side closes that stdin unless the container keeps it open. Terminal resizes go
through conmon's control fifo. We connect through ``/proc/self/fd/N/attach`` (N an O_PATH fd of the
bundle) so deep engine roots never hit the 108-byte limit of socket paths. Attach sees output from
the moment it connects; earlier output is in the log. Async on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

from engine.containers.stdio import Chunk
from engine.runtime import conmon

PIPES = {2: "stdout", 3: "stderr"}
PACKET = 8192 + 1  # conmon's stdio buffer plus the pipe byte
STDIN_PACKET = 8192


class AttachSession:
    """A ``StdioSession`` on a container's main process."""

    def __init__(self, sock: socket.socket, *, bundle: Path) -> None:
        self._sock = sock
        self._bundle = bundle
        self._loop = asyncio.get_running_loop()
        self._eof = False

    @classmethod
    async def open(cls, bundle: Path) -> AttachSession:
        dir_fd = os.open(bundle, os.O_PATH | os.O_CLOEXEC)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dir_fd}/attach")
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(dir_fd)
        return cls(sock, bundle=bundle)

    async def read(self) -> Chunk | None:
        while not self._eof:
            try:
                packet = await self._loop.sock_recv(self._sock, PACKET)
            except OSError:
                packet = b""
            if not packet:
                self._eof = True
                break
            name = PIPES.get(packet[0])
            if name is not None and len(packet) > 1:
                return name, packet[1:]
        return None

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), STDIN_PACKET):
            await self._loop.sock_sendall(self._sock, data[start : start + STDIN_PACKET])

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    async def resize(self, *, height: int, width: int) -> None:
        await asyncio.to_thread(conmon.send_control, self._bundle, kind=1, height=height, width=width)

    async def close(self) -> None:
        self._sock.close()
