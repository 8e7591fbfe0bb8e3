"""Smoke run of bench/services at a tiny size: every figure is printed and the ratios are real numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from netkit import needs_net

REPO = Path(__file__).resolve().parents[2]


@needs_net
def test_bench_prints_every_figure() -> None:
    before = set(Path("/run/netns").glob("pxt*")) if Path("/run/netns").exists() else set()
    result = subprocess.run([sys.executable, "-m", "bench.services", "--services", "20", "--endpoints", "3",
                             "--seconds", "0.3", "--rounds", "1", "--api"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    out = result.stdout
    for label in ("cold full sync (20 x 3)", "incremental change", "restart: full resync",
                  "host client, keep-alive: pod IP / ClusterIP", "pod client, new conn/request: ratio",
                  "API: first create -> all in nftables", "API: one EndpointSlice update -> nftables"):
        assert label in out, f"missing {label!r} in:\n{out}"
    ratios = [float(m) for m in re.findall(r"ratio \(target >= 0\.9\)\s+([0-9.]+)", out)]
    assert len(ratios) == 4 and all(r > 0 for r in ratios), out
    pairs = re.findall(r"([0-9,]+) / ([0-9,]+) req/s", out)
    assert len(pairs) == 4, out
    for direct, service in pairs:  # the printed ratio is the quotient of the printed rates
        ratio = float(service.replace(",", "")) / float(direct.replace(",", ""))
        assert f"{ratio:.2f}" in out
    mine = {p for p in set(Path("/run/netns").glob("pxt*")) - before}
    assert not mine, f"benchmark left namespaces behind: {mine}"
