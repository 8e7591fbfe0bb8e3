"""``pinnace server`` with a bad or unreachable etcd: one clear line on stderr, exit 1, quickly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.cluster import REPO
from tests.etcd_fixture import free_port


def _server(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "cli.main", "server", "--data-dir", str(tmp_path / "data"),
                             "--port", "0", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    return result, time.monotonic() - started


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(("args", "says"), [
    (["--datastore", "etcd://nonsense:port"], "port 'port' of endpoint 'nonsense:port' is not a number"),
    (["--datastore", "etcd://a:1,,b:2"], "empty endpoint"),
    (["--datastore", "etcd://127.0.0.1:2379", "--etcd-certfile", "/nonexistent.crt"], "go together"),
    (["--datastore", "etcd://127.0.0.1:2379", "--etcd-cafile", "/nonexistent/ca.crt"], "no such file"),
])
def test_malformed_etcd_options(tmp_path, args, says):
    result, took = _server(tmp_path, *args)
    line = _one_line(result)
    assert line.startswith("pinnace server: ") and says in line
    assert took < 5


def test_unreachable_etcd(tmp_path):
    port = free_port()
    result, took = _server(tmp_path, "--datastore", f"etcd://127.0.0.1:{port}")
    line = _one_line(result)
    assert line.startswith(f"pinnace server: cannot reach etcd at http://127.0.0.1:{port}")
    assert "Connection refused" in line
    assert took < 10


def test_unresolvable_etcd_host(tmp_path):
    result, _ = _server(tmp_path, "--datastore", "etcd://no-such-host.invalid:2379")
    assert "cannot resolve etcd host 'no-such-host.invalid'" in _one_line(result)
