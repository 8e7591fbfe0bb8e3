"""A small SPDY/3 framer: the byte stream kubectl's port-forward sends inside WebSocket messages.

kubectl 1.32 tunnels SPDY/3.1 through a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``);
the binary messages, concatenated, are SPDY frames, and one frame may span several messages, so
:meth:`Framer.feed` buffers and returns whole frames. Control frames are
``0x80 0x03 <type u16> <flags u8> <length u24> payload``, data frames ``<stream id u31> <flags u8>
<length u24> data``. Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are ``n u32`` then n pairs of
u32-length-prefixed name and value, compressed by one zlib stream per direction seeded with the SPDY/3
dictionary and flushed with ``Z_SYNC_FLUSH`` after each block. Only what port-forward needs is here:
SYN_STREAM, SYN_REPLY, RST_STREAM, PING, GOAWAY, and data; SETTINGS, WINDOW_UPDATE and HEADERS are
parsed as opaque control frames (kubectl does not need answers to them).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from kubelet.server.spdy_dict import DICTIONARY

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
#: RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6
MAX_FRAME = 8 << 20  # far above the 32 KiB data frames kubectl writes; more means a broken stream
HEADER = struct.Struct(">IB3s")


class SpdyError(ValueError):
    """A byte stream that is not SPDY/3 (answered by closing the session)."""


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class ControlFrame:
    kind: int
    flags: int
    payload: bytes


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: dict[str, str]
    fin: bool = False
    associated_id: int = 0
    priority: int = 0


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: dict[str, str]
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_stream_id: int
    status: int = 0


Frame = DataFrame | ControlFrame | SynStream | SynReply | RstStream | Ping | GoAway


def encode_headers(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name, raw_value = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(raw_name)), raw_name, struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, str]:
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos, headers = 4, {}
        for _ in range(count):
            (size,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + size]
            pos += 4 + size
            (size,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + size]
            pos += 4 + size
            headers[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    except struct.error:
        raise SpdyError("truncated SPDY header block") from None
    return headers


@dataclass
class Framer:
    """One side of a SPDY/3 session: ``feed`` the peer's bytes, build our frames with the rest."""

    _buffer: bytearray = field(default_factory=bytearray)
    _inflate: zlib._Decompress = field(default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))
    _deflate: zlib._Compress = field(
        default_factory=lambda: zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY))

    # ------------------------------------------------------------------------------ reading

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by ``data`` (the rest stays buffered for the next call)."""
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, flags, raw_length = HEADER.unpack_from(self._buffer, 0)
            length = int.from_bytes(raw_length, "big")
            if length > MAX_FRAME:
                raise SpdyError(f"SPDY frame of {length} bytes is too large")
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._frame(first, flags, payload))
        return frames

    def _frame(self, first: int, flags: int, payload: bytes) -> Frame:
        if not first & 0x80000000:
            return DataFrame(first & 0x7FFFFFFF, payload, fin=bool(flags & FLAG_FIN))
        version, kind = first >> 16 & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        try:
            return self._control(kind, flags, payload)
        except struct.error:
            raise SpdyError(f"truncated SPDY control frame of type {kind}") from None

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame:
        if kind == SYN_STREAM:
            stream_id, assoc, priority = struct.unpack_from(">IIB", payload, 0)
            return SynStream(stream_id & 0x7FFFFFFF, self._headers(payload[10:]), fin=bool(flags & FLAG_FIN),
                             associated_id=assoc & 0x7FFFFFFF, priority=priority >> 5)
        if kind == SYN_REPLY:
            (stream_id,) = struct.unpack_from(">I", payload, 0)
            return SynReply(stream_id & 0x7FFFFFFF, self._headers(payload[4:]), fin=bool(flags & FLAG_FIN))
        if kind == RST_STREAM:
            stream_id, status = struct.unpack_from(">II", payload, 0)
            return RstStream(stream_id & 0x7FFFFFFF, status)
        if kind == PING:
            return Ping(struct.unpack_from(">I", payload, 0)[0])
        if kind == GOAWAY:
            last, status = struct.unpack_from(">II", payload, 0)
            return GoAway(last & 0x7FFFFFFF, status)
        if kind == HEADERS:
            self._headers(payload[4:])  # keeps the shared zlib stream in step
        return ControlFrame(kind, flags, payload)

    def _headers(self, compressed: bytes) -> dict[str, str]:
        try:
            return decode_headers(self._inflate.decompress(compressed))
        except zlib.error as exc:
            raise SpdyError(f"cannot inflate a SPDY header block: {exc}") from None

    # ------------------------------------------------------------------------------ writing

    def _compress(self, headers: dict[str, str]) -> bytes:
        return self._deflate.compress(encode_headers(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_stream(self, stream_id: int, headers: dict[str, str], *, fin: bool = False) -> bytes:
        payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + self._compress(headers)
        return control(SYN_STREAM, payload, flags=FLAG_FIN if fin else 0)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, *, fin: bool = False) -> bytes:
        payload = struct.pack(">I", stream_id) + self._compress(headers or {})
        return control(SYN_REPLY, payload, flags=FLAG_FIN if fin else 0)


def control(kind: int, payload: bytes, *, flags: int = 0) -> bytes:
    return struct.pack(">HHB", 0x8000 | VERSION, kind, flags) + len(payload).to_bytes(3, "big") + payload


def data(stream_id: int, payload: bytes, *, fin: bool = False) -> bytes:
    head = struct.pack(">IB", stream_id & 0x7FFFFFFF, FLAG_FIN if fin else 0)
    return head + len(payload).to_bytes(3, "big") + payload


def rst_stream(stream_id: int, status: int) -> bytes:
    return control(RST_STREAM, struct.pack(">II", stream_id, status))


def ping(ping_id: int) -> bytes:
    return control(PING, struct.pack(">I", ping_id))


def goaway(last_stream_id: int, status: int = 0) -> bytes:
    return control(GOAWAY, struct.pack(">II", last_stream_id, status))
