"""The DNS message codec (RFC 1035, 2782, 3596, 6891): bytes to ``Message`` and back.

The cluster DNS server reads every query through ``decode`` and writes every answer through
``encode``; the forwarder only needs ``peek_id``/``with_id`` since it relays upstream answers as
bytes. Pure and synchronous: no I/O. Names are text in presentation form without the final dot
(the root is ``""``); a label byte that is a dot, a backslash or not printable is written ``\\DDD``,
so any wire name survives a round trip. Malformed input raises ``FormatError``, never anything else.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

# record types and classes
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 16, 28, 33, 41, 255
CLASS_IN = 1
TYPE_NAMES: dict[int, str] = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", TXT: "TXT",
                              AAAA: "AAAA", SRV: "SRV", OPT: "OPT", ANY: "ANY"}

# response codes (BADVERS needs EDNS0: its upper bits travel in the OPT record)
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 2, 3, 4, 5, 16

# header flag bits
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
OPCODE_QUERY = 0

HEADER = struct.Struct("!HHHHHH")
MAX_NAME = 255
MAX_LABEL = 63
#: the largest UDP answer a client without EDNS0 accepts
CLASSIC_UDP_SIZE = 512

_RR_FIXED = struct.Struct("!HHIH")
_SRV_FIXED = struct.Struct("!HHH")
_SOA_FIXED = struct.Struct("!IIIII")
_MAX_POINTER_JUMPS = 64


class FormatError(ValueError):
    """The bytes are not a well-formed DNS message (answered with FORMERR)."""


@dataclass(frozen=True)
class Question:
    name: str
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(frozen=True)
class Record:
    """One resource record; ``data`` is an IP string (A/AAAA), a name (NS/CNAME/PTR), a ``Srv``,
    a ``Soa``, or raw bytes for every other type (OPT included: its class is the UDP size)."""

    name: str
    rtype: int
    ttl: int
    data: Any
    rclass: int = CLASS_IN


@dataclass
class Message:
    id: int = 0
    flags: int = 0
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def opt(self) -> Record | None:
        return next((r for r in self.additional if r.rtype == OPT), None)

    def udp_limit(self) -> int:
        """The largest UDP answer the sender of this query takes (EDNS0 payload size, else 512)."""
        opt = self.opt
        return max(CLASSIC_UDP_SIZE, min(opt.rclass, 65535)) if opt is not None else CLASSIC_UDP_SIZE


# --- names ---------------------------------------------------------------------------------------

_PLAIN = frozenset(range(0x21, 0x7F)) - {ord("."), ord("\\")}


def _label_text(label: bytes) -> str:
    return "".join(chr(b) if b in _PLAIN else f"\\{b:03d}" for b in label)


def name_labels(name: str) -> list[bytes]:
    """The wire labels of a presentation-form name; ``FormatError`` if it cannot be encoded."""
    if name in ("", "."):
        return []
    labels: list[bytes] = []
    cur = bytearray()
    i, n = 0, len(name)
    while i < n:
        ch = name[i]
        if ch == "\\":
            if name[i + 1:i + 4].isdigit() and len(name[i + 1:i + 4]) == 3:
                value = int(name[i + 1:i + 4])
                if value > 255:
                    raise FormatError(f"bad escape in name {name!r}")
                cur.append(value)
                i += 4
                continue
            if i + 1 >= n:
                raise FormatError(f"dangling escape in name {name!r}")
            ch = name[i + 1]
            i += 1
        elif ch == ".":
            if not cur:
                raise FormatError(f"empty label in name {name!r}")
            labels.append(bytes(cur))
            cur = bytearray()
            i += 1
            continue
        code = ord(ch)
        if code > 255:
            raise FormatError(f"non-Latin-1 character in name {name!r}")
        cur.append(code)
        i += 1
    if cur:
        labels.append(bytes(cur))
    if any(len(label) > MAX_LABEL for label in labels):
        raise FormatError(f"label longer than {MAX_LABEL} bytes in {name!r}")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME:
        raise FormatError(f"name longer than {MAX_NAME} bytes: {name!r}")
    return labels


def _read_name(buf: bytes, pos: int) -> tuple[str, int]:
    """The name at ``pos`` (following compression pointers) and the offset just after it."""
    labels: list[str] = []
    end = -1
    jumps = 0
    length = 1
    while True:
        if pos >= len(buf):
            raise FormatError("name runs past the end of the message")
        b = buf[pos]
        if b & 0xC0 == 0xC0:
            if pos + 1 >= len(buf):
                raise FormatError("truncated compression pointer")
            target = ((b & 0x3F) << 8) | buf[pos + 1]
            if end < 0:
                end = pos + 2
            jumps += 1
            if jumps > _MAX_POINTER_JUMPS or target >= pos:
                raise FormatError("compression pointer loop or forward pointer")
            pos = target
            continue
        if b & 0xC0:
            raise FormatError(f"unsupported label type 0x{b & 0xC0:02x}")
        pos += 1
        if b == 0:
            break
        if pos + b > len(buf):
            raise FormatError("label runs past the end of the message")
        length += b + 1
        if length > MAX_NAME:
            raise FormatError(f"name longer than {MAX_NAME} bytes")
        labels.append(_label_text(buf[pos:pos + b]))
        pos += b
    return ".".join(labels), (end if end >= 0 else pos)


class _Writer:
    """An output buffer that remembers where each name suffix was written, for compression."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.offsets: dict[tuple[bytes, ...], int] = {}

    def name(self, name: str, *, compress: bool = True) -> None:
        raw = name_labels(name)
        for i in range(len(raw)):
            key = tuple(raw[i:])
            if compress and key in self.offsets:
                self.buf += struct.pack("!H", 0xC000 | self.offsets[key])
                return
            if len(self.buf) < 0x4000:
                self.offsets.setdefault(key, len(self.buf))
            self.buf.append(len(raw[i]))
            self.buf += raw[i]
        self.buf.append(0)


