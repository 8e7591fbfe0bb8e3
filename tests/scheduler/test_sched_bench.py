"""A smoke run of ``python -m bench.scheduler`` at a tiny size: every pod gets bound, figures print."""

from __future__ import annotations

import re
import subprocess
import sys

from e2e.cluster import REPO


def test_bench_scheduler_smoke_run():
    result = subprocess.run([sys.executable, "-m", "bench.scheduler", "--nodes", "20", "--pods", "60",
                             "--timeout", "30"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"pods bound / created\s+60 / 60\n", result.stdout), result.stdout
    assert "pods bound/s, overall" in result.stdout and "latency p99" in result.stdout
