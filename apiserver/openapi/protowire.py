"""Protobuf wire format writer: the few primitives the gnostic encoder needs.

Only writing, and only what a proto3 OpenAPI document uses: varints (ints, bools), 64-bit doubles
and length-delimited fields (strings, nested messages). The API server's protobuf *reader* lives in
:mod:`apiserver.protobuf`; the two share nothing but the format.
"""

from __future__ import annotations

import struct

VARINT = 0
I64 = 1
LEN = 2

_UINT64 = 1 << 64


def varint(value: int) -> bytes:
    """Base-128 varint; negative numbers as 64-bit two's complement (proto int64)."""
    if value < 0:
        value += _UINT64
    if not 0 <= value < _UINT64:
        raise ValueError(f"{value} does not fit in 64 bits")
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, LEN) + varint(len(payload)) + payload


def varint_field(number: int, value: int) -> bytes:
    return tag(number, VARINT) + varint(value)


def double_field(number: int, value: float) -> bytes:
    return tag(number, I64) + struct.pack("<d", value)
