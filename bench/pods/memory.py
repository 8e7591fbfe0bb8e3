"""Memory of the whole cluster: every pinnace process of one data dir, by PSS and RSS.

RSS counts a shared page in every process that maps it (the Python interpreter and its libraries
are mapped by each of our daemons), so a sum of RSS overstates the cluster; PSS splits each shared
page between its users and sums to what the cluster really costs. Both are read from
``/proc/<pid>/smaps_rollup``, with the private (unshared) part as well.

The cluster's processes are those whose command line names its data dir (the server, the
controller-manager and scheduler via the admin kubeconfig, the agent, engine and kubelet, every
conmon via its bundle path) plus their descendants. Processes under a conmon are the pods' own
(httpd here): they are reported apart and are not part of the cluster's figure.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
WORKLOAD = "pod processes"
FIELDS = {"Rss": "rss_kb", "Pss": "pss_kb", "Private_Clean": "private_kb", "Private_Dirty": "private_kb"}


@dataclass(frozen=True)
class Usage:
    """Kilobytes of one process (or a sum): resident, proportional, and private to it."""

    rss_kb: int = 0
    pss_kb: int = 0
    private_kb: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.rss_kb + other.rss_kb, self.pss_kb + other.pss_kb, self.private_kb + other.private_kb)


def parse_smaps_rollup(text: str) -> Usage:
    """The Rss/Pss/Private_* lines of ``smaps_rollup``; ValueError when Rss or Pss is missing."""
    found: Counter[str] = Counter()
    seen = set()
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in FIELDS:
            found[FIELDS[key]] += int(rest.split()[0])
            seen.add(key)
    if not {"Rss", "Pss"} <= seen:
        raise ValueError("smaps_rollup has no Rss/Pss lines")
    return Usage(found["rss_kb"], found["pss_kb"], found["private_kb"])


def process_name(argv: list[str]) -> str:
    """``pinnace <sub-command>`` for ours (``python -m cli.main kubelet`` → kubelet), else the binary's name."""
    if "cli.main" in argv:
        rest = argv[argv.index("cli.main") + 1:]
        return rest[0] if rest else "pinnace"
    return Path(argv[0]).name if argv else "?"


def _cmdline(pid: int) -> list[str]:
    raw = (PROC / str(pid) / "cmdline").read_bytes()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cluster_processes(data_dir: Path) -> dict[int, str]:
    """PID → name of every process of the cluster on ``data_dir``, pods' processes named WORKLOAD."""
    marker = str(data_dir)
    roots: dict[int, str] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = _cmdline(int(entry.name))
            if any(marker in arg for arg in argv):
                roots[int(entry.name)] = process_name(argv)
    found = dict(roots)
    pending = [(pid, name == "conmon") for pid, name in roots.items()]
    while pending:
        pid, under_conmon = pending.pop()
        for child in children(pid):
            if child in found and (not under_conmon or found[child] == WORKLOAD):
                continue
            with contextlib.suppress(OSError):
                # under a conmon everything is the pod's, even a process naming the data dir (crun)
                found[child] = WORKLOAD if under_conmon else process_name(_cmdline(child))
                pending.append((child, under_conmon or found[child] == "conmon"))
    return found


@dataclass(frozen=True)
class MemorySample:
    """One reading: usage per process name (with how many processes), the cluster's total apart from pods."""

    by_name: Mapping[str, tuple[int, Usage]]

    @property
    def cluster(self) -> Usage:
        return sum((u for name, (_, u) in self.by_name.items() if name != WORKLOAD), Usage())

    @property
    def workload(self) -> Usage:
        return self.by_name.get(WORKLOAD, (0, Usage()))[1]


def summarise(readings: Iterable[tuple[str, Usage]]) -> MemorySample:
    counts: Counter[str] = Counter()
    totals: dict[str, Usage] = {}
    for name, usage in readings:
        counts[name] += 1
        totals[name] = totals.get(name, Usage()) + usage
    return MemorySample({name: (counts[name], totals[name]) for name in sorted(totals)})


def sample(data_dir: Path) -> MemorySample:
    """Read every cluster process's smaps_rollup now (processes that exit meanwhile are skipped)."""
    readings = []
    for pid, name in cluster_processes(data_dir).items():
        with contextlib.suppress(OSError, ValueError):
            readings.append((name, parse_smaps_rollup((PROC / str(pid) / "smaps_rollup").read_text())))
    return summarise(readings)
