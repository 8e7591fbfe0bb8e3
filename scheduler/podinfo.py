"""A pending pod read once into what the plugins ask of it.

Plugins run for every scheduling attempt, so the fields they need (requests as a vector, host
ports, tolerations, the owning workload) are pulled out of the pod dict here, once, and checked:
a malformed pod raises ``PodSpecError`` instead of failing inside a plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from machinery import meta
from scheduler import resources

DEFAULT_SCHEDULER = "default-scheduler"


class PodSpecError(ValueError):
    """The pod cannot be scheduled as written (bad quantity, malformed affinity...)."""


@dataclass(frozen=True)
class PodInfo:
    key: str
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]
    requests: np.ndarray
    priority: int
    #: (protocol, hostIP, hostPort) triples the pod claims on its node
    host_ports: frozenset[tuple[str, str, int]] = field(default_factory=frozenset)
    #: uid of the controlling owner (ReplicaSet, StatefulSet...), for spreading a workload
    owner_uid: str | None = None

    @property
    def affinity(self) -> Mapping[str, Any]:
        return self.spec.get("affinity") or {}


def host_ports(spec: Mapping[str, Any]) -> frozenset[tuple[str, str, int]]:
    out = set()
    for container in spec.get("containers") or ():
        for port in container.get("ports") or ():
            host_port = port.get("hostPort")
            if host_port:
                out.add((port.get("protocol") or "TCP", port.get("hostIP") or "0.0.0.0", int(host_port)))
    return frozenset(out)


def read_pod(pod: Mapping[str, Any]) -> PodInfo:
    """The PodInfo of a pod object; PodSpecError if the scheduler cannot make sense of it."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if not isinstance(spec, Mapping) or not isinstance(md, Mapping):
        raise PodSpecError("pod metadata and spec must be objects")
    try:
        requests = resources.pod_requests(spec)
        ports = host_ports(spec)
        priority = int(spec.get("priority") or 0)
    except (resources.QuantityError, TypeError, ValueError, AttributeError) as e:
        raise PodSpecError(f"pod {md.get('namespace')}/{md.get('name')}: {e}") from e
    owner = meta.controller_of(dict(pod))
    return PodInfo(key=meta.key_of(dict(pod)), namespace=md.get("namespace") or "", name=md.get("name") or "",
                   uid=md.get("uid") or "", labels=md.get("labels") or {}, spec=spec, requests=requests,
                   priority=priority, host_ports=ports, owner_uid=owner.get("uid") if owner else None)


def wants_scheduling(pod: Mapping[str, Any], *, scheduler_name: str = DEFAULT_SCHEDULER) -> bool:
    """A pod this scheduler must place: unbound, not terminating or finished, and addressed to it."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName") or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return (spec.get("schedulerName") or DEFAULT_SCHEDULER) == scheduler_name
