"""Docker's multiplexed-stream framing: how stdout and stderr share one connection without a TTY.

Each frame is an 8-byte header (the stream: 0 stdin, 1 stdout, 2 stderr, 3 a daemon-side error;
three zero bytes; the payload length, 32-bit big-endian) and then the payload. Logs, attach and exec
start use it whenever the container has no TTY; with a TTY the bytes go out raw. Standard library
only: the daemon writes frames and the fast-starting ``pinnace engine`` client reads them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

STDIN, STDOUT, STDERR, SYSTEM_ERROR = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxL")
MAX_FRAME = 1 << 20  # payloads above this are split; nothing requires it but it bounds buffers


class FrameError(ValueError):
    """The bytes are not a multiplexed stream (bad header, an unknown stream number)."""


def encode(stream: int, data: bytes) -> bytes:
    """``data`` as one or more frames of ``stream`` (empty data gives no frame: a zero-length
    frame would tell some clients the stream ended)."""
    if stream not in (STDIN, STDOUT, STDERR, SYSTEM_ERROR):
        raise FrameError(f"unknown stream number {stream}")
    parts = []
    for start in range(0, len(data), MAX_FRAME):
        chunk = data[start : start + MAX_FRAME]
        parts.append(HEADER.pack(stream, len(chunk)) + chunk)
    return b"".join(parts)


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes as they arrive, get back the complete frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER.size:
            stream, length = HEADER.unpack_from(self._buffer)
            if stream > SYSTEM_ERROR or self._buffer[1:4] != b"\0\0\0":
                raise FrameError(f"not a multiplexed stream (header {bytes(self._buffer[:8]).hex()})")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((stream, bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (non-zero at EOF means a truncated stream)."""
        return len(self._buffer)


def decode_all(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Every frame of a complete stream; a truncated tail is an error."""
    decoder = FrameDecoder()
    yield from decoder.feed(data)
    if decoder.pending:
        raise FrameError(f"stream ends inside a frame ({decoder.pending} bytes left over)")
