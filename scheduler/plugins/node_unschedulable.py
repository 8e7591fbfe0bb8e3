"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take no new pods unless tolerated."""

from __future__ import annotations

from scheduler import matching
from scheduler.cache import NodeCache
from scheduler.framework import Rejection
from scheduler.podinfo import PodInfo

REASON = "node(s) were unschedulable"
#: the taint a cordon stands for; tolerating it lets a pod onto cordoned nodes
CORDON_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def filter(self, pod: PodInfo, cache: NodeCache) -> list[Rejection]:
        if not cache.unschedulable.any():
            return []
        if matching.tolerates(pod.spec.get("tolerations") or (), CORDON_TAINT):
            return []
        return [Rejection(cache.unschedulable, REASON)]
