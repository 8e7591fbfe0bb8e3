"""NodeResourcesFit: a pod's cpu, memory and pod-count requests must fit what a node has left.

One vector comparison per resource over all slots against the cache's free column (allocatable -
requested, assumed pods included).
"""

from __future__ import annotations

from scheduler import resources
from scheduler.cache import NodeCache
from scheduler.framework import Rejection
from scheduler.podinfo import PodInfo

#: column -> upstream's reason for a node short of it
REASONS: dict[int, str] = {resources.CPU: "Insufficient cpu", resources.MEMORY: "Insufficient memory",
                           resources.PODS: "Too many pods"}


class NodeResourcesFit:
    name = "NodeResourcesFit"

    def filter(self, pod: PodInfo, cache: NodeCache) -> list[Rejection]:
        out = []
        for column, reason in REASONS.items():
            wanted = pod.requests[column]
            if wanted > 0:
                short = cache.free[:, column] < wanted
                short &= cache.valid
                if short.any():
                    out.append(Rejection(short, reason, resolvable=True))
        return out
