"""Host-side counters that ``docker stats`` needs beside a container's cgroup figures.

The docker CLI computes CPU % as (container CPU delta / host CPU delta) x online CPUs, so every
sample carries the host's total CPU time (``/proc/stat``, converted from clock ticks to ns); an
unlimited container's memory limit is shown as the host's memory; network counters come from
``/proc/<pid>/net/dev`` of the container's init, which shows its own network namespace. All
blocking reads of tiny procfs files: call them from a thread.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", None, None, None, None,
              "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(v) for v in fields[:8]) * NS_PER_TICK


def online_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """Interfaces (not ``lo``) and their counters from the text of a ``net/dev`` file."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or name == "lo":
            continue
        values = rest.split()
        out[name] = {key: int(v) for key, v in zip(NET_FIELDS, values, strict=False) if key is not None}
    return out


def net_dev(pid: int) -> dict[str, dict[str, int]]:
    if pid <= 0:
        return {}
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            return parse_net_dev(f.read())
    except OSError:
        return {}


def sample(cgroup_stats: Any) -> dict[str, int]:
    """A flat sample: the cgroup's ``Stats`` fields plus the host's CPU time and online CPUs."""
    out = dataclasses.asdict(cgroup_stats)
    out["system_ns"] = system_cpu_ns()
    out["online_cpus"] = online_cpus()
    return out
