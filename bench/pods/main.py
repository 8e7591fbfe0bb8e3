"""``python -m bench.pods``: the parts of the pod benchmark in one run on one throw-away cluster.

Order: ``pinnace up`` from nothing (its steps timed) → idle memory with 0 pods → pod start latency
for each ``--replicas`` size (memory sampled again while the largest size runs) → time-to-app
(which stops and restarts the cluster) → ``pinnace down``. A part that fails is reported and the
next one still runs; the exit status is 1 if any did. Targets missed do not change the exit status:
nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path

from bench.pods import latency, memory, time_to_app
from bench.pods.cluster import BenchCluster, BenchError, open_cluster
from bench.pods.report import Results, render
from machinery.client import ApiClient, ApiError, TransportError

PARTS = ("latency", "memory", "time-to-app")
POD_BRIDGE = "pinnacebr0"  # the bridge of the conflist the kubelet writes (its --cni-bridge default)


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be a positive integer")
    return values


def _parts(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown part(s) {unknown or [text]}; choose from {', '.join(PARTS)}")
    return chosen


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must not be negative")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pods", description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=_positive_ints, default=[1, 10, 100],
                   help="Deployment sizes to time, one after the other (default 1,10,100)")
    p.add_argument("--parts", type=_parts, default=list(PARTS), help=f"which parts to run (default {','.join(PARTS)})")
    p.add_argument("--settle", type=_seconds, default=5.0,
                   help="seconds to let the cluster idle before a memory reading (default %(default)s)")
    p.add_argument("--timeout", type=_seconds, default=180.0,
                   help="seconds one size (or the time-to-app run) may take (default %(default)s)")
    return p.parse_args(argv)


def shared_bridge_ports(bridge: str = POD_BRIDGE) -> list[str]:
    """Ports already on the pod bridge: another cluster on this host, whose pods use the same subnet."""
    ports = Path("/sys/class/net") / bridge / "brif"
    return sorted(p.name for p in ports.iterdir()) if ports.is_dir() else []


def preamble(args: argparse.Namespace, *, foreign_ports: list[str]) -> str:
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [f"Pinnace pod benchmark: {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
             f"{platform.python_version()}; load average at the start {load} (other work on this host skews "
             f"the figures); one node, `pinnace up` on a temp data dir, real /usr/bin/kubectl"]
    if foreign_ports:
        lines.append(f"warning: {len(foreign_ports)} port(s) of another cluster were on {POD_BRIDGE} at the start; "
                     f"`pinnace up` gives every cluster the same pod subnet, so pod IPs may collide and HTTP "
                     f"checks fail")
    return "\n".join(lines)


async def _part(results: Results, name: str, work: Awaitable[None]) -> None:
    """Run one part; a failure is recorded so the others still run."""
    try:
        await work
    except (BenchError, ApiError, TransportError, OSError) as exc:
        results.problems.append(f"{name}: {exc.__class__.__name__}: {exc}")


async def _latency_and_memory(cluster: BenchCluster, client: ApiClient, results: Results,
                              args: argparse.Namespace) -> None:
    measure_memory = "memory" in args.parts
    if measure_memory:
        await asyncio.sleep(args.settle)
        results.memory[0] = await asyncio.to_thread(memory.sample, cluster.data_dir)
    if "latency" not in args.parts and not measure_memory:
        return
    sizes = args.replicas if "latency" in args.parts else [max(args.replicas)]
    await latency.prepare_namespace(cluster, client, within=args.timeout)
    for replicas in sizes:
        size = await latency.start_pods(cluster, client, replicas=replicas, within=args.timeout)
        if "latency" in args.parts:
            results.sizes.append(size)
        if measure_memory and replicas == max(sizes):
            await asyncio.sleep(args.settle)
            results.memory[replicas] = await asyncio.to_thread(memory.sample, cluster.data_dir)
        size.cleanup_seconds = await latency.remove_pods(cluster, client, within=args.timeout)


async def _time_to_app(cluster: BenchCluster, client: ApiClient, results: Results,
                       args: argparse.Namespace) -> None:
    results.time_to_app = await time_to_app.measure(cluster, client, within=args.timeout)


async def run(args: argparse.Namespace) -> Results:
    results = Results()
    async with open_cluster(problems=results.problems) as cluster:
        started = time.time()
        try:
            _, lines = await cluster.up()
        except BenchError as exc:
            results.problems.append(f"pinnace up: {exc}")
            return results
        results.first_up = [(line.at - started, line.text) for line in lines if line.text.startswith("✓")]
        config = await asyncio.to_thread(cluster.client_config)
        async with ApiClient(config) as client:
            await _part(results, "latency/memory", _latency_and_memory(cluster, client, results, args))
            if "time-to-app" in args.parts:
                await _part(results, "time-to-app", _time_to_app(cluster, client, results, args))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    head = preamble(args, foreign_ports=shared_bridge_ports())
    results = asyncio.run(run(args))
    print(render(results, preamble=head, cpus=os.cpu_count() or 1), end="", flush=True)
    return 1 if results.problems else 0
