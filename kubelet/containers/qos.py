"""A pod's QoS class and the OOM score adjustment it gives each container, as upstream computes them.

QoS decides who the kernel kills first under memory pressure: Guaranteed pods (every container has
equal cpu and memory requests and limits) last, BestEffort pods (nothing requested) first, Burstable
in between in proportion to how much of the node's memory they asked for.
"""

from __future__ import annotations

import os
from typing import Any

from kubelet.containers.quantity import quantity

GUARANTEED, BURSTABLE, BEST_EFFORT = "Guaranteed", "Burstable", "BestEffort"
QOS_RESOURCES = ("cpu", "memory")
GUARANTEED_OOM_SCORE_ADJ = -997
BEST_EFFORT_OOM_SCORE_ADJ = 1000
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000
NODE_CRITICAL_CLASS = "system-node-critical"


def qos_class(pod: dict[str, Any]) -> str:
    """``status.qosClass`` when the API set it, else computed over containers and init containers."""
    recorded = (pod.get("status") or {}).get("qosClass")
    if recorded:
        return str(recorded)
    return compute_qos(pod)


def compute_qos(pod: dict[str, Any]) -> str:
    spec = pod.get("spec", {})
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        res = container.get("resources") or {}
        for into, amounts in ((requests, res.get("requests") or {}), (limits, res.get("limits") or {})):
            for name in QOS_RESOURCES:
                if name in amounts and quantity(amounts[name]) > 0:
                    into[name] = into.get(name, 0) + quantity(amounts[name])
        found = {n for n in QOS_RESOURCES if quantity((res.get("limits") or {}).get(n, 0)) > 0}
        if found != set(QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return BEST_EFFORT
    if guaranteed and all(limits.get(n) == v for n, v in requests.items()) and len(requests) == len(limits):
        return GUARANTEED
    return BURSTABLE


def node_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _node_critical(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec", {})
    critical = (spec.get("priority") or 0) >= SYSTEM_CRITICAL_PRIORITY
    return critical and spec.get("priorityClassName") == NODE_CRITICAL_CLASS


def oom_score_adj(pod: dict[str, Any], container: dict[str, Any], *, memory_capacity: int | None = None) -> int:
    """Guaranteed -997, BestEffort 1000, Burstable 1000 - 1000*request/capacity kept in [3, 999]."""
    if _node_critical(pod):
        return GUARANTEED_OOM_SCORE_ADJ
    qos = qos_class(pod)
    if qos == GUARANTEED:
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == BEST_EFFORT:
        return BEST_EFFORT_OOM_SCORE_ADJ
    capacity = memory_capacity or node_memory_bytes()
    request = int(quantity(((container.get("resources") or {}).get("requests") or {}).get("memory", 0), ceil=True))
    adjust = 1000 - (1000 * request) // capacity
    if adjust < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if adjust == BEST_EFFORT_OOM_SCORE_ADJ:
        return adjust - 1
    return int(adjust)
