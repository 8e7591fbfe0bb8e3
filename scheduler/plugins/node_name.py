"""NodeName: a pod that names its node (spec.nodeName) fits only that node."""

from __future__ import annotations

from scheduler.cache import NodeCache
from scheduler.framework import Rejection
from scheduler.podinfo import PodInfo

REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = "NodeName"

    def filter(self, pod: PodInfo, cache: NodeCache) -> list[Rejection]:
        wanted = pod.spec.get("nodeName")
        if not wanted:
            return []
        mask = cache.valid.copy()
        slot = cache.slot.get(wanted)
        if slot is not None:
            mask[slot] = False
        return [Rejection(mask, REASON)]


