"""Resource limits of a container (memory, CPU, pids) and their OCI ``linux.resources`` form.

The OCI document speaks cgroup v1's vocabulary (memory limit + memory+swap, cpu shares, CFS quota
and period, pids limit); crun writes it to v1 controller files on v1 and hybrid hosts and converts
it to v2 files (``memory.max``, ``cpu.weight``, ``cpu.max``, ``pids.max``) on a unified host, so
one form serves both. ``--cpus 1.5`` becomes quota 150000 per 100000 µs period, as in Docker.
Swap is switched off (swap limit = memory limit) unless asked for, so a memory limit is what the
OOM killer enforces. Bad values raise ``SpecError`` (HTTP 400) with Docker's wording where it has one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from engine.runtime.errors import SpecError

MIN_MEMORY = 6 * 1024 * 1024  # Docker's minimum memory limit
CPU_PERIOD = 100_000  # µs, the CFS default
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262_144
MIN_QUOTA, MAX_PERIOD = 1_000, 1_000_000


@dataclass(frozen=True)
class Resources:
    """Limits; None leaves the runtime's default (unlimited)."""

    memory: int | None = None  # bytes
    memory_swap: int | None = None  # bytes of memory+swap; -1 unlimited swap; None = no swap
    cpus: float | None = None  # CPUs' worth of time (quota/period)
    cpu_shares: int | None = None  # relative weight (v1 shares, 1024 = default)
    cpu_quota: int | None = None  # µs per period (exclusive with cpus)
    cpu_period: int | None = None  # µs
    cpuset_cpus: str | None = None  # "0-1", "0,2"
    pids_limit: int | None = None  # max tasks; <= 0 means unlimited

    def validate(self) -> None:
        """Raise ``SpecError`` for values the kernel would refuse or Docker rejects."""
        if self.memory is not None and self.memory < MIN_MEMORY:
            raise SpecError(f"minimum memory limit allowed is 6MB, not {self.memory} bytes")
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory is None:
                raise SpecError("memory swap limit needs a memory limit as well")
            if self.memory_swap < self.memory:
                raise SpecError("minimum memoryswap limit should be larger than memory limit")
        if self.cpus is not None:
            available = os.cpu_count() or 1
            if not 0 < self.cpus <= available:
                raise SpecError(f"range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs")
            if self.cpu_quota is not None or self.cpu_period is not None:
                raise SpecError("cpus and cpu quota/period cannot be set together")
        if self.cpu_shares is not None and not MIN_CPU_SHARES <= self.cpu_shares <= MAX_CPU_SHARES:
            raise SpecError(f"cpu shares must be between {MIN_CPU_SHARES} and {MAX_CPU_SHARES}, not {self.cpu_shares}")
        if self.cpu_quota is not None and self.cpu_quota != -1 and self.cpu_quota < MIN_QUOTA:
            raise SpecError(f"cpu quota must be at least {MIN_QUOTA}µs (or -1), not {self.cpu_quota}")
        if self.cpu_period is not None and not MIN_QUOTA <= self.cpu_period <= MAX_PERIOD:
            raise SpecError(f"cpu period must be between {MIN_QUOTA} and {MAX_PERIOD}µs, not {self.cpu_period}")
        if self.cpuset_cpus is not None and not _valid_cpuset(self.cpuset_cpus):
            raise SpecError(f"invalid cpuset {self.cpuset_cpus!r}")

    def to_oci(self) -> dict[str, Any]:
        """The ``linux.resources`` fields for these limits (devices are added by the spec)."""
        self.validate()
        out: dict[str, Any] = {}
        if self.memory is not None:
            swap = self.memory if self.memory_swap is None else self.memory_swap
            out["memory"] = {"limit": self.memory, "swap": swap}
        cpu: dict[str, Any] = {}
        if self.cpu_shares is not None:
            cpu["shares"] = self.cpu_shares
        if self.cpus is not None:
            cpu["quota"] = max(MIN_QUOTA, round(self.cpus * CPU_PERIOD))
            cpu["period"] = CPU_PERIOD
        if self.cpu_quota is not None:
            cpu["quota"] = self.cpu_quota
        if self.cpu_period is not None:
            cpu["period"] = self.cpu_period
        if self.cpuset_cpus is not None:
            cpu["cpus"] = self.cpuset_cpus
        if cpu:
            out["cpu"] = cpu
        if self.pids_limit is not None:
            out["pids"] = {"limit": self.pids_limit if self.pids_limit > 0 else -1}
        return out


def _valid_cpuset(text: str) -> bool:
    count = os.cpu_count() or 1
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return False
        if int(high or low) < int(low) or int(high or low) >= count:
            return False
    return True
