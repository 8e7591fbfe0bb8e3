"""Docker's human-readable sizes, ages and progress bars."""

from __future__ import annotations

import pytest

from engine.daemon.units import BAR_WIDTH, human_duration, human_size, progress_bar


@pytest.mark.parametrize("size, text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (4_260_000, "4.26MB"), (2_037_760, "2.038MB"),
    (1_500_000_000, "1.5GB"),
])
def test_human_size(size: int, text: str):
    assert human_size(size) == text


@pytest.mark.parametrize("seconds, text", [
    (0.5, "Less than a second"), (1, "1 second"), (30, "30 seconds"), (90, "About a minute"),
    (600, "10 minutes"), (3700, "About an hour"), (3 * 3600, "3 hours"), (3 * 86400, "3 days"),
    (21 * 86400, "3 weeks"), (90 * 86400, "3 months"), (3 * 365 * 86400, "3 years"),
])
def test_human_duration(seconds: float, text: str):
    assert human_duration(seconds) == text


def test_progress_bar_fills_with_the_fraction():
    half = progress_bar(500, 1000)
    assert half.startswith("[" + "=" * (BAR_WIDTH // 2) + ">")
    assert half.endswith("500B/1kB")
    assert len(half.split("]")[0]) == BAR_WIDTH + 1
    assert progress_bar(1000, 1000).startswith("[" + "=" * BAR_WIDTH + "]")
    assert progress_bar(123, 0) == "123B"
