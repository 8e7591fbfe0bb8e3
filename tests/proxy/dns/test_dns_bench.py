"""A small run of ``python -m bench.dns``: every workload gets answers of the expected kind."""

from __future__ import annotations

import subprocess
import sys

from e2e.cluster import REPO


def test_bench_dns_small_run_prints_every_workload() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.dns", "--services", "3", "--seconds", "0.3",
                             "--concurrency", "4"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line[:40].strip(): line[40:].split() for line in result.stdout.splitlines()[2:]}
    expected = {"service A, repeated": "NOERROR", "service A, mixed case (cache miss)": "NOERROR",
                "search-path miss (NXDOMAIN)": "NXDOMAIN"}
    assert set(rows) == set(expected), result.stdout
    for label, rcode in expected.items():
        rate, p50, p99, lost = (float(v.replace(",", "")) for v in rows[label][:4])
        assert rate > 0 and 0 < p50 <= p99 and lost == 0, rows[label]
        assert f"'{rcode}'" in " ".join(rows[label][5:]) and len(rows[label][5:]) == 2, rows[label]


def test_bench_dns_rejects_bad_options() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.dns", "--services", "0"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "not a positive number" in result.stderr
