"""NodePorts (HostPorts): a pod's hostPorts must be free on the node, per protocol and host IP."""

from __future__ import annotations

import numpy as np

from scheduler.cache import NodeCache
from scheduler.framework import Rejection
from scheduler.podinfo import PodInfo

REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(wanted: tuple[str, str, int], used: tuple[str, str, int]) -> bool:
    """Same protocol and port, and the same host IP or either one bound to all addresses."""
    (proto_a, ip_a, port_a), (proto_b, ip_b, port_b) = wanted, used
    return proto_a == proto_b and port_a == port_b and (ip_a == ip_b or ANY_IP in (ip_a, ip_b))


class NodePorts:
    name = "NodePorts"

    def filter(self, pod: PodInfo, cache: NodeCache) -> list[Rejection]:
        if not pod.host_ports:
            return []
        mask = np.zeros(cache.capacity, dtype=bool)
        for key in cache.with_host_ports:
            placed = cache.pods[key]
            slot = cache.slot.get(placed.node)
            if slot is None or mask[slot]:
                continue
            mask[slot] = any(conflicts(w, u) for w in pod.host_ports for u in placed.info.host_ports)
        return [Rejection(mask, REASON, resolvable=True)] if mask.any() else []
