"""Smoke run of ``python -m bench.cni``: every figure printed, ratios consistent, nothing left behind."""

from __future__ import annotations

import subprocess
import sys

import pytest
from netns_kit import REFERENCE_DIR, REPO, needs_net

from bench import cni as bench_cni

pytestmark = [needs_net, pytest.mark.skipif(not (REFERENCE_DIR / "bridge").exists(),
                                            reason="reference CNI plugins not installed")]


def test_figures_ratio_is_the_ratio_of_medians() -> None:
    row = bench_cni.Figures("x", [10.0, 12.0, 30.0], [5.0, 6.0, 7.0], "<= 1.5x").row()
    assert row.split()[1:6] == ["12.0", "30.0", "6.0", "7.0", "2.00x"]


def test_small_run_prints_every_row_and_cleans_up() -> None:
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    result = subprocess.run([sys.executable, "-m", "bench.cni", "--runs", "2", "--sequential", "3",
                             "--settle", "0"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    labels = ["process start (VERSION)", "ADD (ipMasq off)", "DEL (ipMasq off)", "ADD (ipMasq on)",
              "DEL (ipMasq on)", "3 sequential ADDs (total)", "3 sequential DELs (total)"]
    lines = result.stdout.splitlines()
    for label in labels:
        row = next((line for line in lines if line.startswith(label)), None)
        assert row is not None, f"missing {label!r} in:\n{result.stdout}"
        ours, _p90, peer, _peer90, ratio = row[len(label):].split()[:5]
        assert float(ours) > 0 and float(peer) > 0
        assert float(ratio.rstrip("x")) == pytest.approx(float(ours) / float(peer), rel=0.06)  # printed rounded
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "pn-b" not in after.replace(before, "")
