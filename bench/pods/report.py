"""The pod benchmark's printed report: figures next to the issue's targets, then where the time went.

Pure formatting of the measured results, so it is tested with made-up figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.api import render_table, verdict
from bench.pods.cpu import HOST
from bench.pods.latency import SizeResult
from bench.pods.memory import MemorySample
from bench.pods.time_to_app import Phases
from bench.pods.timeline import Summary, durations, step_medians

#: (replicas the target is for, figure, (operator, bound)); per-pod p99 is created → Ready on the watch
LATENCY_TARGETS = ((10, "p99", ("<=", 1.0)), (100, "total", ("<=", 20.0)))
SLO_P99 = 5.0  # Kubernetes' pod startup SLO, for every size
MEMORY_TARGET_MB = 300.0
TIME_TO_APP_TARGET = 5.0


@dataclass
class Results:
    """Everything one run measured; a part that failed or was skipped stays empty."""

    first_up: list[tuple[float, str]] = field(default_factory=list)
    sizes: list[SizeResult] = field(default_factory=list)
    memory: dict[int, MemorySample] = field(default_factory=dict)  # pods running → sample
    time_to_app: Phases | None = None
    problems: list[str] = field(default_factory=list)


def secs(value: float, decimals: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{decimals}f}"


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def _latency_verdicts(size: SizeResult, created_ready: Summary) -> str:
    figures = {"p99": created_ready.p99, "total": size.total}
    met = [f"{name} {op} {bound:g}s: {verdict(figures[name], (op, bound))}"
           for replicas, name, (op, bound) in LATENCY_TARGETS if replicas == size.replicas]
    met.append(f"SLO p99 <= {SLO_P99:g}s: {verdict(created_ready.p99, ('<=', SLO_P99))}")
    return "; ".join(met)


def latency_table(sizes: Sequence[SizeResult]) -> str:
    header = ["replicas", "created→Ready p50", "p99", "apply→Ready p50", "p99", "API p50", "API p99",
              "total s", "clean-up s", "targets"]
    rows = []
    for size in sizes:
        watch = Summary.of(durations(size.pods, start="added", end="ready"))
        from_apply = Summary.of(p.ready - size.apply_started for p in size.pods)
        api = Summary.of(durations(size.pods, start="api_created", end="api_ready"))
        rows.append([str(size.replicas), secs(watch.p50), secs(watch.p99), secs(from_apply.p50), secs(from_apply.p99),
                     secs(api.p50, 0), secs(api.p99, 0), secs(size.total), secs(size.cleanup_seconds, 1),
                     _latency_verdicts(size, watch)])
    return render_table(header, rows)


def steps_table(sizes: Sequence[SizeResult]) -> str:
    header = ["step (seconds, per pod)", *(f"{s.replicas}: p50 / max" for s in sizes)]
    per_size = [step_medians(s.pods, applied_at=s.apply_started) for s in sizes]
    rows = []
    for index, (label, _) in enumerate(per_size[0] if per_size else []):
        rows.append([label, *(f"{secs(steps[index][1].p50)} / {secs(steps[index][1].max)}" for steps in per_size)])
    rows.append(["kubectl apply returned after", *(secs(s.apply_returned - s.apply_started) for s in sizes)])
    return render_table(header, rows)


def cpu_table(sizes: Sequence[SizeResult], *, cpus: int) -> str:
    """CPU seconds per process while each size started, against what the host had in that time."""
    names = sorted({n for s in sizes for n in s.cpu if n != HOST}, key=lambda n: -max(s.cpu.get(n, 0.0) for s in sizes))
    header = ["CPU seconds, apply → last Ready", *(str(s.replicas) for s in sizes)]
    rows = [[name, *(secs(s.cpu.get(name, math.nan), 1) for s in sizes)] for name in names]
    ours = [sum(v for n, v in s.cpu.items() if n != HOST) for s in sizes]
    rows.append(["all cluster processes and pods", *(secs(v, 1) for v in ours)])
    rows.append(["other work on the host", *(secs(max(0.0, s.cpu.get(HOST, math.nan) - v), 1)
                                             for s, v in zip(sizes, ours, strict=True))])
    rows.append([f"available ({cpus} CPUs x wall seconds)", *(secs(cpus * s.total, 1) for s in sizes)])
    return render_table(header, rows)


def memory_table(memory: dict[int, MemorySample]) -> str:
    counts = sorted(memory)
    names = sorted({name for sample in memory.values() for name in sample.by_name})
    header = ["process (PSS MB / RSS MB)", *(f"{n} pods" for n in counts)]
    rows = []
    for name in names:
        cells = []
        for n in counts:
            procs, usage = memory[n].by_name.get(name, (0, None))
            cells.append("-" if usage is None else f"{mb(usage.pss_kb)} / {mb(usage.rss_kb)}"
                         + (f" ({procs} procs)" if procs > 1 else ""))
        rows.append([name, *cells])
    rows.append(["cluster total (all but pod processes)",
                 *(f"{mb(memory[n].cluster.pss_kb)} / {mb(memory[n].cluster.rss_kb)}" for n in counts)])
    rows.append(["cluster private (USS)", *(mb(memory[n].cluster.private_kb) for n in counts)])
    rows.append([f"target PSS <= {MEMORY_TARGET_MB:g} MB",
                 *(verdict(memory[n].cluster.pss_kb / 1024, ("<=", MEMORY_TARGET_MB)) for n in counts)])
    return render_table(header, rows)


def time_to_app_table(phases: Phases) -> str:
    """One timeline: ``up``'s lines, the daemons' log marks and what the benchmark saw, by time."""
    ready = sorted(phases.pods_ready.values())
    events = [*((at, text) for at, text in phases.up_lines),
              *((at, f"  log: {what}") for what, at in phases.log_marks),
              (phases.node_ready, "node Ready (new kubelet's first Lease renewal, Ready=True)"),
              (ready[0] if ready else math.nan, "first demo pod said Ready (new containers)"),
              (ready[-1] if len(ready) >= 3 else math.nan, "all demo pods said Ready"),
              (phases.up_exited, "pinnace up exited")]
    events.sort(key=lambda e: (math.isnan(e[0]), e[0]))
    rows = [[text, secs(at)] for at, text in events]
    rows += [["all 3 demo pods answer HTTP on their IPs  ← time-to-app", secs(phases.app)],
             [f"target <= {TIME_TO_APP_TARGET:g}s", verdict(phases.app, ("<=", TIME_TO_APP_TARGET))]]
    return render_table(["pinnace up on a used data dir: phase", "s from start"], rows)


def render(results: Results, *, preamble: str, cpus: int = 1) -> str:
    out = [preamble, ""]
    if results.first_up:
        out += [render_table(["pinnace up from nothing (new data dir)", "s (step)"],
                             [[text, secs(at)] for at, text in results.first_up]), ""]
    if results.sizes:
        out += ["Pod start latency (kubectl apply of a Deployment, image present, readiness probe every 1s)",
                latency_table(results.sizes), "", steps_table(results.sizes), "",
                cpu_table(results.sizes, cpus=cpus), "",
                "created→Ready and apply→Ready are client-clock watch times (sub-second); API = creationTimestamp "
                "→ Ready lastTransitionTime (1 s resolution); total = apply started → last pod Ready.", ""]
    if results.memory:
        out += ["Memory of all cluster processes (smaps_rollup)", memory_table(results.memory), ""]
    if results.time_to_app is not None:
        out += [time_to_app_table(results.time_to_app), ""]
    out += [f"problem: {p}" for p in results.problems]
    return "\n".join(out).rstrip() + "\n"
