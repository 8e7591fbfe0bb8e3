"""The DNS codec: round trips of every record type, compression, truncation, and malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.dns import wire

labels = st.binary(min_size=1, max_size=20)
names = st.lists(labels, max_size=5).map(lambda ls: ".".join(wire._label_text(label) for label in ls))
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)


@st.composite
def records(draw: st.DrawFn) -> wire.Record:
    rtype, data = draw(st.one_of(
        st.tuples(st.just(wire.A), ipv4),
        st.tuples(st.just(wire.AAAA), ipv6),
        st.tuples(st.sampled_from([wire.NS, wire.CNAME, wire.PTR]), names),
        st.tuples(st.just(wire.SRV), st.builds(wire.Srv, u16, u16, u16, names)),
        st.tuples(st.just(wire.SOA), st.builds(wire.Soa, names, names, u32, u32, u32, u32, u32)),
        st.tuples(st.just(wire.TXT), st.binary(max_size=40)),
    ))
    return wire.Record(draw(names), rtype, draw(u32), data, draw(st.sampled_from([1, 255])))


messages = st.builds(
    wire.Message, u16, u16,
    st.lists(st.builds(wire.Question, names, u16, u16), max_size=2),
    st.lists(records(), max_size=4), st.lists(records(), max_size=3), st.lists(records(), max_size=3))


@given(messages)
@settings(max_examples=120, deadline=None)
def test_round_trip(msg: wire.Message) -> None:
    assert wire.decode(wire.encode(msg)) == msg


@given(st.lists(labels, min_size=1, max_size=4))
def test_any_label_bytes_survive_as_text(raw: list[bytes]) -> None:
    name = ".".join(wire._label_text(label) for label in raw)
    assert wire.name_labels(name) == raw


def test_repeated_names_are_compressed() -> None:
    name = "web.default.svc.cluster.local"
    msg = wire.Message(1, wire.QR, [wire.Question(name, wire.A)],
                       [wire.Record(name, wire.A, 5, f"10.0.0.{i}") for i in range(10)])
    out = wire.encode(msg)
    # the owner name is written once; each answer points back to it with 2 bytes
    assert out.count(b"\x03web\x07default") == 1
    assert len(out) == 12 + (len(name) + 2 + 4) + 10 * (2 + 10 + 4)
    assert wire.decode(out) == msg


def test_oversized_udp_answer_is_truncated_with_tc() -> None:
    q = wire.Message(7, wire.RD, [wire.Question("big.test", wire.A)])
    reply = wire.reply_to(q)
    reply.answers = [wire.Record("big.test", wire.A, 5, f"10.1.{i // 250}.{i % 250}") for i in range(100)]
    out = wire.encode(reply, limit=512)
    short = wire.decode(out)
    assert len(out) <= 512 and short.flags & wire.TC and not short.answers
    assert short.questions == q.questions
    assert len(wire.encode(reply)) > 512 and not wire.decode(wire.encode(reply)).flags & wire.TC


def test_edns_payload_size_sets_the_udp_limit() -> None:
    q = wire.Message(1, 0, [wire.Question("a", wire.A)], additional=[wire.edns_opt(4096)])
    assert wire.decode(wire.encode(q)).udp_limit() == 4096
    assert wire.Message(1, 0, [wire.Question("a", wire.A)]).udp_limit() == 512


HEADER_ONE_Q = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)


@pytest.mark.parametrize("body", [
    b"\xc0\x0c\x00\x01\x00\x01",            # pointer to itself
    b"\x01a\xc0\x0c\x00\x01\x00\x01",        # pointer back to its own start: a loop
    b"\xc0\x20\x00\x01\x00\x01",            # forward pointer past the end
    b"\x05ab",                              # label past the end
    b"\x01a\x00\x00",                       # question cut short
    b"\x40abc\x00\x00\x01\x00\x01",         # extended label type
    b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x00\x00\x01\x00\x01",
])
def test_malformed_questions_raise_format_error(body: bytes) -> None:
    with pytest.raises(wire.FormatError):
        wire.decode(HEADER_ONE_Q + body)


def test_record_data_length_must_match() -> None:
    head = struct.pack("!HHHHHH", 1, wire.QR, 0, 1, 0, 0)
    bad_a = b"\x00" + struct.pack("!HHIH", wire.A, 1, 5, 3) + b"\x01\x02\x03"
    with pytest.raises(wire.FormatError, match="4 bytes"):
        wire.decode(head + bad_a)
    bad_cname = b"\x00" + struct.pack("!HHIH", wire.CNAME, 1, 5, 4) + b"\x01a\x00\x00"
    with pytest.raises(wire.FormatError, match="length"):
        wire.decode(head + bad_cname)


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_random_bytes_never_raise_anything_but_format_error(data: bytes) -> None:
    try:
        wire.decode(data)
    except wire.FormatError:
        pass


@pytest.mark.parametrize("name", ["a..b", "x" * 64, ".".join(["abcdefghi"] * 30), "bad\\999"])
def test_unencodable_names_raise_format_error(name: str) -> None:
    with pytest.raises(wire.FormatError):
        wire.encode(wire.Message(1, 0, [wire.Question(name, wire.A)]))


def test_error_reply_keeps_id_and_never_answers_an_answer() -> None:
    out = wire.error_reply(struct.pack("!HH", 0xBEEF, wire.RD) + b"\x00" * 8 + b"junk", wire.FORMERR)
    assert out is not None
    msg = wire.decode(out)
    assert msg.id == 0xBEEF and msg.rcode == wire.FORMERR and msg.flags & wire.QR and msg.flags & wire.RD
    assert wire.error_reply(struct.pack("!HH", 1, wire.QR) + b"\x00" * 8, wire.FORMERR) is None
    assert wire.error_reply(b"\x00\x01", wire.FORMERR) is None
