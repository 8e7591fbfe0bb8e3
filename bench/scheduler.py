"""Scheduler benchmark on the shape of upstream scheduler_perf's "SchedulingBasic" test.

``python -m bench.scheduler`` starts a real ``pinnace server`` (API server only) and the scheduler
as a separate ``pinnace scheduler`` process, creates ``--nodes`` fake Node objects (4 cpu, 32Gi,
110 pods each, as upstream's node template), then creates ``--pods`` pods requesting 100m cpu and
500Mi (upstream's pod template) while the scheduler runs, and watches them get bound.

It prints: pods bound per second (from the first pod created to the last one seen bound, and over
the middle 80% of bindings, which leaves out ramp-up and tail), per-pod scheduling latency (create
acknowledged → binding seen on a watch; p50/p99), the pod creation rate it managed to offer, and
the CPU seconds each process spent. With ``--backlog`` the pods are all created first and the
scheduler started afterwards, which measures the scheduler alone, without competing creations.
Nothing is asserted; the figures are printed next to the target (700 pods/s). Exit status 1 means
a step failed or pods were left unbound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import cpu_seconds, percentile
from e2e.cluster import REPO, Server
from machinery.client import ApiClient, ApiError, Resource, TransportError
from machinery.kubeconfig import load_kubeconfig

NODES = Resource("", "v1", "nodes", False)
PODS = Resource("", "v1", "pods", True)
NAMESPACE = "default"
TARGET_RATE = 700.0
CREATE_CONCURRENCY = 32
#: seconds the scheduler may take to list the cluster and start
READY_TIMEOUT = 120


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which."""


def fake_node(name: str) -> dict[str, Any]:
    amounts = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": dict(amounts), "allocatable": dict(amounts),
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def bench_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}}


@dataclass
class Run:
    created: dict[str, float] = field(default_factory=dict)   # pod -> create acknowledged
    bound: dict[str, float] = field(default_factory=dict)     # pod -> binding seen on the watch
    create_started: float = math.nan
    create_finished: float = math.nan
    scheduler_started: float = math.nan


async def create_all(client: ApiClient, res: Resource, objects: list[dict[str, Any]], *,
                     stamps: dict[str, float] | None = None) -> None:
    """Create objects with bounded concurrency; ``stamps`` gets each acknowledgement's time."""
    pending = iter(objects)

    async def worker() -> None:
        for obj in pending:
            await client.create(res, obj, namespace=obj["metadata"].get("namespace"))
            if stamps is not None:
                stamps[obj["metadata"]["name"]] = time.monotonic()

    await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))


async def watch_bindings(client: ApiClient, run: Run, *, expected: int, resource_version: str) -> None:
    """Record when each pod is first seen with a node, until ``expected`` pods are."""
    rv = resource_version
    while len(run.bound) < expected:
        events = client.watch(PODS, namespace=NAMESPACE, resource_version=rv, timeout_seconds=600)
        async with contextlib.aclosing(events):
            async for event in events:
                obj = event["object"]
                rv = obj.get("metadata", {}).get("resourceVersion") or rv
                name = obj.get("metadata", {}).get("name")
                if event["type"] != "BOOKMARK" and obj.get("spec", {}).get("nodeName") and name not in run.bound:
                    run.bound[name] = time.monotonic()
                    if len(run.bound) >= expected:
                        return


def start_scheduler(kubeconfig: Path, log: Path) -> subprocess.Popen:
    handle = open(log, "ab")  # the child keeps it open
    return subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler", "--kubeconfig", str(kubeconfig)],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle)


