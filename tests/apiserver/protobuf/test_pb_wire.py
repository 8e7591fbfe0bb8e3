"""Wire-format reader: varints, the four wire types, and malformed input."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protobuf_encoder_for_tests import f, key, varint

from apiserver.protobuf.wire import (
    I32,
    I64,
    LEN,
    VARINT,
    ProtobufError,
    iter_fields,
    iter_packed_varints,
    read_varint,
)


@given(st.integers(min_value=0, max_value=(1 << 64) - 1), st.binary(max_size=4))
def test_varint_round_trip(value: int, trailer: bytes) -> None:
    encoded = varint(value)
    assert read_varint(encoded + trailer, 0) == (value, len(encoded))


def test_varint_reads_from_offset() -> None:
    assert read_varint(b"\xff" + varint(300), 1) == (300, 3)


@pytest.mark.parametrize("data", [b"", b"\x80", b"\xff\xff\xff"])
def test_truncated_varint(data: bytes) -> None:
    with pytest.raises(ProtobufError, match="truncated varint"):
        read_varint(data, 0)


def test_overlong_varint() -> None:
    with pytest.raises(ProtobufError, match="longer than 10 bytes"):
        read_varint(b"\x80" * 11 + b"\x01", 0)


def test_all_four_wire_types() -> None:
    body = (
        f(1, 150)
        + key(2, I64) + (7).to_bytes(8, "little")
        + f(3, "hi")
        + key(4, I32) + (9).to_bytes(4, "little")
    )
    assert list(iter_fields(body)) == [
        (1, VARINT, 150),
        (2, I64, (7).to_bytes(8, "little")),
        (3, LEN, b"hi"),
        (4, I32, (9).to_bytes(4, "little")),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (key(1, 3) + b"\x00", "unsupported wire type 3"),  # start group
        (key(1, 4), "unsupported wire type 4"),  # end group
        (key(1, 6), "unsupported wire type 6"),
        (b"\x00\x01", "field number 0"),
        (key(1, LEN) + varint(5) + b"abc", "truncated"),
        (key(1, I64) + b"\x00" * 7, "truncated"),
        (key(1, I32) + b"\x00" * 3, "truncated"),
        (key(1, VARINT), "truncated varint"),
        (key(1, LEN), "truncated varint"),
    ],
)
def test_malformed_fields(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        list(iter_fields(body))


def test_packed_varints() -> None:
    assert list(iter_packed_varints(varint(1) + varint(300) + varint(-1))) == [1, 300, (1 << 64) - 1]


def test_error_is_a_value_error() -> None:
    assert issubclass(ProtobufError, ValueError)
