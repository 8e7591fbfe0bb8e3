"""Reading CRI container log files: ``<RFC3339Nano> <stdout|stderr> <P|F> <text>`` per line.

Runtimes split long output lines into partial records (tag ``P``) closed by a full one (``F``); a
reader joins them into one line. ``kubectl logs`` options become :class:`LogOptions` (parsed from the
kubelet's query as the upstream kubelet names them) and are applied here: ``sinceSeconds`` /
``sinceTime`` drop older lines, ``tailLines`` keeps the last N, ``timestamps`` keeps the time prefix,
``limitBytes`` cuts the output. Pure functions and one incremental parser, so ``follow`` can feed
it the bytes a file grows by.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FULL, PARTIAL = b"F", b"P"
STREAMS = (b"stdout", b"stderr")
_FRACTION = re.compile(r"\.(\d+)")


class LogOptionsError(ValueError):
    """A query parameter of /containerLogs that is not valid (answered with 400)."""


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    since: dt.datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, now: dt.datetime) -> LogOptions:
        since = None
        if query.get("sinceSeconds"):
            seconds = _int(query, "sinceSeconds", minimum=1)
            since = now - dt.timedelta(seconds=seconds)
        if query.get("sinceTime"):
            if since is not None:
                raise LogOptionsError("at most one of sinceTime or sinceSeconds may be specified")
            since = parse_time(query["sinceTime"])
        tail = _int(query, "tailLines", minimum=0) if query.get("tailLines") else None
        limit = _int(query, "limitBytes", minimum=1) if query.get("limitBytes") else None
        return cls(follow=_bool(query, "follow"), previous=_bool(query, "previous"), tail_lines=tail,
                   since=since, timestamps=_bool(query, "timestamps"), limit_bytes=limit)


def _bool(query: Mapping[str, str], key: str) -> bool:
    value = query.get(key, "").lower()
    if value in ("", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise LogOptionsError(f"{key}: invalid boolean value {query[key]!r}")


def _int(query: Mapping[str, str], key: str, *, minimum: int) -> int:
    try:
        value = int(query[key])
    except ValueError:
        raise LogOptionsError(f"{key}: invalid integer {query[key]!r}") from None
    if value < minimum:
        raise LogOptionsError(f"{key}: must be greater than or equal to {minimum}")
    return value


def parse_time(text: str) -> dt.datetime:
    """RFC 3339 with up to nanoseconds (Python keeps microseconds); always timezone-aware."""
    cleaned = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip(), count=1)
    try:
        value = dt.datetime.fromisoformat(cleaned.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise LogOptionsError(f"not an RFC 3339 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def utc_nano(text: str) -> str:
    """The stamp as the upstream kubelet prints it: UTC, nine fraction digits, ``Z``."""
    match = _FRACTION.search(text)
    nanos = (match.group(1)[:9] if match else "").ljust(9, "0")
    try:
        when = parse_time(text).astimezone(dt.UTC)
    except LogOptionsError:
        return text
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + nanos + "Z"


@dataclass(frozen=True)
class Record:
    """One whole output line (partials joined); ``text`` ends with a newline unless cut short."""

    timestamp: str
    stream: str
    text: bytes

    @property
    def time(self) -> dt.datetime:
        return parse_time(self.timestamp)

    def render(self, *, timestamps: bool) -> bytes:
        return (utc_nano(self.timestamp).encode() + b" " + self.text) if timestamps else self.text


class LogParser:
    """Incremental: ``feed`` bytes as the file grows, get the records completed so far."""

    def __init__(self) -> None:
        self._rest = b""
        self._partial: dict[bytes, tuple[str, bytearray]] = {}

    def feed(self, data: bytes) -> list[Record]:
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        out: list[Record] = []
        for line in lines:
            record = self._line(line)
            if record is not None:
                out.append(record)
        return out

    def flush(self) -> list[Record]:
        """What is left at the end of a log: a last line without newline, partials never closed."""
        out = self.feed(b"\n") if self._rest else []
        for stream, (stamp, text) in self._partial.items():
            out.append(Record(stamp, stream.decode(), bytes(text)))
        self._partial.clear()
        return out

    def _line(self, line: bytes) -> Record | None:
        parts = line.split(b" ", 3)
        if len(parts) < 3 or parts[1] not in STREAMS:
            return None  # not a CRI record (a foreign line): skip as the upstream parser does
        stamp, stream, tag = parts[0].decode("ascii", "replace"), parts[1], parts[2]
        text = parts[3] if len(parts) > 3 else b""
        if tag == PARTIAL:
            first, buf = self._partial.setdefault(stream, (stamp, bytearray()))
            buf += text
            return None
        first, buf = self._partial.pop(stream, (stamp, bytearray()))
        return Record(first, stream.decode(), bytes(buf) + text + b"\n")


def select(records: Iterable[Record], options: LogOptions) -> list[Record]:
    """``since`` then ``tailLines``, as the upstream kubelet applies them."""
    kept = [r for r in records if options.since is None or _after(r, options.since)]
    if options.tail_lines is not None:
        kept = kept[len(kept) - options.tail_lines:] if options.tail_lines else []
    return kept


def _after(record: Record, since: dt.datetime) -> bool:
    try:
        return record.time >= since
    except LogOptionsError:
        return True


class Limiter:
    """Cuts output at ``limitBytes``; ``take`` returns what may still be sent."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0

    def take(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[: max(self.left, 0)]
        self.left -= len(data)
        return data
