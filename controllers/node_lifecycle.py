"""Node lifecycle: notices dead nodes, taints them, and evicts pods that do not tolerate the taints.

Two controllers, as upstream splits them since 1.29:

:class:`NodeLifecycleController` (per Node). A node is heard from when its Lease in
``kube-node-lease`` is renewed or its Ready condition's heartbeat moves. Silence longer than the
``node-monitor-grace-period`` (40 s; a node never heard from gets the 60 s startup grace from its
creation) turns Ready, MemoryPressure, DiskPressure and PIDPressure to ``Unknown`` with reason
NodeStatusUnknown, and marks the node's pods Ready=False. Taints follow the conditions, the same
table for every node: Ready=False -> ``node.kubernetes.io/not-ready``, Ready=Unknown ->
``node.kubernetes.io/unreachable`` (both NoSchedule and NoExecute), pressure conditions and
``spec.unschedulable`` -> their NoSchedule taints. When the kubelet posts Ready=True again the taints
go. Timestamps are compared on the one host clock every component here shares.

:class:`TaintEvictionController` (per Pod). A pod on a node with NoExecute taints it does not
tolerate is deleted at once; if it tolerates them all, at the earliest ``timeAdded +
tolerationSeconds`` of the tolerations used (forever when none has seconds). Before deleting, the pod
gets the DisruptionTarget condition (reason DeletionByTaintManager), as upstream.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from controllers.node_ipam import NODES
from controllers.pod_gc import NODE_NAME_INDEX, node_name_index
from controllers.replicaset import PODS
from machinery import meta
from machinery.client import ApiClient, ApiError, Conflict, NotFound, Resource, TransportError
from machinery.informer import object_key
from machinery.reconcile import LEASES, Reconciler, SharedInformers, is_deleting, uid_of
from scheduler.matching import tolerates

log = logging.getLogger(__name__)

Obj = dict[str, Any]
EVENTS = Resource("", "v1", "events", True)
NODE_LEASE_NAMESPACE = "kube-node-lease"
DEFAULT_GRACE_PERIOD = 40.0  # --node-monitor-grace-period
STARTUP_GRACE_PERIOD = 60.0  # --node-startup-grace-period

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
#: conditions the controller turns Unknown when the kubelet goes silent
MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
#: (condition type, status) -> the NoSchedule taint key it stands for
NO_SCHEDULE_TAINTS: dict[tuple[str, str], str] = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
#: (condition type, status) -> the NoExecute taint key it stands for
NO_EXECUTE_TAINTS: dict[tuple[str, str], str] = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
}
#: every (key, effect) this controller owns on a node
MANAGED_TAINTS = frozenset({(k, "NoSchedule") for k in (*NO_SCHEDULE_TAINTS.values(), UNSCHEDULABLE)}
                           | {(k, "NoExecute") for k in NO_EXECUTE_TAINTS.values()})


# --- pure node logic -------------------------------------------------------------------------------

def _stamp(value: Any) -> float | None:
    try:
        return meta.parse_time(str(value)) if value else None
    except ValueError:
        return None


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def last_heard(node: Mapping[str, Any], lease: Mapping[str, Any] | None) -> float | None:
    """When the kubelet last showed life: its Lease renewal or its Ready heartbeat, the later one."""
    ready = condition(node, "Ready") or {}
    stamps = [_stamp(ready.get("lastHeartbeatTime")), _stamp(((lease or {}).get("spec") or {}).get("renewTime"))]
    known = [s for s in stamps if s is not None]
    return max(known) if known else None


def silent_for(node: Mapping[str, Any], lease: Mapping[str, Any] | None, *, grace: float,
               now: float) -> tuple[bool, float]:
    """(is the node silent past its grace, seconds until it would be)."""
    heard = last_heard(node, lease)
    if heard is None:
        heard = _stamp((node.get("metadata") or {}).get("creationTimestamp")) or now
        grace = max(grace, STARTUP_GRACE_PERIOD)
    left = heard + grace - now
    return left < 0, left


def unknown_conditions(node: Mapping[str, Any], *, now: str) -> list[Obj] | None:
    """The conditions with the monitored ones Unknown; None when they all are already."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or () if isinstance(c, dict)]
    changed = False
    for kind in MONITORED_CONDITIONS:
        cond = next((c for c in conditions if c.get("type") == kind), None)
        if cond is None:
            conditions.append({"type": kind, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.",
                               "lastHeartbeatTime": (node.get("metadata") or {}).get("creationTimestamp"),
                               "lastTransitionTime": now})
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                        lastTransitionTime=now)
            changed = True
    return conditions if changed else None


