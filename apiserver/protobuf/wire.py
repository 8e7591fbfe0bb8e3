"""Protobuf wire format reader: splits a message into (field number, wire type, value) triples.

This is the schema-free bottom layer of the Kubernetes protobuf request decoder. It knows only the
four wire types Kubernetes objects use (varint, 64-bit, length-delimited, 32-bit) and reports every
malformed input as ProtobufError, so the API server can answer 400 instead of crashing.
"""

from collections.abc import Iterator

VARINT = 0
I64 = 1
LEN = 2
I32 = 5

WIRE_NAMES = {VARINT: "varint", I64: "64-bit", LEN: "length-delimited", I32: "32-bit"}

_MAX_VARINT_BYTES = 10
_FIXED_SIZES = {I64: 8, I32: 4}


class ProtobufError(ValueError):
    """A request body that is not a well-formed Kubernetes protobuf object (the server answers 400)."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; return (value, next position)."""
    result = 0
    shift = 0
    end = min(len(buf), pos + _MAX_VARINT_BYTES)
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    if pos >= len(buf):
        raise ProtobufError("truncated varint")
    raise ProtobufError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (number, wire type, value): an int for varints, the raw bytes for all other types."""
    pos = 0
    size = len(buf)
    while pos < size:
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0 is invalid")
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos)
            yield number, wire_type, value
            continue
        if wire_type == LEN:
            length, pos = read_varint(buf, pos)
        elif wire_type in _FIXED_SIZES:
            length = _FIXED_SIZES[wire_type]
        else:
            raise ProtobufError(f"field {number}: unsupported wire type {wire_type}")
        end = pos + length
        if end > size:
            raise ProtobufError(f"field {number}: truncated (needs {length} bytes, {size - pos} left)")
        yield number, wire_type, buf[pos:end]
        pos = end


def iter_packed_varints(buf: bytes) -> Iterator[int]:
    """Values of a packed repeated varint field (proto3 style; Go's proto2 code writes them unpacked)."""
    pos = 0
    while pos < len(buf):
        value, pos = read_varint(buf, pos)
        yield value
