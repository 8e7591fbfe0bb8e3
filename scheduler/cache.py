"""Node state for the scheduler, indexed in numpy arrays so a decision is vector maths, not a loop.

Each node owns a slot (row) in the arrays: allocatable and requested cpu/memory/pods, whether it is
cordoned or tainted. Slots of deleted nodes are reused. Pods are counted against the node they are
bound to, whether the binding has been observed from the API server or only *assumed* by this
scheduler: assuming a pod the moment it is chosen is what lets the next decision, made before the
binding round-trip ends, see the capacity it took. An assumed pod is confirmed when the informer
shows it bound, or forgotten if the binding fails. Pods may name a node not (yet) known; they are
kept aside and counted as soon as the node appears.

``memo`` holds per-node answers plugins derive from node objects alone (e.g. which nodes match a
selector); any node change empties it, so the pods of one workload share one computation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scheduler import resources
from scheduler.podinfo import PodInfo

log = logging.getLogger(__name__)

#: taint effects that keep new pods off a node unless tolerated
HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass
class PlacedPod:
    """A pod counted on a node: bound (seen bound by the informer) or assumed (bind in flight)."""

    info: PodInfo
    node: str
    assumed: bool


class NodeCache:
    """Slots of node state plus the pods placed on each node."""

    def __init__(self, *, capacity: int = 64) -> None:
        self.names: list[str | None] = [None] * capacity
        self.nodes: list[Mapping[str, Any] | None] = [None] * capacity
        self.slot: dict[str, int] = {}
        self.valid = np.zeros(capacity, dtype=bool)
        self.allocatable = np.zeros((capacity, len(resources.RESOURCES)))
        self.requested = np.zeros((capacity, len(resources.RESOURCES)))
        #: allocatable - requested, kept up to date so the fit filter does no arithmetic
        self.free = np.zeros((capacity, len(resources.RESOURCES)))
        self.unschedulable = np.zeros(capacity, dtype=bool)
        self.hard_tainted = np.zeros(capacity, dtype=bool)
        self.soft_tainted = np.zeros(capacity, dtype=bool)
        self.memo: dict[Any, Any] = {}
        self.generation = 0
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self.pods: dict[str, PlacedPod] = {}
        self.pods_by_node: dict[str, dict[str, PlacedPod]] = {}
        #: namespace -> keys of its placed pods (pod affinity and spread look one namespace up)
        self.by_namespace: dict[str, set[str]] = {}
        #: keys of placed pods that claim host ports / carry required anti-affinity (rare; scanned)
        self.with_host_ports: set[str] = set()
        self.with_anti_affinity: set[str] = set()
        #: owner uid -> pods of that workload per slot (the workload-spread score)
        self.owner_counts: dict[str, np.ndarray] = {}

    # -- nodes ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.slot)

    @property
    def capacity(self) -> int:
        return len(self.names)

    def node_at(self, slot: int) -> Mapping[str, Any]:
        node = self.nodes[slot]
        if node is None:
            raise KeyError(f"slot {slot} holds no node")
        return node

    def valid_slots(self) -> np.ndarray:
        return np.flatnonzero(self.valid)

    def iter_nodes(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        for slot in self.slot.values():
            yield slot, self.nodes[slot]  # type: ignore[misc]

    def upsert_node(self, node: Mapping[str, Any]) -> None:
        """Add or refresh a node (labels, taints, allocatable, cordon)."""
        name = (node.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("a node needs metadata.name")
        spec, status = node.get("spec") or {}, node.get("status") or {}
        allocatable = resources.resource_vector(status.get("allocatable") or status.get("capacity"))
        slot = self.slot.get(name)
        if slot is None:
            slot = self._take_slot()
            self.slot[name] = slot
            self.names[slot] = name
            self.requested[slot] = 0
            for placed in self.pods_by_node.get(name, {}).values():
                self._count(placed, slot, +1)
        self.nodes[slot] = node
        self.valid[slot] = True
        self.allocatable[slot] = allocatable
        self.free[slot] = allocatable - self.requested[slot]
        self.unschedulable[slot] = bool(spec.get("unschedulable"))
        effects = {t.get("effect") for t in spec.get("taints") or ()}
        self.hard_tainted[slot] = bool(effects & HARD_EFFECTS)
        self.soft_tainted[slot] = "PreferNoSchedule" in effects
        self._node_changed()

    def remove_node(self, name: str) -> None:
        slot = self.slot.pop(name, None)
        if slot is None:
            return
        for placed in self.pods_by_node.get(name, {}).values():
            self._count(placed, slot, -1)
        self.names[slot] = None
        self.nodes[slot] = None
        self.valid[slot] = False
        self.allocatable[slot] = 0
        self.requested[slot] = 0
        self.free[slot] = 0
        self.unschedulable[slot] = self.hard_tainted[slot] = self.soft_tainted[slot] = False
        self._free.append(slot)
        self._node_changed()

    def remember(self, key: Any, value: Any) -> None:
        """Memoise a node-derived answer until the next node change."""
        if len(self.memo) > 1024:
            self.memo.clear()
        self.memo[key] = value

    def _node_changed(self) -> None:
        self.generation += 1
        self.memo.clear()

    def _take_slot(self) -> int:
        if not self._free:
            self._grow()
        return self._free.pop()

    def _grow(self) -> None:
        old = self.capacity
        new = old * 2
        self.names += [None] * old
        self.nodes += [None] * old
        for attr in ("valid", "allocatable", "requested", "free", "unschedulable", "hard_tainted", "soft_tainted"):
            array = getattr(self, attr)
            grown = np.zeros((new, *array.shape[1:]), dtype=array.dtype)
            grown[:old] = array
            setattr(self, attr, grown)
        for uid, counts in self.owner_counts.items():
            grown = np.zeros(new)
            grown[:old] = counts
            self.owner_counts[uid] = grown
        self._free = list(range(new - 1, old - 1, -1))

    # -- pods -------------------------------------------------------------------------------------

    def assume(self, pod: PodInfo, node: str) -> None:
        """Count a pod on ``node`` before the API server has confirmed the binding."""
        self._place(pod, node, assumed=True)

    def add_bound(self, pod: PodInfo, node: str) -> None:
        """A pod the informer shows bound to ``node`` (confirms an assumption)."""
        placed = self.pods.get(pod.key)
        if placed is not None and placed.node == node:
            placed.assumed = False
            placed.info = pod
            return
        self._place(pod, node, assumed=False)

    def confirm(self, key: str, node: str) -> bool:
        """Mark an assumed pod bound if it was assumed on ``node``; False if it was not."""
        placed = self.pods.get(key)
        if placed is None or placed.node != node:
            return False
        placed.assumed = False
        return True

    def forget(self, key: str) -> None:
        """Drop a pod (deleted, finished, or its binding failed)."""
        placed = self.pods.pop(key, None)
        if placed is None:
            return
        self._unindex(placed.info)
        on_node = self.pods_by_node.get(placed.node, {})
        on_node.pop(key, None)
        if not on_node:
            self.pods_by_node.pop(placed.node, None)
        slot = self.slot.get(placed.node)
        if slot is not None:
            self._count(placed, slot, -1)

    def is_assumed(self, key: str) -> bool:
        placed = self.pods.get(key)
        return placed is not None and placed.assumed

    def pods_on(self, node: str) -> list[PlacedPod]:
        return list(self.pods_by_node.get(node, {}).values())

    def _place(self, pod: PodInfo, node: str, *, assumed: bool) -> None:
        self.forget(pod.key)
        placed = PlacedPod(pod, node, assumed)
        self.pods[pod.key] = placed
        self.pods_by_node.setdefault(node, {})[pod.key] = placed
        self._index(pod)
        slot = self.slot.get(node)
        if slot is not None:
            self._count(placed, slot, +1)

    def _index(self, pod: PodInfo) -> None:
        self.by_namespace.setdefault(pod.namespace, set()).add(pod.key)
        if pod.host_ports:
            self.with_host_ports.add(pod.key)
        if (pod.affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution"):
            self.with_anti_affinity.add(pod.key)

    def _unindex(self, pod: PodInfo) -> None:
        keys = self.by_namespace.get(pod.namespace)
        if keys is not None:
            keys.discard(pod.key)
            if not keys:
                del self.by_namespace[pod.namespace]
        self.with_host_ports.discard(pod.key)
        self.with_anti_affinity.discard(pod.key)

    def placed_in(self, namespaces: frozenset[str] | None) -> Iterator[PlacedPod]:
        """Placed pods in these namespaces (None: all)."""
        if namespaces is None:
            yield from self.pods.values()
            return
        for ns in namespaces:
            for key in self.by_namespace.get(ns, ()):
                yield self.pods[key]

    def _count(self, placed: PlacedPod, slot: int, sign: int) -> None:
        self.requested[slot] += sign * placed.info.requests
        self.free[slot] -= sign * placed.info.requests
        uid = placed.info.owner_uid
        if uid:
            counts = self.owner_counts.get(uid)
            if counts is None:
                counts = self.owner_counts[uid] = np.zeros(self.capacity)
            counts[slot] += sign
            if sign < 0 and not counts.any():
                del self.owner_counts[uid]