def wanted_taints(node: Mapping[str, Any], *, now: str) -> list[Obj]:
    """The node's taints with the managed ones recomputed from its conditions and spec."""
    spec = node.get("spec") or {}
    current = [t for t in spec.get("taints") or () if isinstance(t, dict)]
    keep = [t for t in current if (t.get("key"), t.get("effect")) not in MANAGED_TAINTS]
    owned = {(t.get("key"), t.get("effect")): t for t in current if (t.get("key"), t.get("effect")) in MANAGED_TAINTS}
    states = {(c.get("type"), c.get("status")) for c in (node.get("status") or {}).get("conditions") or ()
              if isinstance(c, dict)}
    wanted: list[tuple[str, str]] = [(NO_SCHEDULE_TAINTS[s], "NoSchedule") for s in NO_SCHEDULE_TAINTS if s in states]
    if spec.get("unschedulable"):
        wanted.append((UNSCHEDULABLE, "NoSchedule"))
    wanted += [(NO_EXECUTE_TAINTS[s], "NoExecute") for s in NO_EXECUTE_TAINTS if s in states]
    out = list(keep)
    for key, effect in wanted:
        old = owned.get((key, effect))
        if old is not None:
            out.append(old)
        elif effect == "NoExecute":
            out.append({"key": key, "effect": effect, "timeAdded": now})
        else:
            out.append({"key": key, "effect": effect})
    return out


def _same_taints(a: Iterable[Mapping[str, Any]], b: Iterable[Mapping[str, Any]]) -> bool:
    def norm(ts: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
        return sorted((str(t.get("key")), str(t.get("value") or ""), str(t.get("effect"))) for t in ts)
    return norm(a) == norm(b)


# --- pure eviction logic ---------------------------------------------------------------------------

def eviction_delay(tolerations: Iterable[Mapping[str, Any]], taints: Iterable[Mapping[str, Any]], *,
                   now: float) -> float | None:
    """Seconds until a pod must go for its node's NoExecute taints: 0 now, None never."""
    tolerations = [t for t in tolerations if isinstance(t, dict)]
    due: float | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        used = [t for t in tolerations if tolerates([t], taint)]
        if not used:
            return 0.0
        seconds = [t.get("tolerationSeconds") for t in used]
        if any(s is None for s in seconds):
            continue  # tolerated forever by one of them
        start = _stamp(taint.get("timeAdded")) or now
        at = start + max(0, min(int(s) for s in seconds))  # type: ignore[arg-type]
        due = at if due is None else min(due, at)
    if due is None:
        return None
    return max(0.0, due - now)


# --- the controllers -------------------------------------------------------------------------------

async def record_event(client: ApiClient, obj: Mapping[str, Any], *, reason: str, message: str,
                       component: str, kind: str = "Normal") -> None:
    """One core/v1 Event about ``obj`` (best effort: a lost event must not stop an eviction)."""
    md = obj.get("metadata") or {}
    namespace = md.get("namespace") or "default"
    stamp = meta.now()
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": f"{md.get('name')}.{time.time_ns():x}", "namespace": namespace},
             "involvedObject": {"apiVersion": obj.get("apiVersion") or "v1", "kind": obj.get("kind") or "",
                                "name": md.get("name"), "namespace": md.get("namespace"), "uid": md.get("uid")},
             "reason": reason, "message": message, "type": kind, "source": {"component": component},
             "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
             "reportingComponent": component, "reportingInstance": ""}
    with contextlib.suppress(ApiError, TransportError):
        await client.create(EVENTS, event, namespace=namespace)


def _lease_node(lease: Obj) -> list[str]:
    md = lease.get("metadata") or {}
    return [md["name"]] if md.get("namespace") == NODE_LEASE_NAMESPACE and md.get("name") else []


