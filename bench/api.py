"""API server benchmark: creates, GETs, LISTs and watch fan-out against a real ``pinnace server``.

``python -m bench.api`` (``make bench``) starts the server as a subprocess over HTTPS with client-cert
auth, drives it with the load generator of ``bench.loadgen`` (another process), and prints one
column of figures per ``--datastore``, next to the project's targets. A bare aiohttp + uvloop +
orjson server (``bench.peer_server``, plain HTTP and HTTPS) is measured in the same run with the same
load generator, and our/peer ratios are printed, so the figures read against the framework's floor.
It prints figures only; nothing here asserts a speed. Exit status 1 means a step failed or requests
were answered with errors (the message names the request and the answer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import uvloop

from bench.loadgen import (
    BenchError,
    Call,
    Client,
    Endpoint,
    LoadResult,
    WatchProcess,
    cpu_seconds,
    percentile,
    run_load,
    write_steady,
)
from bench.peer_server import OBJECT_PATH, sample_object, write_self_signed
from e2e.cluster import REPO, Server, free_port

OBJECT_SIZE = 1024  # bytes of JSON per ConfigMap sent
LIST_REPEAT = 5
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
WATCH_GRACE = 15.0  # seconds the watchers may lag behind the writer before missing events are counted
LOG_TAIL = 1500  # characters of a failed process's log shown in the report


@dataclass(frozen=True)
class Row:
    """One printed figure: how to label it, its unit's format, and the target it is held to."""

    key: str
    label: str
    decimals: int
    target: tuple[str, float] | None = None
    peer: bool = False  # measured on the peer too (same key), so an our/peer ratio is printed


ROWS: tuple[Row, ...] = (
    Row("create_seq", "creates/s, sequential (1 keep-alive connection)", 0, peer=True),
    Row("create_par", "creates/s, {concurrency} concurrent clients", 0, (">=", 1500), peer=True),
    Row("get_par", "GETs/s by name, {concurrency} concurrent clients", 0, (">=", 5000), peer=True),
    Row("list_json", "LIST {count} ConfigMaps, JSON, ms (median of 5)", 1, ("<=", 300)),
    Row("list_table", "LIST {count} ConfigMaps, as=Table, ms (median of 5)", 1),
    Row("watch_rate", "watch events/s delivered ({watchers} watchers, {offered:,.0f}/s offered)", 0),
    Row("watch_p50", "watch create-ack -> event p50, ms", 1),
    Row("watch_p99", "watch create-ack -> event p99, ms", 1, ("<=", 50)),
    Row("watch_sent_p99", "watch create-sent -> event p99, ms", 1),
    Row("watch_missing", "watch events missing (of {expected:,})", 0),
    Row("cpu_create", "server CPU per create ({concurrency} concurrent run), ms", 3),
    Row("cpu_get", "server CPU per GET ({concurrency} concurrent run), ms", 3),
    Row("cpu_event", "server CPU per watch event delivered (writes included), us", 1),
    Row("reader_cpu", "watch reader process CPU, % of one core", 0),
)
PEER_LABELS = {"create_seq": "POST echo/s, sequential (1 keep-alive connection)",
               "create_par": "POST echo/s, {concurrency} concurrent clients",
               "get_par": "GETs/s, {concurrency} concurrent clients"}

NOTES = (
    "notes: create-ack -> event is negative when the event reaches a watcher before the create's answer.",
    "       A rate whose peer ratio nears 1 is bounded by the Python load generator, not the server; the",
    "       server CPU rows give its own cost (one core serves about 1000 / ms-per-request requests/s).",
)


@dataclass
class Figures:
    """Measured values by row key (NaN when a step did not run) and what went wrong."""

    values: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def load(self, key: str, result: LoadResult) -> None:
        self.values[key] = result.rate
        self.values[f"{key}_ok"] = result.ok
        if result.errors:
            self.problems.append(f"{key}: {result.errors} requests failed; first: {result.first_error}")


@dataclass(frozen=True)
class Settings:
    count: int
    watchers: int
    concurrency: int
    datastores: tuple[str, ...]
    client_procs: int
    watch_objects: int
    watch_rate: float

    def label(self, template: str) -> str:
        return template.format(count=self.count, concurrency=self.concurrency, watchers=self.watchers,
                               offered=self.watch_rate * self.watchers,
                               expected=self.watch_objects * self.watchers)


# --- request bodies ----------------------------------------------------------------------------

_PAD = sample_object(OBJECT_SIZE)["data"]["payload"]


