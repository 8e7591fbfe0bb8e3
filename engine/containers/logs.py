"""Reading a container's CRI-format log: parse, filter by time and stream, tail, follow.

conmon writes one entry per line: ``<RFC3339Nano local time> <stdout|stderr> <F|P> <text>``, where
``F`` ends a line of the container's output and ``P`` is a piece of a longer one (the text of a
``P`` entry had no newline; conmon adds one to keep the file line-based). So ``LogLine.data`` is the
container's bytes exactly: ``text + "\\n"`` for ``F``, ``text`` for ``P``. Past ``--log-size-max``
conmon starts a fresh file and renames it over the old one; a follower notices the new inode and
carries on from the start of the new file. Following polls (``FOLLOW_INTERVAL``) and ends once the
container is no longer running and the file is drained. File reads go to a thread.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FOLLOW_INTERVAL = 0.05  # seconds between looks at a followed file
_BLOCK = 64 << 10
_TIME_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def parse_time(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with up to nine fraction digits."""
    match = _TIME_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    seconds = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def format_time(ns: int) -> str:
    """RFC 3339 UTC with nine fraction digits (Docker's ``--timestamps`` form)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


@dataclass(frozen=True)
class LogLine:
    time_ns: int
    stream: str  # "stdout" or "stderr"
    partial: bool
    data: bytes  # the container's bytes, newline included unless partial

    def render(self, *, timestamps: bool = False) -> bytes:
        """The bytes ``docker logs`` prints for this entry."""
        return (format_time(self.time_ns).encode() + b" " + self.data) if timestamps else self.data


def parse_line(raw: bytes) -> LogLine | None:
    """One log file line (without its newline); None if it is not in the CRI format."""
    parts = raw.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    try:
        when = parse_time(parts[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    text = parts[3] if len(parts) == 4 else b""
    partial = parts[2] == b"P"
    return LogLine(time_ns=when, stream=parts[1].decode(), partial=partial, data=text if partial else text + b"\n")


@dataclass(frozen=True)
class LogFilter:
    since_ns: int | None = None
    until_ns: int | None = None
    streams: frozenset[str] = frozenset({"stdout", "stderr"})

    def keep(self, line: LogLine) -> bool:
        if line.stream not in self.streams:
            return False
        if self.since_ns is not None and line.time_ns < self.since_ns:
            return False
        return self.until_ns is None or line.time_ns <= self.until_ns


def _parse_all(chunk: bytes, flt: LogFilter) -> list[LogLine]:
    out = []
    for raw in chunk.split(b"\n"):
        line = parse_line(raw) if raw else None
        if line is not None and flt.keep(line):
            out.append(line)
    return out


def _tail_bytes(path: Path, lines: int) -> tuple[bytes, int, int]:
    """The last ``lines`` complete lines of the file, its inode and the offset just after them."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        pos, data = st.st_size, b""
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
        complete = data.rfind(b"\n") + 1  # a half-written last line is left for the follower
        kept = data[:complete].split(b"\n")[:-1]
        chosen = b"".join(line + b"\n" for line in kept[len(kept) - lines :]) if lines else b""
        return chosen, st.st_ino, pos + complete


def _read_from(path: Path, *, offset: int, inode: int | None) -> tuple[bytes, int, int]:
    """Bytes appended since ``offset`` (from 0 if the file was replaced): (data, inode, new offset)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return b"", inode or 0, offset
    with f:
        st = os.fstat(f.fileno())
        if inode is not None and (st.st_ino != inode or st.st_size < offset):
            offset = 0  # rotated: conmon renamed a fresh file over the old one
        f.seek(offset)
        data = f.read()
        complete = data.rfind(b"\n") + 1  # keep a half-written line for the next read
        return data[:complete], st.st_ino, offset + complete


async def read(
    path: Path,
    *,
    follow: bool = False,
    tail: int | None = None,
    flt: LogFilter | None = None,
    running: Callable[[], bool] = lambda: False,
) -> AsyncIterator[LogLine]:
    """The entries of the log at ``path``; with ``follow``, new ones until ``running()`` is false."""
    flt = flt or LogFilter()
    if tail is not None and tail >= 0:
        data, inode, offset = await asyncio.to_thread(_tail_bytes_safe, path, tail)
    else:
        data, inode, offset = await asyncio.to_thread(_read_from, path, offset=0, inode=None)
    for line in _parse_all(data, flt):
        yield line
    if not follow:
        return
    while True:
        alive = running()
        data, inode, offset = await asyncio.to_thread(_read_from, path, offset=offset, inode=inode)
        for line in _parse_all(data, flt):
            yield line
        if not alive:
            return
        if not data:
            await asyncio.sleep(FOLLOW_INTERVAL)


def _tail_bytes_safe(path: Path, lines: int) -> tuple[bytes, int, int]:
    try:
        return _tail_bytes(path, lines)
    except FileNotFoundError:
        return b"", 0, 0


def streams(*, stdout: bool = True, stderr: bool = True) -> frozenset[str]:
    chosen: Iterable[str] = [n for n, on in (("stdout", stdout), ("stderr", stderr)) if on]
    return frozenset(chosen)
