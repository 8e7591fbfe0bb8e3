"""Node and pod dicts for the scheduler tests, and a NodeCache built from them."""

from __future__ import annotations

from typing import Any

from scheduler.cache import NodeCache
from scheduler.podinfo import PodInfo, read_pod


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
         labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    amounts = {"cpu": cpu, "memory": memory, "pods": pods}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"capacity": dict(amounts), "allocatable": dict(amounts)}}


def pod(name: str, *, namespace: str = "default", cpu: str | None = None, memory: str | None = None,
        labels: dict[str, str] | None = None, owner_uid: str | None = None, node_name: str | None = None,
        **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "c", "image": "busybox", "resources": {"requests": requests}}
    if "ports" in spec:
        container["ports"] = spec.pop("ports")
    md: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}, "uid": f"uid-{name}"}
    if owner_uid:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner_uid,
                                  "controller": True}]
    body: dict[str, Any] = {"containers": [container], **spec}
    if node_name:
        body["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": body}


def info(name: str, **kwargs: Any) -> PodInfo:
    return read_pod(pod(name, **kwargs))


def cache_of(*nodes: dict[str, Any], capacity: int = 4) -> NodeCache:
    cache = NodeCache(capacity=capacity)
    for n in nodes:
        cache.upsert_node(n)
    return cache


def names(cache: NodeCache, mask: Any) -> set[str]:
    """Node names where a slot mask is True."""
    return {cache.names[i] for i, v in enumerate(mask) if v and cache.names[i] is not None}