def configmap(name: str, *, sent: float | None = None) -> bytes:
    """A ~1 KB ConfigMap; ``sent`` (a monotonic time) lets a watcher measure send-to-event."""
    data = {"payload": _PAD} if sent is None else {"sent": repr(sent), "payload": _PAD}
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})


def namespace(name: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def collection(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


# --- one datastore -----------------------------------------------------------------------------

async def server_cpu(pid: int) -> float:
    return await asyncio.to_thread(cpu_seconds, pid)


def per_unit(cpu: float, units: float, *, scale: float) -> float:
    return cpu / units * scale if units else math.nan


async def measure_creates_and_reads(client: Client, endpoint: Endpoint, *, settings: Settings, figures: Figures,
                                    pid: int) -> None:
    for ns in ("bench-seq", "bench-par", "bench-watch"):
        await client.expect(Call("POST", "/api/v1/namespaces", namespace(ns)))
    warmup = Call("GET", "/api/v1/namespaces/bench-par")
    n, c = settings.count, settings.concurrency

    seq = [Call("POST", collection("bench-seq"), configmap(f"cm-{i:06d}")) for i in range(n)]
    figures.load("create_seq", await run_load(endpoint, seq, concurrency=1, warmup=warmup))
    rng = random.Random(n)
    creates = [Call("POST", collection("bench-par"), configmap(f"cm-{i:06d}")) for i in range(n)]
    gets = [Call("GET", f"{collection('bench-par')}/cm-{rng.randrange(n):06d}") for _ in range(n)]
    concurrent = (("create_par", "cpu_create", creates), ("get_par", "cpu_get", gets))
    for key, cpu_key, calls in concurrent:
        before = await server_cpu(pid)
        figures.load(key, await run_load(endpoint, calls, concurrency=c, procs=settings.client_procs, warmup=warmup))
        figures.values[cpu_key] = per_unit(await server_cpu(pid) - before, figures.values[f"{key}_ok"], scale=1000)

    sample = orjson.loads(await client.expect(gets[0]))  # the figures count statuses; check one answer's content
    if sample.get("metadata", {}).get("name") != gets[0].path.rsplit("/", 1)[1] or \
            sample.get("data", {}).get("payload") != _PAD:
        figures.problems.append(f"GET {gets[0].path} answered an object that is not the one created: "
                                f"{str(sample)[:300]}")

    for key, accept, items in (("list_json", "application/json", "items"), ("list_table", TABLE_ACCEPT, "rows")):
        durations, body = await client.timed(Call("GET", collection("bench-par")), repeat=LIST_REPEAT,
                                             headers={"Accept": accept})
        figures.values[key] = statistics.median(durations) * 1000
        # the controller-manager publishes kube-root-ca.crt into every namespace: not one of ours
        got = sum(1 for entry in orjson.loads(body).get(items) or ()
                  if _listed_name(entry) != "kube-root-ca.crt")
        if got != n:
            figures.problems.append(f"{key}: GET {collection('bench-par')} (Accept: {accept}) "
                                    f"returned {got} {items}, expected {n}")


def _listed_name(entry: dict) -> str:
    """The name of a list item or of a Table row (its first cell)."""
    if "cells" in entry:
        return str((entry.get("cells") or [""])[0])
    return str((entry.get("metadata") or {}).get("name", ""))


async def measure_watch(client: Client, endpoint: Endpoint, *, settings: Settings, figures: Figures,
                        pid: int) -> None:
    path = collection("bench-watch")
    listing = orjson.loads(await client.expect(Call("GET", path)))
    revision = listing["metadata"]["resourceVersion"]
    watch = WatchProcess(endpoint, f"{path}?watch=true&resourceVersion={revision}",
                         watchers=settings.watchers, expected=settings.watch_objects, prefix="ev-")
    try:
        opened = await watch.start()
        if opened < settings.watchers:
            figures.problems.append(f"watch: only {opened} of {settings.watchers} streams opened within 30 s")
        before = await server_cpu(pid)
        async with Client(endpoint, limit=16) as writer:
            acks, written = await write_steady(writer, path, count=settings.watch_objects, rate=settings.watch_rate,
                                               body=lambda i, sent: configmap(f"ev-{i:06d}", sent=sent))
        outcome = await watch.finish(grace=WATCH_GRACE)
        cpu = await server_cpu(pid) - before
    finally:
        watch.close()
    if written.errors:
        figures.problems.append(f"watch writer: {written.errors} creates failed; first: {written.first_error}")
    if outcome.first_error:
        figures.problems.append(f"watch: {outcome.first_error}")
    seen = [t for stream in outcome.received for t in stream if not math.isnan(t)]
    latencies = [(t - ack) * 1000 for stream in outcome.received for t, ack in zip(stream, acks, strict=True)
                 if not (math.isnan(t) or math.isnan(ack))]
    window = max(seen) - written.started if seen else math.nan
    figures.values.update(
        watch_rate=len(seen) / window if seen else 0.0,
        watch_p50=percentile(latencies, 50), watch_p99=percentile(latencies, 99),
        watch_sent_p99=percentile([s * 1000 for s in outcome.sent_to_event], 99),
        watch_missing=settings.watchers * settings.watch_objects - len(seen),
        cpu_event=per_unit(cpu, len(seen), scale=1e6),
        reader_cpu=per_unit(outcome.reader_cpu, window, scale=100) if seen else math.nan)


def log_tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-LOG_TAIL:]
    return "(no log)"


async def bench_datastore(datastore: str, *, data_dir: Path, settings: Settings) -> Figures:
    figures = Figures()
    await asyncio.to_thread(data_dir.mkdir, parents=True)
    server = Server(data_dir)
    log = data_dir.parent / f"{data_dir.name}.log"
    try:
        await asyncio.to_thread(server.start, "--datastore", datastore, timeout=60)
    except RuntimeError as exc:
        tail = await asyncio.to_thread(log_tail, log)
        figures.problems.append(f"pinnace server --datastore {datastore} did not start: {exc}\n{tail}")
        return figures
    pki = data_dir / "pki"
    endpoint = Endpoint(server.url, ca_file=str(pki / "ca.crt"), cert_file=str(pki / "admin.crt"),
                        key_file=str(pki / "admin.key"))
    try:
        async with Client(endpoint) as client:
            pid = server.process.pid
            await measure_creates_and_reads(client, endpoint, settings=settings, figures=figures, pid=pid)
            await measure_watch(client, endpoint, settings=settings, figures=figures, pid=pid)
    except (BenchError, aiohttp.ClientError, KeyError, ValueError) as exc:
        tail = await asyncio.to_thread(log_tail, log)
        figures.problems.append(f"{type(exc).__name__}: {exc}\nserver log tail:\n{tail}")
    finally:
        await asyncio.to_thread(server.stop)
    return figures


# --- the peer ----------------------------------------------------------------------------------

def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_peer(*, port: int, tls: tuple[Path, Path] | None, log: Path) -> subprocess.Popen:
    extra = ["--cert", str(tls[0]), "--key", str(tls[1])] if tls else []
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "bench.peer_server", "--port", str(port), *extra],
                                   cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"peer server exited with {process.returncode}:\n{log_tail(log)}")
        if _listening(port):
            return process
        time.sleep(0.05)
    stop_process(process)
    raise BenchError(f"peer server not listening on {port} within 20 s:\n{log_tail(log)}")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def bench_peer(scheme: str, *, workdir: Path, settings: Settings) -> Figures:
    figures = Figures()
    tls = await asyncio.to_thread(write_self_signed, workdir) if scheme == "https" else None
    port = free_port()
    try:
        process = await asyncio.to_thread(start_peer, port=port, tls=tls, log=workdir / f"peer-{scheme}.log")
    except BenchError as exc:
        figures.problems.append(str(exc))
        return figures
    endpoint = Endpoint(f"{scheme}://127.0.0.1:{port}", ca_file=str(tls[0]) if tls else None)
    get, post = Call("GET", OBJECT_PATH), Call("POST", OBJECT_PATH, orjson.dumps(sample_object(OBJECT_SIZE)))
    n, c = settings.count, settings.concurrency
    try:
        figures.load("create_seq", await run_load(endpoint, [post] * n, concurrency=1, warmup=get))
        figures.load("create_par", await run_load(endpoint, [post] * n, concurrency=c, procs=settings.client_procs,
                                                  warmup=get))
        figures.load("get_par", await run_load(endpoint, [get] * n, concurrency=c, procs=settings.client_procs,
                                               warmup=get))
    except BenchError as exc:
        figures.problems.append(str(exc))
    finally:
        await asyncio.to_thread(stop_process, process)
    return figures


