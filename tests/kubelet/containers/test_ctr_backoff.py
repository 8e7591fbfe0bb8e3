"""Crash-loop back-off: doubling, the cap, expiry after 10 minutes, per-key isolation."""

from __future__ import annotations

import pytest

from kubelet.backoff import Backoff, go_duration, key, message


def test_doubles_to_the_cap() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay("k", now=float(i)) for i in range(8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_remaining_and_since() -> None:
    backoff = Backoff()
    assert backoff.remaining("k", 100.0) == 0
    backoff.next_delay("k", 100.0)
    assert backoff.remaining("k", 104.0) == pytest.approx(6.0)
    assert backoff.remaining("k", 104.0, since=103.0) == pytest.approx(9.0)
    assert backoff.remaining("k", 111.0) == 0
    assert backoff.current("k", 111.0) == 10


def test_expires_after_twice_the_cap_and_reset() -> None:
    backoff = Backoff(initial=1, cap=4)
    assert [backoff.next_delay("k", t) for t in (0, 1, 2, 3)] == [1, 2, 4, 4]
    assert backoff.next_delay("k", 3 + 8.5) == 1  # untouched for > 2 * cap
    backoff.next_delay("k", 12)
    backoff.reset("k")
    assert backoff.remaining("k", 12) == 0
    assert backoff.next_delay("k", 12) == 1


def test_keys_are_independent_and_gc() -> None:
    backoff = Backoff()
    a, b = key("uid-1", "app"), key("uid-1", "side")
    assert a != b
    backoff.next_delay(a, 0)
    backoff.next_delay(a, 1)
    assert backoff.next_delay(b, 1) == 10
    backoff.gc(1000)
    assert backoff.current(a, 0) == 0


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"),
                                               (3725, "1h2m5s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_message() -> None:
    assert message(20, container="app", pod_ref="web_default(u-1)") == \
        "back-off 20s restarting failed container=app pod=web_default(u-1)"