# --- records -------------------------------------------------------------------------------------

def _rdata_out(w: _Writer, rec: Record) -> None:
    t, data = rec.rtype, rec.data
    try:
        if t == A:
            w.buf += ipaddress.IPv4Address(data).packed
        elif t == AAAA:
            w.buf += ipaddress.IPv6Address(data).packed
        elif t in (NS, CNAME, PTR):
            w.name(data)
        elif t == SRV:
            w.buf += _SRV_FIXED.pack(data.priority, data.weight, data.port)
            w.name(data.target, compress=False)
        elif t == SOA:
            w.name(data.mname)
            w.name(data.rname)
            w.buf += _SOA_FIXED.pack(data.serial, data.refresh, data.retry, data.expire, data.minimum)
        else:
            w.buf += bytes(data)
    except (ValueError, TypeError, AttributeError, struct.error) as e:
        raise FormatError(f"cannot encode {TYPE_NAMES.get(t, t)} data {data!r}: {e}") from None


def _rdata_in(buf: bytes, *, rtype: int, start: int, end: int) -> Any:
    raw = buf[start:end]
    if rtype == A:
        if len(raw) != 4:
            raise FormatError("A record data is not 4 bytes")
        return str(ipaddress.IPv4Address(raw))
    if rtype == AAAA:
        if len(raw) != 16:
            raise FormatError("AAAA record data is not 16 bytes")
        return str(ipaddress.IPv6Address(raw))
    if rtype in (NS, CNAME, PTR):
        name, pos = _read_name(buf, start)
        data: Any = name
    elif rtype == SRV:
        if end - start < _SRV_FIXED.size + 1:
            raise FormatError("SRV record data too short")
        prio, weight, port = _SRV_FIXED.unpack_from(buf, start)
        target, pos = _read_name(buf, start + _SRV_FIXED.size)
        data = Srv(prio, weight, port, target)
    elif rtype == SOA:
        mname, pos = _read_name(buf, start)
        rname, pos = _read_name(buf, pos)
        if pos + _SOA_FIXED.size > end:
            raise FormatError("SOA record data too short")
        data = Soa(mname, rname, *_SOA_FIXED.unpack_from(buf, pos))
        pos += _SOA_FIXED.size
    else:
        return raw
    if pos != end:
        raise FormatError(f"{TYPE_NAMES[rtype]} record data length does not match its contents")
    return data


def _read_record(buf: bytes, pos: int) -> tuple[Record, int]:
    name, pos = _read_name(buf, pos)
    if pos + _RR_FIXED.size > len(buf):
        raise FormatError("record header runs past the end of the message")
    rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(buf, pos)
    pos += _RR_FIXED.size
    end = pos + rdlength
    if end > len(buf):
        raise FormatError("record data runs past the end of the message")
    return Record(name, rtype, ttl, _rdata_in(buf, rtype=rtype, start=pos, end=end), rclass), end


