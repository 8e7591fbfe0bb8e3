"""``pinnace scheduler``: bad input is one line on stderr and a non-zero exit, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from e2e.cluster import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", "scheduler", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_missing_kubeconfig_is_one_line(tmp_path: Path):
    result = run_cli("--kubeconfig", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr.startswith("pinnace scheduler: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_bind_concurrency_is_one_line(tmp_path: Path):
    result = run_cli("--kubeconfig", str(tmp_path / "nope"), "--bind-concurrency", "0")
    assert result.returncode == 1 and "--bind-concurrency" in result.stderr and "Traceback" not in result.stderr
