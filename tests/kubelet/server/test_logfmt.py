"""CRI log parsing and the kubectl logs options: partial lines, since, tail, timestamps, limitBytes."""

from __future__ import annotations

import datetime as dt

import pytest

from kubelet.server.logfmt import Limiter, LogOptions, LogOptionsError, LogParser, Record, parse_time, select, utc_nano

LOG = (
    b"2026-01-02T03:04:05.000000001Z stdout F first\n"
    b"2026-01-02T03:04:06.5+01:00 stderr P sec\n"
    b"2026-01-02T03:04:06.6Z stdout F interleaved\n"
    b"2026-01-02T03:04:07.123456789Z stderr P on\n"
    b"2026-01-02T03:04:08Z stderr F d\n"
    b"not a cri line\n"
    b"2026-01-02T03:04:09Z stdout F last\n"
)
NOW = dt.datetime(2026, 1, 2, 3, 4, 10, tzinfo=dt.UTC)


def texts(records: list[Record]) -> list[bytes]:
    return [r.text for r in records]


def test_partials_join_per_stream_and_foreign_lines_are_skipped():
    records = LogParser().feed(LOG)
    assert texts(records) == [b"first\n", b"interleaved\n", b"second\n", b"last\n"]
    assert records[2].stream == "stderr" and records[2].timestamp == "2026-01-02T03:04:06.5+01:00"


def test_feeding_in_pieces_gives_the_same_records():
    parser = LogParser()
    out: list[Record] = []
    for i in range(0, len(LOG), 7):
        out += parser.feed(LOG[i:i + 7])
    assert out == LogParser().feed(LOG)


def test_flush_returns_an_unterminated_last_line_and_open_partials():
    parser = LogParser()
    assert parser.feed(b"2026-01-02T03:04:05Z stdout P half") == []
    assert texts(parser.flush()) == [b"half"]


def test_timestamps_print_in_utc_with_nanoseconds():
    assert utc_nano("2026-01-02T04:04:06.5+01:00") == "2026-01-02T03:04:06.500000000Z"
    assert utc_nano("2026-01-02T03:04:07.123456789Z") == "2026-01-02T03:04:07.123456789Z"
    record = Record("2026-01-02T03:04:08Z", "stdout", b"x\n")
    assert record.render(timestamps=True) == b"2026-01-02T03:04:08.000000000Z x\n"
    assert record.render(timestamps=False) == b"x\n"


@pytest.mark.parametrize(("query", "expected"), [
    ({}, [b"first\n", b"interleaved\n", b"second\n", b"last\n"]),
    ({"tailLines": "2"}, [b"second\n", b"last\n"]),
    ({"tailLines": "0"}, []),
    ({"sinceSeconds": "4"}, [b"interleaved\n", b"last\n"]),  # 'second' is from 02:04:06.5 UTC
    ({"sinceTime": "2026-01-02T03:04:06.6Z"}, [b"interleaved\n", b"last\n"]),
    ({"sinceSeconds": "4", "tailLines": "1"}, [b"last\n"]),
])
def test_since_and_tail(query: dict[str, str], expected: list[bytes]):
    assert texts(select(LogParser().feed(LOG), LogOptions.from_query(query, now=NOW))) == expected


@pytest.mark.parametrize(("query", "message"), [
    ({"tailLines": "-1"}, "tailLines: must be greater than or equal to 0"),
    ({"limitBytes": "0"}, "limitBytes: must be greater than or equal to 1"),
    ({"sinceSeconds": "x"}, "sinceSeconds: invalid integer 'x'"),
    ({"sinceTime": "yesterday"}, "not an RFC 3339 time: 'yesterday'"),
    ({"follow": "maybe"}, "follow: invalid boolean value 'maybe'"),
    ({"sinceTime": "2026-01-02T03:04:06Z", "sinceSeconds": "1"}, "at most one of sinceTime or sinceSeconds"),
])
def test_bad_options(query: dict[str, str], message: str):
    with pytest.raises(LogOptionsError, match=message):
        LogOptions.from_query(query, now=NOW)


def test_options_from_kubectl_flags():
    options = LogOptions.from_query({"follow": "true", "previous": "true", "timestamps": "true",
                                     "limitBytes": "100", "sinceSeconds": "600", "tailLines": "1"}, now=NOW)
    assert options == LogOptions(follow=True, previous=True, tail_lines=1, since=NOW - dt.timedelta(seconds=600),
                                 timestamps=True, limit_bytes=100)
    assert parse_time("2026-01-02T03:04:05.123456789Z") == dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)


def test_limiter_cuts_across_records():
    limiter = Limiter(5)
    assert [limiter.take(b"abc"), limiter.take(b"defg"), limiter.take(b"h")] == [b"abc", b"de", b""]
    assert limiter.exhausted and not Limiter(None).exhausted