class NodeLifecycleController(Reconciler):
    name = "nodelifecycle"
    primary_resource = NODES
    workers = 2

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None,
                 grace_period: float = DEFAULT_GRACE_PERIOD, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        if grace_period <= 0:
            raise ValueError(f"node monitor grace period must be positive, not {grace_period}")
        self.grace_period = grace_period
        self.leases = self.watch(LEASES, keys=_lease_node)
        self.shared.informer(PODS, indexers={NODE_NAME_INDEX: node_name_index})
        self.pods = self.watch(PODS, keys=lambda pod: ())

    async def reconcile(self, key: str) -> float | None:
        node = self.primary.get(key)
        if node is None:
            return None
        lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{key}")
        silent, left = silent_for(node, lease, grace=self.grace_period, now=time.time())
        if silent:
            conditions = unknown_conditions(node, now=meta.now())
            if conditions is not None:
                node = await self._write_conditions(node, conditions)
                if node is None:
                    return None
                log.info("nodelifecycle: node %s stopped posting status; conditions Unknown", key)
                await record_event(self.client, {"apiVersion": "v1", "kind": "Node", **node}, reason="NodeNotReady",
                                   message=f"Node {key} status is now: NodeNotReady", component="node-controller")
                self.metrics.inc("pinnace_node_unreachable_total", controller=self.name)
            await self._mark_pods_not_ready(key)
        await self._sync_taints(node)
        return None if silent else left + 0.05

    async def _write_conditions(self, node: Obj, conditions: list[Obj]) -> Obj | None:
        body = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "status": {"conditions": conditions}}
        try:
            return await self.client.patch(NODES, node["metadata"]["name"], body, subresource="status",
                                           patch_type="merge")
        except NotFound:
            return None

    async def _sync_taints(self, node: Obj) -> None:
        taints = wanted_taints(node, now=meta.now())
        if _same_taints(taints, (node.get("spec") or {}).get("taints") or ()):
            return
        body = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"taints": taints or None}}
        try:
            await self.client.patch(NODES, node["metadata"]["name"], body, patch_type="merge")
        except NotFound:
            return
        log.info("nodelifecycle: node %s taints now %s", node["metadata"]["name"],
                 ", ".join(f"{t['key']}:{t['effect']}" for t in taints) or "none")

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for pod in self.pods.by_index(NODE_NAME_INDEX, node_name):
            conditions = [dict(c) for c in (pod.get("status") or {}).get("conditions") or () if isinstance(c, dict)]
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False" or is_deleting(pod):
                continue
            ready.update(status="False", lastTransitionTime=meta.now())
            md = pod["metadata"]
            body = {"metadata": {"resourceVersion": md["resourceVersion"]}, "status": {"conditions": conditions}}
            try:
                await self.client.patch(PODS, md["name"], body, namespace=md["namespace"], subresource="status",
                                        patch_type="merge")
            except (NotFound, Conflict):
                continue  # gone, or changed: the next pass over this node looks again


class TaintEvictionController(Reconciler):
    name = "taint-eviction-controller"
    primary_resource = PODS
    workers = 4

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.shared.informer(PODS, indexers={NODE_NAME_INDEX: node_name_index})
        self.nodes = self.watch(NODES, keys=self._pods_on)

    def _pods_on(self, node: Obj) -> list[str]:
        if not any(t.get("effect") == "NoExecute" for t in (node.get("spec") or {}).get("taints") or ()):
            return []
        name = (node.get("metadata") or {}).get("name", "")
        return [object_key(p) for p in self.primary.by_index(NODE_NAME_INDEX, name)]

    async def reconcile(self, key: str) -> float | None:
        pod = self.primary.get(key)
        if pod is None or is_deleting(pod):
            return None
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if node is None:
            return None
        taints = (node.get("spec") or {}).get("taints") or ()
        delay = eviction_delay((pod.get("spec") or {}).get("tolerations") or (), taints, now=time.time())
        if delay is None:
            return None
        if delay > 0:
            return delay + 0.05
        await self._evict(pod)
        return None

    async def _evict(self, pod: Obj) -> None:
        md = pod["metadata"]
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or ()
                      if isinstance(c, dict) and c.get("type") != "DisruptionTarget"]
        conditions.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                           "message": "Taint manager: deleting due to NoExecute taint",
                           "lastTransitionTime": meta.now()})
        try:
            body = {"metadata": {"resourceVersion": md["resourceVersion"]}, "status": {"conditions": conditions}}
            await self.client.patch(PODS, md["name"], body, namespace=md["namespace"], subresource="status",
                                    patch_type="merge")  # a Conflict retries with the pod as it is now
            await self.client.delete(PODS, md["name"], namespace=md["namespace"], preconditions={"uid": uid_of(pod)})
        except NotFound:
            return
        log.info("taint-eviction-controller: marking for deletion pod %s/%s", md["namespace"], md["name"])
        await record_event(self.client, {"apiVersion": "v1", "kind": "Pod", **pod}, reason="TaintManagerEviction",
                           message=f"Marking for deletion Pod {md['namespace']}/{md['name']}",
                           component="taint-eviction-controller")
        self.metrics.inc("pinnace_taint_evictions_total", controller=self.name)