def _write_record(w: _Writer, rec: Record) -> None:
    w.name(rec.name)
    at = len(w.buf)
    w.buf += _RR_FIXED.pack(rec.rtype, rec.rclass, rec.ttl & 0xFFFFFFFF, 0)
    _rdata_out(w, rec)
    rdlength = len(w.buf) - at - _RR_FIXED.size
    if rdlength > 0xFFFF:
        raise FormatError("record data longer than 65535 bytes")
    struct.pack_into("!H", w.buf, at + 8, rdlength)


# --- messages ------------------------------------------------------------------------------------

def decode(buf: bytes) -> Message:
    """Parse a whole message; ``FormatError`` on anything malformed."""
    if len(buf) < HEADER.size:
        raise FormatError("message shorter than the 12-byte header")
    ident, flags, qd, an, ns, ar = HEADER.unpack_from(buf)
    msg = Message(ident, flags)
    pos = HEADER.size
    for _ in range(qd):
        name, pos = _read_name(buf, pos)
        if pos + 4 > len(buf):
            raise FormatError("question runs past the end of the message")
        qtype, qclass = struct.unpack_from("!HH", buf, pos)
        pos += 4
        msg.questions.append(Question(name, qtype, qclass))
    for section, count in ((msg.answers, an), (msg.authority, ns), (msg.additional, ar)):
        for _ in range(count):
            rec, pos = _read_record(buf, pos)
            section.append(rec)
    if sum(r.rtype == OPT for r in msg.additional) > 1:
        raise FormatError("more than one OPT record")
    return msg


def encode(msg: Message, *, limit: int = 65535) -> bytes:
    """The wire form; if it exceeds ``limit`` (a UDP answer), the TC bit is set and only the
    question and OPT record are kept, so the client retries over TCP."""
    w = _Writer()
    w.buf += HEADER.pack(msg.id & 0xFFFF, msg.flags & 0xFFFF, len(msg.questions), len(msg.answers),
                         len(msg.authority), len(msg.additional))
    for q in msg.questions:
        w.name(q.name)
        w.buf += struct.pack("!HH", q.qtype, q.qclass)
    for section in (msg.answers, msg.authority, msg.additional):
        for rec in section:
            _write_record(w, rec)
    if len(w.buf) <= limit:
        return bytes(w.buf)
    opt = [r for r in msg.additional if r.rtype == OPT]
    short = Message(msg.id, msg.flags | TC, list(msg.questions), [], [], opt)
    return encode(short)


def peek_id(buf: bytes) -> int:
    if len(buf) < 2:
        raise FormatError("message too short to carry an id")
    return int.from_bytes(buf[:2], "big")


def with_id(buf: bytes, ident: int) -> bytes:
    """The same message bytes under another id (the forwarder's id swap)."""
    return ident.to_bytes(2, "big") + buf[2:]


def reply_to(query: Message, *, rcode: int = NOERROR, authoritative: bool = False) -> Message:
    """An empty answer to ``query``: same id, question, RD bit and EDNS0 presence; an rcode above 15
    (BADVERS) puts its high bits in the OPT record, as EDNS0 extends it."""
    flags = QR | RA | (query.flags & RD) | (query.opcode << 11) | (rcode & 0xF)
    if authoritative:
        flags |= AA
    extra = [edns_opt(extended_rcode=rcode >> 4)] if query.opt is not None else []
    return Message(query.id, flags, list(query.questions[:1]), additional=extra)


def edns_version(opt: Record) -> int:
    return (opt.ttl >> 16) & 0xFF


def error_reply(buf: bytes, rcode: int) -> bytes | None:
    """A bare error answer for a query we could not parse; None if it is not even a header."""
    if len(buf) < HEADER.size:
        return None
    ident, flags = struct.unpack_from("!HH", buf)
    if flags & QR:
        return None  # never answer an answer
    return HEADER.pack(ident, QR | (flags & (RD | 0x7800)) | (rcode & 0xF), 0, 0, 0, 0)


#: the UDP payload size we advertise (the common "DNS flag day 2020" value)
EDNS_UDP_SIZE = 1232


def edns_opt(size: int = EDNS_UDP_SIZE, *, extended_rcode: int = 0) -> Record:
    """Our OPT record: version 0, no options; the TTL field carries the upper rcode bits."""
    return Record("", OPT, (extended_rcode & 0xFF) << 24, b"", size)
