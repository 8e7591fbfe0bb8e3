"""Topology domains: which value of a topology key (hostname, zone...) each node slot is in, and
how many matching pods each domain holds. Used by inter-pod affinity and topology spread."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from machinery import selectors
from scheduler import matching
from scheduler.cache import NodeCache
from scheduler.podinfo import PodInfo

MISSING = -1


@dataclass(frozen=True)
class Domains:
    """``ids[slot]`` is the slot's domain number under one key, MISSING where the label is absent."""

    ids: np.ndarray
    count: int


def domains(cache: NodeCache, key: str) -> Domains:
    memo_key = ("domains", key)
    hit = cache.memo.get(memo_key)
    if hit is not None:
        return hit
    ids = np.full(cache.capacity, MISSING, dtype=np.int64)
    numbers: dict[str, int] = {}
    for slot, node in cache.iter_nodes():
        value = matching.node_label(node, key)
        if value is not None:
            ids[slot] = numbers.setdefault(value, len(numbers))
    result = Domains(ids, len(numbers))
    cache.remember(memo_key, result)
    return result


@dataclass(frozen=True)
class PodTerm:
    """Pods selected by a label selector within some namespaces (None: all namespaces)."""

    selector: selectors.LabelSelector
    namespaces: frozenset[str] | None

    @classmethod
    def from_affinity(cls, term: Mapping[str, Any], *, namespace: str) -> PodTerm:
        return cls(matching.label_selector(term.get("labelSelector")), matching.term_namespaces(term, namespace))

    def matches(self, pod: PodInfo) -> bool:
        return (self.namespaces is None or pod.namespace in self.namespaces) and self.selector.matches(pod.labels)


def matching_per_domain(cache: NodeCache, term: PodTerm, doms: Domains, *,
                        counted: np.ndarray | None = None) -> np.ndarray:
    """Pods matching ``term`` per domain, counting only pods on slots where ``counted`` is True."""
    per_domain = np.zeros(doms.count, dtype=np.int64)
    for placed in cache.placed_in(term.namespaces):
        slot = cache.slot.get(placed.node)
        if slot is None or doms.ids[slot] == MISSING or (counted is not None and not counted[slot]):
            continue
        if term.selector.matches(placed.info.labels):
            per_domain[doms.ids[slot]] += 1
    return per_domain
