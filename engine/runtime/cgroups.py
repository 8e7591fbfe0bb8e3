"""Reading a container's cgroup: where it lives, its usage figures, its OOM kills, its processes.

The runtime creates the cgroup from the spec's ``cgroupsPath`` (a path relative to each hierarchy's
root); this module finds it again on any layout: pure v1 (one mount per controller, possibly
co-mounted like ``cpu,cpuacct``), hybrid (v1 controllers plus an empty cgroup2 at
``/sys/fs/cgroup/unified``, this host) or pure v2. Mount points come from /proc/self/mountinfo,
so co-mounted and renamed hierarchies need no special cases. Reads are small sysfs files:
blocking but quick. The statistics are raw counters; rates (CPU %) are the caller's deltas.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "devices", "freezer", "hugetlb")


@dataclass(frozen=True)
class Layout:
    """Where each v1 controller is mounted, and the cgroup2 mount (None on pure v1)."""

    v1: dict[str, Path]
    unified: Path | None

    @property
    def pure_v2(self) -> bool:
        return not self.v1 and self.unified is not None


def read_layout(mountinfo: Path = MOUNTINFO) -> Layout:
    v1: dict[str, Path] = {}
    unified: Path | None = None
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        point, fstype, options = Path(fields[4]), fields[sep + 1], fields[sep + 3].split(",")
        if fstype == "cgroup2":
            unified = point
        elif fstype == "cgroup":
            for opt in options:
                if opt in V1_CONTROLLERS or opt.startswith("name="):  # named ones (name=systemd) too
                    v1.setdefault(opt, point)
    return Layout(v1=v1, unified=unified)


@functools.lru_cache(maxsize=1)
def host_layout() -> Layout:
    """This host's layout (read once: mounts do not move under a running engine)."""
    return read_layout()


@dataclass(frozen=True)
class Stats:
    """Raw counters of one container's cgroup at one instant."""

    cpu_usage_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    throttled_periods: int = 0
    memory_usage: int = 0  # bytes, page cache included
    memory_limit: int = 0  # bytes; 0 = unlimited
    memory_cache: int = 0  # inactive file pages, which Docker subtracts for "MEM USAGE"
    memory_max_usage: int = 0
    oom_kills: int = 0
    pids_current: int = 0
    pids_limit: int = 0  # 0 = unlimited

    @property
    def working_set(self) -> int:
        return max(0, self.memory_usage - self.memory_cache)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError, ProcessLookupError, OSError):
        return None


def _int(text: str | None, *, unlimited: int = 0) -> int:
    if text is None or text in ("", "max"):
        return unlimited
    try:
        value = int(text.split()[0])
    except ValueError:
        return unlimited
    return unlimited if value >= 2**62 else value  # v1 reports "unlimited" as a huge number


def _keyed(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


class ContainerCgroup:
    """The cgroup at ``path`` (the spec's ``cgroupsPath``) on ``layout``."""

    def __init__(self, path: str, *, layout: Layout | None = None) -> None:
        self.path = path.strip("/")
        self.layout = layout or host_layout()

    def dir(self, controller: str) -> Path | None:
        """The directory of this cgroup for ``controller`` (v1), or the unified dir on pure v2."""
        if self.layout.pure_v2:
            assert self.layout.unified is not None
            return self.layout.unified / self.path
        mount = self.layout.v1.get(controller)
        return None if mount is None else mount / self.path

    def exists(self) -> bool:
        probe = self.dir("memory") or self.dir("pids")
        return probe is not None and probe.is_dir()

    def pids(self) -> list[int]:
        """Every process in the cgroup (its subgroups included, as a container may nest them)."""
        base = self.dir("pids") or self.dir("memory")
        if base is None or not base.is_dir():
            return []
        found: set[int] = set()
        for dirpath, _, files in os.walk(base):
            if "cgroup.procs" in files:
                found.update(int(p) for p in (_read(Path(dirpath, "cgroup.procs")) or "").split())
        return sorted(found)

    def oom_kills(self) -> int:
        """How many processes the kernel OOM-killed in this cgroup (0 if the cgroup is gone)."""
        if self.layout.pure_v2:
            events = _keyed(_read(self.dir("memory") / "memory.events"))  # type: ignore[operator]
            return events.get("oom_kill", 0)
        base = self.dir("memory")
        if base is None:
            return 0
        return _keyed(_read(base / "memory.oom_control")).get("oom_kill", 0)

    def stats(self) -> Stats:
        return self._stats_v2() if self.layout.pure_v2 else self._stats_v1()

    def _stats_v1(self) -> Stats:
        cpuacct, cpu, mem, pids = (self.dir(c) for c in ("cpuacct", "cpu", "memory", "pids"))
        usage = user = system = throttled = 0
        if cpuacct is not None:
            usage = _int(_read(cpuacct / "cpuacct.usage"))
            user = _int(_read(cpuacct / "cpuacct.usage_user"))
            system = _int(_read(cpuacct / "cpuacct.usage_sys"))
        if cpu is not None:
            throttled = _keyed(_read(cpu / "cpu.stat")).get("nr_throttled", 0)
        memory = limit = cache = peak = ooms = 0
        if mem is not None:
            memory = _int(_read(mem / "memory.usage_in_bytes"))
            limit = _int(_read(mem / "memory.limit_in_bytes"))
            peak = _int(_read(mem / "memory.max_usage_in_bytes"))
            cache = _keyed(_read(mem / "memory.stat")).get("total_inactive_file", 0)
            ooms = self.oom_kills()
        current = maximum = 0
        if pids is not None:
            current = _int(_read(pids / "pids.current"))
            maximum = _int(_read(pids / "pids.max"))
        return Stats(
            cpu_usage_ns=usage, cpu_user_ns=user, cpu_system_ns=system, throttled_periods=throttled,
            memory_usage=memory, memory_limit=limit, memory_cache=cache, memory_max_usage=peak, oom_kills=ooms,
            pids_current=current, pids_limit=maximum,
        )

    def _stats_v2(self) -> Stats:
        base = self.dir("memory")
        assert base is not None
        cpu = _keyed(_read(base / "cpu.stat"))
        memstat = _keyed(_read(base / "memory.stat"))
        return Stats(
            cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            cpu_user_ns=cpu.get("user_usec", 0) * 1000,
            cpu_system_ns=cpu.get("system_usec", 0) * 1000,
            throttled_periods=cpu.get("nr_throttled", 0),
            memory_usage=_int(_read(base / "memory.current")),
            memory_limit=_int(_read(base / "memory.max")),
            memory_cache=memstat.get("inactive_file", 0),
            memory_max_usage=_int(_read(base / "memory.peak")),
            oom_kills=self.oom_kills(),
            pids_current=_int(_read(base / "pids.current")),
            pids_limit=_int(_read(base / "pids.max")),
        )

    def remove(self) -> None:
        """Remove what the runtime left of this cgroup (deepest dirs first); missing dirs are fine."""
        bases = {d for c in (*self.layout.v1, "unified") if (d := self._any_dir(c)) is not None}
        for base in bases:
            if not base.is_dir():
                continue
            for dirpath, _, _ in sorted(os.walk(base), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass

    def _any_dir(self, controller: str) -> Path | None:
        if controller == "unified":
            return None if self.layout.unified is None else self.layout.unified / self.path
        return self.dir(controller)
