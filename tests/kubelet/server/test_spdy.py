"""The SPDY/3 framer: frames round-trip, header blocks use the SPDY/3 dictionary, split input."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelet.server import spdy
from kubelet.server.spdy_dict import DICTIONARY

HEADERS = {"streamtype": "data", "port": "80", "requestid": "0"}


def test_dictionary_is_the_spdy3_one():
    assert len(DICTIONARY) == 1423
    assert DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert DICTIONARY.endswith(b",utf-,*,enq=0.")
    # a zlib stream primed with a dictionary names its Adler-32; a peer with another one cannot inflate
    assert zlib.adler32(DICTIONARY) == 0xE3C6A7C2


def test_header_blocks_need_the_dictionary():
    client = spdy.Framer()
    frame = client.syn_stream(1, HEADERS)
    compressed = frame[8 + 10:]
    assert compressed[:2] == b"\x78\xbb" and compressed[2:6] == struct.pack(">I", zlib.adler32(DICTIONARY))
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(compressed)
    assert spdy.decode_headers(zlib.decompressobj(zdict=DICTIONARY).decompress(compressed)) == HEADERS


def test_a_session_in_both_directions():
    client, server = spdy.Framer(), spdy.Framer()
    wire = (client.syn_stream(1, {**HEADERS, "streamtype": "error"}, fin=False)
            + spdy.data(1, b"", fin=True) + client.syn_stream(3, HEADERS) + spdy.data(3, b"GET / HTTP/1.0\r\n\r\n")
            + spdy.ping(7) + spdy.rst_stream(3, spdy.CANCEL) + spdy.goaway(3))
    frames = server.feed(wire)
    assert frames == [
        spdy.SynStream(1, {**HEADERS, "streamtype": "error"}), spdy.DataFrame(1, b"", fin=True),
        spdy.SynStream(3, HEADERS), spdy.DataFrame(3, b"GET / HTTP/1.0\r\n\r\n"), spdy.Ping(7),
        spdy.RstStream(3, spdy.CANCEL), spdy.GoAway(3)]
    replies = client.feed(server.syn_reply(1) + server.syn_reply(3, {"x": "y"}) + spdy.data(3, b"ok", fin=True))
    assert replies == [spdy.SynReply(1, {}), spdy.SynReply(3, {"x": "y"}), spdy.DataFrame(3, b"ok", fin=True)]


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6), st.integers(1, 40))
def test_frames_split_anywhere_come_out_whole(payloads: list[bytes], cut: int):
    client, server = spdy.Framer(), spdy.Framer()
    wire = b"".join(client.syn_stream(2 * i + 1, {"port": str(i)}) + spdy.data(2 * i + 1, p, fin=True)
                    for i, p in enumerate(payloads))
    frames: list[spdy.Frame] = []
    for start in range(0, len(wire), cut):
        frames += server.feed(wire[start:start + cut])
    expected: list[spdy.Frame] = []
    for i, p in enumerate(payloads):
        expected += [spdy.SynStream(2 * i + 1, {"port": str(i)}), spdy.DataFrame(2 * i + 1, p, fin=True)]
    assert frames == expected


@pytest.mark.parametrize(("wire", "message"), [
    (spdy.control(spdy.SYN_STREAM, b"\x00\x00\x00\x01"), "truncated"),
    (b"\x80\x02\x00\x01\x00\x00\x00\x00", "unsupported SPDY version 2"),
    (b"\x00\x00\x00\x01\x00\xff\xff\xff", "too large"),
    (spdy.control(spdy.SYN_STREAM, b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00garbage"), "cannot inflate"),
])
def test_broken_streams_are_spdy_errors(wire: bytes, message: str):
    with pytest.raises(spdy.SpdyError, match=message):
        spdy.Framer().feed(wire)