async def wait_scheduler_ready(proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"scheduler exited with {proc.returncode}; log in {log}")
        if "scheduling for" in await asyncio.to_thread(log.read_text, errors="replace"):
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"scheduler not ready within {READY_TIMEOUT}s; log in {log}")


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def measure(server: Server, *, nodes: int, pods: int, backlog: bool, deadline: float,
                  work: Path) -> tuple[Run, dict[str, float]]:
    config = await asyncio.to_thread(load_kubeconfig, str(server.kubeconfig))
    run = Run()
    log = work / "scheduler.log"
    scheduler: subprocess.Popen | None = None
    async with ApiClient(config, max_connections=CREATE_CONCURRENCY + 4) as client:
        t0 = time.monotonic()
        await create_all(client, NODES, [fake_node(f"node-{i}") for i in range(nodes)])
        print(f"created {nodes} nodes in {time.monotonic() - t0:.1f}s", flush=True)
        rv = (await client.list(PODS, namespace=NAMESPACE, limit=1))["metadata"]["resourceVersion"]
        watcher = asyncio.create_task(watch_bindings(client, run, expected=pods, resource_version=rv))
        try:
            if not backlog:
                scheduler = start_scheduler(server.kubeconfig, log)
                await wait_scheduler_ready(scheduler, log)
                run.scheduler_started = time.monotonic()
            run.create_started = time.monotonic()
            await create_all(client, PODS, [bench_pod(f"pod-{i}") for i in range(pods)], stamps=run.created)
            run.create_finished = time.monotonic()
            if backlog:
                scheduler = start_scheduler(server.kubeconfig, log)
                await wait_scheduler_ready(scheduler, log)
                run.scheduler_started = time.monotonic()
            try:
                async with asyncio.timeout(deadline):
                    await asyncio.shield(watcher)
            except TimeoutError:
                pass
            cpu = {"server": cpu_seconds(server.process.pid) if server.process else math.nan,
                   "scheduler": cpu_seconds(scheduler.pid) if scheduler else math.nan,
                   "bench": time.process_time()}
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            stop_process(scheduler)
    return run, cpu


def figures(run: Run, *, pods: int, backlog: bool) -> list[tuple[str, str]]:
    bound_times = sorted(run.bound.values())
    start = run.scheduler_started if backlog else run.create_started
    rows: list[tuple[str, str]] = []
    if bound_times:
        overall = len(bound_times) / max(bound_times[-1] - start, 1e-9)
        rows.append((f"pods bound/s, overall (target >= {TARGET_RATE:.0f})", f"{overall:,.0f}"))
        lo, hi = int(len(bound_times) * 0.1), int(len(bound_times) * 0.9) - 1
        if hi > lo:
            middle = (hi - lo) / max(bound_times[hi] - bound_times[lo], 1e-9)
            rows.append(("pods bound/s, middle 80% of bindings", f"{middle:,.0f}"))
    latencies = [(run.bound[n] - run.created[n]) * 1000 for n in run.bound if n in run.created]
    if backlog:
        latencies = [(run.bound[n] - run.scheduler_started) * 1000 for n in run.bound]
        what = "scheduler ready"
    else:
        what = "create ack"
    rows.append((f"per-pod latency p50, ms ({what} -> bound seen)", f"{percentile(latencies, 50):,.1f}"))
    rows.append((f"per-pod latency p99, ms ({what} -> bound seen)", f"{percentile(latencies, 99):,.1f}"))
    create_rate = len(run.created) / max(run.create_finished - run.create_started, 1e-9)
    rows.append(("pod creations/s offered", f"{create_rate:,.0f}"))
    rows.append(("pods bound / created", f"{len(run.bound):,} / {pods:,}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=5000, help="fake nodes (default 5000)")
    parser.add_argument("--pods", type=int, default=10000, help="pods to schedule (default 10000)")
    parser.add_argument("--backlog", action="store_true",
                        help="create all pods first, then start the scheduler (measures it alone)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for all bindings")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.pods < 1:
        parser.error("--nodes and --pods must be at least 1")
    print(f"scheduler benchmark: {args.nodes} nodes, {args.pods} pods, "
          f"{'backlog' if args.backlog else 'created while scheduling'}; "
          f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="pinnace-bench-sched-") as tmp:
        work = Path(tmp)
        server = Server(work / "data")
        server.data_dir.mkdir()
        try:
            server.start("--no-controllers")
            run, cpu = asyncio.run(measure(server, nodes=args.nodes, pods=args.pods, backlog=args.backlog,
                                           deadline=args.timeout, work=work))
        except (BenchError, RuntimeError, ApiError, TransportError, OSError) as exc:
            print(f"bench.scheduler: {exc}", file=sys.stderr)
            return 1
        finally:
            server.stop()
        rows = figures(run, pods=args.pods, backlog=args.backlog)
        rows.append(("CPU seconds: API server / scheduler / this client",
                     f"{cpu['server']:.1f} / {cpu['scheduler']:.1f} / {cpu['bench']:.1f}"))
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            print(f"  {label.ljust(width)}  {value}")
        if len(run.bound) < args.pods:
            tail = (work / "scheduler.log").read_text(errors="replace")[-1500:]
            print(f"bench.scheduler: only {len(run.bound)} of {args.pods} pods bound; scheduler log tail:\n{tail}",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