# --- report ------------------------------------------------------------------------------------

def fmt(value: float | None, decimals: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{decimals}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "-"
    return f"{a / b:.2f}"


def verdict(value: float | None, target: tuple[str, float]) -> str:
    if value is None or math.isnan(value):
        return "-"
    op, bound = target
    return "yes" if (value >= bound if op == ">=" else value <= bound) else "NO"


def column_names(datastores: Sequence[str]) -> list[str]:
    short = [d.split("://", 1)[0] for d in datastores]
    return short if len(set(short)) == len(short) else list(datastores)


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths,
                                                                                                    strict=True)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(settings: Settings, ours: Sequence[Figures], peers: dict[str, Figures]) -> str:
    names = column_names(settings.datastores)
    header = ["figure", *names]
    header += [f"{n}/{names[0]}" for n in names[1:]]
    header += ["target", *(f"met ({n})" for n in names)] if len(names) > 1 else ["target", "met"]
    rows = []
    for row in ROWS:
        values = [f.values.get(row.key) for f in ours]
        cells = [settings.label(row.label), *(fmt(v, row.decimals) for v in values)]
        cells += [ratio(v, values[0]) for v in values[1:]]
        if row.target:
            cells += [f"{row.target[0]} {row.target[1]:,.0f}", *(verdict(v, row.target) for v in values)]
        else:
            cells += ["", *("" for _ in values)]
        rows.append(cells)
    out = [render_table(header, rows), ""]

    schemes = list(peers)
    peer_rows = [[settings.label(PEER_LABELS[r.key]), *(fmt(peers[s].values.get(r.key), 0) for s in schemes)]
                 for r in ROWS if r.peer]
    out += [render_table([f"peer: bare aiohttp {aiohttp.__version__} + uvloop + orjson, 1 KB JSON", *schemes],
                         peer_rows), ""]

    basis = "https" if "https" in peers else schemes[0]
    ratio_rows = [[settings.label(r.label),
                   *(ratio(f.values.get(r.key), peers[basis].values.get(r.key)) for f in ours)]
                  for r in ROWS if r.peer]
    out.append(render_table([f"ours / peer ({basis}, same load generator)", *names], ratio_rows))
    out += ["", *NOTES]
    return "\n".join(out)


