"""The ``pinnace`` command: bad input is one line and a non-zero exit; up/down manage a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from e2e.cluster import REPO


def pinnace(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


# `pinnace up`/`kubeconfig`/`down` against a real cluster: e2e/test_up.py

@pytest.mark.parametrize("args, words", [
    (["server", "--port", "70000"], "not a TCP port"),
    (["server", "--datastore", "mongodb://x"], "--datastore 'mongodb://x'"),
    (["kubeconfig", "--data-dir", "/nonexistent/pinnace"], "no kubeconfig"),
])
def test_bad_input_is_one_line(args: list[str], words: str, tmp_path: Path):
    if args[0] == "server":
        args = [*args, "--data-dir", str(tmp_path / "data")]
    result = pinnace(*args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr


def test_port_in_use_is_one_line(tmp_path: Path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = pinnace("server", "--data-dir", str(tmp_path / "data"), "--port", str(port))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "address already in use" in result.stderr.lower().splitlines()[-1]


def test_controller_manager_runs_alone(tmp_path: Path):
    from e2e.cluster import Server

    server = Server(tmp_path / "data")
    server.data_dir.mkdir()
    server.start("--no-controllers")
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "controller-manager", "--kubeconfig",
                                str(server.kubeconfig), "--controllers", "namespace"], cwd=REPO,
                               stderr=subprocess.PIPE, text=True)
    try:
        code, _ = server.request("POST", "/api/v1/namespaces", {"metadata": {"name": "short-lived"}})
        assert code == 201
        server.request("DELETE", "/api/v1/namespaces/short-lived")
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.request("GET", "/api/v1/namespaces/short-lived")[0] != 404:
            time.sleep(0.2)
        assert server.request("GET", "/api/v1/namespaces/short-lived")[0] == 404
    finally:
        process.terminate()
        process.wait(10)
        server.stop()
    assert "reconciling" in process.stderr.read()
