"""Containers outlive their daemon: SIGKILL ``pinnace engine serve`` with five containers running,
start it again on the same root, and they are still running, listed, logging, and stoppable."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

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
COUNT = 5


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    kill_leftover_conmons(tmp_path / "root")


def engine_cli(engine: EngineProcess, *args: str) -> str:
    return pinnace("engine", *args, env=engine.env).stdout.decode()


def log_lines(engine: EngineProcess, name: str) -> int:
    return len(engine_cli(engine, "logs", name).splitlines())


def test_containers_survive_a_killed_daemon(base: Path, tmp_path_factory: pytest.TempPathFactory):
    first = EngineProcess(base).start()
    second = None
    try:
        seed_busybox(first, tmp_path_factory.mktemp("seed"))
        names = [f"keep{i}" for i in range(COUNT)]
        ids = [
            engine_cli(first, "run", "-d", "--name", name, "busybox", "sh", "-c",
                       "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done").strip()
            for name in names
        ]
        wait_until(lambda: all(log_lines_direct(base, i) >= 2 for i in ids), what="first ticks")
        conmons = sorted(leftovers(first.root)["conmon"])
        assert len(conmons) == COUNT

        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)  # no shutdown of any kind
        first.process.wait(timeout=10)
        first.process = None
        before = {n: log_lines_direct(base, i) for n, i in zip(names, ids, strict=True)}
        time.sleep(0.3)
        assert sorted(leftovers(first.root)["conmon"]) == conmons  # the shims never noticed

        second = EngineProcess(base).start()
        listing = engine_cli(second, "ps", "--no-trunc", "-q").split()
        assert sorted(listing) == sorted(ids)
        rows = {line.split()[-1]: line for line in engine_cli(second, "ps").splitlines()[1:]}
        assert sorted(rows) == sorted(names) and all("   Up " in row for row in rows.values())
        wait_until(lambda: all(log_lines_direct(base, i) > before[n] + 2 for n, i in zip(names, ids, strict=True)),
                   what="logs going on")
        assert all(log_lines(second, n) > before[n] + 2 for n in names)  # and the daemon serves them

        started = time.monotonic()
        engine_cli(second, "stop", "-t", "1", *names)
        assert time.monotonic() - started < 10
        statuses = engine_cli(second, "ps", "-a").splitlines()[1:]
        assert len(statuses) == COUNT and all("Exited (" in row for row in statuses)
        engine_cli(second, "rm", *names)
        assert not any(leftovers(second.root, network=False).values()), leftovers(second.root)
        second.stop()
        assert not any(leftovers(second.root).values()), leftovers(second.root)
    finally:
        for engine in (first, second):
            if engine is not None:
                engine.stop()


def log_lines_direct(base: Path, cid: str) -> int:
    """Lines in a container's log file while no daemon runs (conmon keeps writing it)."""
    path = base / "root" / "containers" / cid / "ctr.log"
    with open(path, "rb") as f:
        return sum(1 for _ in f) if os.path.getsize(path) else 0