def preamble(settings: Settings) -> str:
    procs = settings.client_procs
    return "\n".join([
        f"Pinnace API server benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, uvloop {uvloop.__version__}",
        f"server: `pinnace server` subprocess, HTTPS on loopback, client-certificate auth; "
        f"datastore(s): {', '.join(settings.datastores)}",
        f"load generator: aiohttp + uvloop, {procs} client process{'es' if procs > 1 else ''} for the concurrent "
        f"loads ({settings.concurrency} connections in total), 1 connection for sequential creates; watch readers "
        f"in 1 separate process, writer at {settings.watch_rate:g} creates/s for {settings.watch_objects} objects",
        "",
    ])


# --- entry point -------------------------------------------------------------------------------

def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def parse_args(argv: Sequence[str] | None) -> Settings:
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    p.add_argument("--count", type=positive_int, default=10_000, help="ConfigMaps per create run (default %(default)s)")
    p.add_argument("--watchers", type=positive_int, default=100, help="watch streams (default %(default)s)")
    p.add_argument("--concurrency", type=positive_int, default=32, help="concurrent clients (default %(default)s)")
    p.add_argument("--datastore", default="sqlite",
                   help="comma-separated datastores, one column each, passed to `pinnace server --datastore` "
                        "(default %(default)s; e.g. sqlite,etcd://127.0.0.1:2379)")
    p.add_argument("--client-procs", type=positive_int, default=2,
                   help="load generator processes for the concurrent loads (default %(default)s)")
    p.add_argument("--watch-objects", type=positive_int,
                   help="objects the watch writer creates (default: the smaller of --count and 1000)")
    p.add_argument("--watch-rate", type=positive_float, default=100.0,
                   help="creates/s of the watch writer (default %(default)s)")
    args = p.parse_args(argv)
    datastores = tuple(d.strip() for d in args.datastore.split(",") if d.strip())
    if not datastores:
        p.error("--datastore names no datastore")
    return Settings(count=args.count, watchers=args.watchers, concurrency=args.concurrency, datastores=datastores,
                    client_procs=args.client_procs, watch_objects=args.watch_objects or min(args.count, 1000),
                    watch_rate=args.watch_rate)


async def run(settings: Settings) -> int:
    print(preamble(settings), flush=True)
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="pinnace-bench-"))
    try:
        peers = {scheme: await bench_peer(scheme, workdir=workdir, settings=settings) for scheme in ("http", "https")}
        ours = [await bench_datastore(d, data_dir=workdir / f"data-{i}", settings=settings)
                for i, d in enumerate(settings.datastores)]
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)
    print(report(settings, ours, peers))
    named = [*(f"peer {s}" for s in peers), *settings.datastores]
    problems = [f"({name}) {p}" for name, f in zip(named, [*peers.values(), *ours], strict=True) for p in f.problems]
    for problem in problems:
        print(f"\nPROBLEM {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    return uvloop.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
