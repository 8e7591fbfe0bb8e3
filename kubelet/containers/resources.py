"""A container's requests and limits as CRI Linux resources (cgroup cpu shares/quota, memory limit).

The numbers follow the upstream kubelet: shares = request millicores * 1024 / 1000 (at least 2; the
limit stands in for a missing request), quota = limit millicores * period / 1000 (at least 1000 µs,
0 = unlimited) over a 100 ms period, memory limit in bytes (0 = unlimited), OOM score by QoS class.
Swap is not given to pods (upstream's NoSwap default): memory+swap is capped at the memory limit, so a
container over its limit is OOM-killed rather than swapped out.
"""

from __future__ import annotations

from typing import Any

from kubelet.containers.qos import oom_score_adj
from kubelet.containers.quantity import milli_value, value
from kubelet.cri import pb

MIN_SHARES = 2
MAX_SHARES = 262144
SHARES_PER_CPU = 1024
QUOTA_PERIOD = 100_000  # µs, the CFS default the kubelet uses
MIN_QUOTA = 1000  # µs


def milli_cpu_to_shares(milli_cpu: int) -> int:
    if milli_cpu == 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli_cpu * SHARES_PER_CPU // 1000))


def milli_cpu_to_quota(milli_cpu: int, period: int = QUOTA_PERIOD) -> int:
    if milli_cpu == 0:
        return 0
    return max(MIN_QUOTA, milli_cpu * period // 1000)


def linux_resources(pod: dict[str, Any], container: dict[str, Any], *,
                    memory_capacity: int | None = None) -> pb.LinuxContainerResources:
    res = container.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    cpu_limit = milli_value(limits.get("cpu", 0))
    if "cpu" not in requests and "cpu" in limits:
        shares = milli_cpu_to_shares(cpu_limit)
    else:
        shares = milli_cpu_to_shares(milli_value(requests.get("cpu", 0)))
    memory = value(limits.get("memory", 0))
    return pb.LinuxContainerResources(
        cpu_shares=shares,
        cpu_period=QUOTA_PERIOD,
        cpu_quota=milli_cpu_to_quota(cpu_limit),
        memory_limit_in_bytes=memory,
        memory_swap_limit_in_bytes=memory,
        oom_score_adj=oom_score_adj(pod, container, memory_capacity=memory_capacity),
    )
