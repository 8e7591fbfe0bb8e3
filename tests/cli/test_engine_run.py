"""``pinnace engine run/ps/logs/exec/stop/kill/rm/inspect/stats/top`` against a real daemon with
real containers (crun under conmon); bad input is one stderr line, exit 1, and nothing left behind."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.engine.daemon.engine_env import EngineProcess, pinnace
from tests.engine.daemon.test_containers_docker import (
    kill_leftover_conmons,
    leftovers,
    needs_runtime,
    seed_busybox,
    wait_until,
)

pytestmark = needs_runtime


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    daemon = EngineProcess(tmp_path_factory.mktemp("engine")).start()
    seed_busybox(daemon, tmp_path_factory.mktemp("seed"))
    try:
        yield daemon
        ids = cli(daemon, "ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            cli(daemon, "rm", "-f", *(i.decode() for i in ids))
        daemon.stop()
        assert not any(leftovers(daemon.root).values()), leftovers(daemon.root)
    finally:
        daemon.stop()
        kill_leftover_conmons(daemon.root)


def cli(engine: EngineProcess, *args: str, input: bytes | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    return pinnace("engine", *args, env=engine.env, input=input, check=check)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0].startswith("pinnace engine: ")
    return lines[0]


def test_run_rm_prints_and_exits_with_the_status(engine: EngineProcess):
    assert cli(engine, "run", "--rm", "busybox", "echo", "hi").stdout == b"hi\n"
    failed = cli(engine, "run", "--rm", "busybox", "sh", "-c", "echo bad >&2; exit 42", check=False)
    assert failed.returncode == 42 and failed.stderr == b"bad\n" and failed.stdout == b""
    piped = cli(engine, "run", "--rm", "-i", "-e", "GREETING=hey", "-w", "/etc", "busybox", "sh", "-c",
                'read x; echo "$GREETING $x from $(pwd)"', input=b"you\n")
    assert piped.stdout == b"hey you from /etc\n"
    assert cli(engine, "ps", "-aq").stdout == b""
    assert not any(leftovers(engine.root, network=False).values())


def test_detached_logs_exec_stop_rm(engine: EngineProcess):
    script = "i=0; while [ $i -lt 1000 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done"
    cid = cli(engine, "run", "-d", "--name", "bg", "busybox", "sh", "-c", script).stdout.decode().strip()
    assert len(cid) == 64
    wait_until(lambda: b"tick 3" in cli(engine, "logs", "bg").stdout, what="output")
    follower = subprocess.Popen([*_pinnace_argv(), "engine", "logs", "-f", "--tail", "1", "bg"], env=engine.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        exec_out = cli(engine, "exec", "-i", "bg", "sh", "-c", "cat; echo $((6*7))", input=b"from stdin\n")
        assert exec_out.stdout == b"from stdin\n42\n"
        assert cli(engine, "exec", "bg", "sh", "-c", "exit 9", check=False).returncode == 9
        rows = cli(engine, "ps").stdout.decode().splitlines()
        assert rows[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        assert rows[1].startswith(cid[:12]) and rows[1].endswith("bg") and "Up " in rows[1]
        top = cli(engine, "top", "bg").stdout.decode().splitlines()
        assert "PID" in top[0].split() and any("sh -c" in line for line in top[1:])
        stats = cli(engine, "stats", "--no-stream", "bg").stdout.decode().splitlines()
        assert stats[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"] and stats[1].split()[:2] == [cid[:12], "bg"]
        doc = json.loads(cli(engine, "inspect", "bg", "busybox").stdout)
        assert doc[0]["Id"] == cid and doc[0]["State"]["Running"] and doc[1]["Id"].startswith("sha256:")

        started = time.monotonic()
        assert cli(engine, "stop", "-t", "1", "bg").stdout == b"bg\n"
        assert time.monotonic() - started < 6
        out, _ = follower.communicate(timeout=10)  # logs -f ends with the container
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    ticks = out.decode().splitlines()
    assert len(ticks) >= 2 and all(t.startswith("tick ") for t in ticks)
    numbers = [int(t.split()[1]) for t in ticks]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # in order, none lost
    assert "Exited (137)" in cli(engine, "ps", "-a").stdout.decode()
    assert cli(engine, "rm", "bg").stdout == b"bg\n"
    assert cli(engine, "ps", "-aq").stdout == b""


def _pinnace_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "cli.main"]


def test_kill_and_rm_force(engine: EngineProcess):
    cli(engine, "run", "-d", "--name", "victim", "busybox", "sleep", "600")
    cli(engine, "run", "-d", "--name", "victim2", "busybox", "sleep", "600")
    assert cli(engine, "kill", "-s", "TERM", "victim").stdout == b"victim\n"  # PID 1 ignores TERM: still up
    assert "victim" in cli(engine, "ps").stdout.decode()
    line = one_error_line(cli(engine, "rm", "victim", check=False))
    assert "container is running" in line
    assert cli(engine, "rm", "-f", "victim", "victim2").stdout == b"victim\nvictim2\n"
    line = one_error_line(cli(engine, "kill", "victim", check=False))
    assert "No such container: victim" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch:1", "true"], "No such image: nosuch:1"),
        (["busybox", "nosuchcmd"], 'exec: "nosuchcmd": executable file not found in $PATH'),
        (["-v", "/nonexistent/pinnace/dir:/data", "busybox", "true"], "bind source path does not exist"),
        (["-v", "relative:/data", "busybox", "true"], "named volumes are not supported"),
        (["--memory", "1k", "busybox", "true"], "minimum memory limit allowed is 6MB"),
        (["--memory", "lots", "busybox", "true"], "invalid value 'lots' for --memory"),
        (["--cpus", "-1", "busybox", "true"], "range of CPUs is from 0.01"),
        (["--pids-limit", "x", "busybox", "true"], "invalid value 'x' for --pids-limit"),
        (["--network", "nowhere", "busybox", "true"], "network nowhere not found"),
        (["-p", "80:x", "busybox", "true"], "invalid port specification"),
        (["-u", "nobody-here", "busybox", "true"], "nobody-here"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(engine: EngineProcess, args: list[str], message: str):
    line = one_error_line(cli(engine, "run", "--rm", *args, check=False))
    assert message in line
    assert cli(engine, "ps", "-aq").stdout == b""
    assert not any(leftovers(engine.root, network=False).values()), leftovers(engine.root)


def test_a_second_container_with_the_same_name(engine: EngineProcess):
    cid = cli(engine, "run", "-d", "--name", "dup", "busybox", "sleep", "600").stdout.decode().strip()
    try:
        line = one_error_line(cli(engine, "run", "--name", "dup", "busybox", "true", check=False))
        assert 'the container name "/dup" is already in use' in line
        assert cli(engine, "ps", "-aq", "--no-trunc").stdout.decode().split() == [cid]
        assert len(leftovers(engine.root)["conmon"]) == 1
    finally:
        cli(engine, "rm", "-f", "dup")


def test_no_daemon_is_one_line(tmp_path):
    env = {"PINNACE_ENGINE_SOCKET": str(tmp_path / "none.sock")}
    import os

    result = pinnace("engine", "run", "--rm", "busybox", "true", env={**os.environ, **env}, check=False)
    assert "cannot connect to the engine" in one_error_line(result)
