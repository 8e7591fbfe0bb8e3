"""A tiny protobuf encoder for building request bodies in the decoder's tests.

Deliberately independent of apiserver.protobuf (its own varint code), so the tests check the
decoder against a second implementation of the wire format rather than against itself.
"""

MAGIC = b"k8s\x00"


def varint(value: int) -> bytes:
    """Base-128 varint; negative numbers as 64-bit two's complement, as Go writes int32/int64."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def f(number: int, value: int | bool | str | bytes) -> bytes:
    """One field: ints and bools as varints, str and bytes (incl. nested messages) length-delimited."""
    if isinstance(value, bool | int):
        return key(number, 0) + varint(int(value))
    data = value.encode() if isinstance(value, str) else value
    return key(number, 2) + varint(len(data)) + data


def msg(*parts: bytes) -> bytes:
    return b"".join(parts)


def entry(number: int, map_key: str, value: str | bytes) -> bytes:
    """One map entry of map field ``number``."""
    return f(number, f(1, map_key) + f(2, value))


def envelope(api_version: str, kind: str, raw: bytes, *, content_encoding: str = "") -> bytes:
    """``k8s\\0`` + runtime.Unknown{typeMeta, raw, contentEncoding, contentType} as client-go writes it."""
    return MAGIC + f(1, f(1, api_version) + f(2, kind)) + f(2, raw) + f(3, content_encoding) + f(4, "")
