"""Smoke runs of the API server benchmark: the script works end to end; no timing is asserted.

Also checks the load generator's counting against the peer server, whose answers are known, and the
report's arithmetic, since a benchmark that miscounts prints confident wrong figures.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from bench import api, loadgen
from bench.peer_server import OBJECT_PATH, sample_object, write_self_signed
from e2e.cluster import REPO, free_port


def _float(text: str) -> float:
    return math.nan if text == "-" else float(text.replace(",", ""))


def test_full_script_small_run_prints_every_figure() -> None:
    temp_before = set(Path(tempfile.gettempdir()).glob("pinnace-bench-*"))
    result = subprocess.run([sys.executable, "-m", "bench.api", "--count", "50", "--watchers", "3",
                             "--concurrency", "4", "--watch-rate", "200"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    out = result.stdout
    settings = api.parse_args(["--count", "50", "--watchers", "3", "--concurrency", "4", "--watch-rate", "200"])
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    for row in api.ROWS:
        label = settings.label(row.label)
        assert label in lines, f"missing figure {label!r} in:\n{out}"
        value = _float(lines[label][len(label):].split()[0])
        assert not math.isnan(value), lines[label]
    assert _float(lines[settings.label("watch events missing (of {expected:,})")][-20:].split()[0]) == 0
    assert "peer: bare aiohttp" in out and "ours / peer (https" in out
    assert re.search(r"2 client processes", out)
    assert set(Path(tempfile.gettempdir()).glob("pinnace-bench-*")) <= temp_before, "temp dir left behind"


def test_bad_option_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.api", "--count", "0"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "not a positive integer" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(params=["http", "https"])
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[loadgen.Endpoint]:
    tls = write_self_signed(tmp_path) if request.param == "https" else None
    port = free_port()
    process = api.start_peer(port=port, tls=tls, log=tmp_path / "peer.log")
    try:
        yield loadgen.Endpoint(f"{request.param}://127.0.0.1:{port}", ca_file=str(tls[0]) if tls else None)
    finally:
        api.stop_process(process)


@pytest.fixture
async def client(peer: loadgen.Endpoint) -> AsyncIterator[loadgen.Client]:
    async with loadgen.Client(peer) as c:
        yield c


@pytest.mark.parametrize("procs", [1, 2])
async def test_load_counts_successes_and_errors(peer: loadgen.Endpoint, procs: int) -> None:
    good = [loadgen.Call("POST", OBJECT_PATH, orjson.dumps(sample_object()))] * 30
    bad = [loadgen.Call("POST", OBJECT_PATH, b"not json")] * 7
    result = await loadgen.run_load(peer, good + bad, concurrency=4, procs=procs,
                                    warmup=loadgen.Call("GET", OBJECT_PATH))
    assert (result.ok, result.errors, result.processes) == (30, 7, procs)
    assert result.first_error is not None and "-> 400" in result.first_error
    assert result.elapsed > 0 and result.rate == pytest.approx(30 / result.elapsed)


async def test_failed_warmup_is_reported(peer: loadgen.Endpoint) -> None:
    with pytest.raises(loadgen.BenchError, match="warm-up failed: GET /missing -> 404"):
        await loadgen.run_load(peer, [], concurrency=2, warmup=loadgen.Call("GET", "/missing"))


async def test_peer_answers_a_1kb_object_and_echoes(client: loadgen.Client) -> None:
    body = await client.expect(loadgen.Call("GET", OBJECT_PATH))
    assert 1000 <= len(body) <= 1100
    sent = {"kind": "ConfigMap", "data": {"k": "v"}}
    assert orjson.loads(await client.expect(loadgen.Call("POST", OBJECT_PATH, orjson.dumps(sent)))) == sent
    with pytest.raises(loadgen.BenchError, match=r"POST /obj -> 400 body is not JSON"):
        await client.expect(loadgen.Call("POST", OBJECT_PATH, b"{"))


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert loadgen.percentile(values, 50) == 50.0
    assert loadgen.percentile(values, 99) == 99.0
    assert loadgen.percentile(values, 100) == 100.0
    assert math.isnan(loadgen.percentile([], 50))


def test_combine_spans_first_start_to_last_end() -> None:
    a = loadgen.LoadResult(ok=10, errors=1, started=1.0, ended=3.0, first_error="x")
    b = loadgen.LoadResult(ok=30, started=2.0, ended=5.0)
    both = loadgen.LoadResult.combine([a, b])
    assert (both.ok, both.errors, both.elapsed, both.rate, both.first_error) == (40, 1, 4.0, 10.0, "x")


def test_report_prints_a_column_and_ratio_per_datastore() -> None:
    settings = api.parse_args(["--count", "10", "--datastore", "sqlite,etcd://127.0.0.1:2379"])
    first = api.Figures(values={"create_par": 2000.0, "list_json": 400.0})
    second = api.Figures(values={"create_par": 1000.0, "list_json": 200.0})
    peers = {"http": api.Figures(values={"create_par": 8000.0}), "https": api.Figures(values={"create_par": 4000.0})}
    text = api.report(settings, [first, second], peers)
    assert "etcd/sqlite" in text
    row = next(line for line in text.splitlines() if line.startswith("creates/s, 32 concurrent"))
    assert row.split()[-7:] == ["2,000", "1,000", "0.50", ">=", "1,500", "yes", "NO"]
    row = next(line for line in text.splitlines() if line.startswith("LIST 10 ConfigMaps, JSON"))
    assert row.split()[-7:] == ["400.0", "200.0", "0.50", "<=", "300", "NO", "yes"]
    ratio_row = [line for line in text.splitlines() if line.startswith("creates/s, 32 concurrent")][-1]
    assert ratio_row.split()[-2:] == ["0.50", "0.25"]  # ours over the HTTPS peer


def test_cpu_seconds_of_this_process() -> None:
    import os
    import time

    before = loadgen.cpu_seconds(os.getpid())
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass
    assert loadgen.cpu_seconds(os.getpid()) - before >= 0.05
    assert math.isnan(loadgen.cpu_seconds(2**22 + 12345))
