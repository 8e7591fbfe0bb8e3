"""CPU seconds each cluster process spent during a measured span, and the whole host's.

When pods start slower than the target, the first question is who was busy: the kubelet, the
engine, the short-lived programs the engine runs per pod (crun, the CNI plugins, nft: counted in
its reaped children's time), the API server, or something else on the host altogether. Two
snapshots, before and after, answer it; the host's total busy time from /proc/stat shows how much
of the machine other work took meanwhile.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from bench.pods.memory import PROC, cluster_processes

HOST = "whole host (all processes)"


def process_seconds(stat_text: str, *, tick: float) -> tuple[float, float]:
    """(utime + stime, cutime + cstime) of a /proc/<pid>/stat line: its own CPU and its reaped children's."""
    fields = stat_text[stat_text.rindex(")") + 2:].split()  # after "pid (comm) "; utime is field 14
    own, children = [int(v) for v in fields[11:13]], [int(v) for v in fields[13:15]]
    return sum(own) / tick, sum(children) / tick


def host_busy_seconds(stat_text: str, *, tick: float) -> float:
    """CPU time the host spent not idle (user, nice, system, irq, softirq, steal) from /proc/stat."""
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            guest = sum(values[8:10])  # already counted in user/nice
            return (sum(values) - idle - guest) / tick
    raise ValueError("/proc/stat has no cpu line")


def snapshot(data_dir: Path) -> dict[str, float]:
    """Name → CPU seconds so far, summed over the cluster's processes; the short-lived children a
    process ran and reaped (the engine's crun, CNI plugins, nft) under "<name>: children"; plus HOST."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    totals: dict[str, float] = {}
    for pid, name in cluster_processes(data_dir).items():
        with contextlib.suppress(OSError, ValueError):
            own, children = process_seconds((PROC / str(pid) / "stat").read_text(), tick=tick)
            totals[name] = totals.get(name, 0.0) + own
            if children:
                totals[f"{name}: children"] = totals.get(f"{name}: children", 0.0) + children
    totals[HOST] = host_busy_seconds((PROC / "stat").read_text(), tick=tick)
    return totals


def spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Seconds spent between two snapshots per name (a process born meanwhile counts from zero)."""
    return {name: max(0.0, value - before.get(name, 0.0)) for name, value in after.items()}
