"""NodeAffinity: nodeSelector and required node affinity filter; preferred node affinity scores.

Label matching is per node in Python, so it runs only for pods that carry such rules; the answer
for a given rule set is memoised in the cache until a node changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from scheduler import framework, matching
from scheduler.cache import NodeCache
from scheduler.framework import Rejection
from scheduler.podinfo import PodInfo

REASON = "node(s) didn't match Pod's node affinity/selector"


def eligible_mask(pod: PodInfo, cache: NodeCache) -> np.ndarray | None:
    """Slots whose labels satisfy the pod's nodeSelector and required affinity; None if it has none."""
    rules = matching.NodeEligibility(pod)
    if rules.trivial:
        return None
    required = (pod.affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    key = ("node-eligibility", orjson.dumps([rules.selector, required], option=orjson.OPT_SORT_KEYS))
    mask = cache.memo.get(key)
    if mask is None:
        mask = np.zeros(cache.capacity, dtype=bool)
        for slot, node in cache.iter_nodes():
            mask[slot] = rules.matches(node)
        cache.remember(key, mask)
    return mask


class NodeAffinity:
    name = "NodeAffinity"
    weight = 2

    def filter(self, pod: PodInfo, cache: NodeCache) -> list[Rejection]:
        eligible = eligible_mask(pod, cache)
        return [] if eligible is None else [Rejection(cache.valid & ~eligible, REASON)]

    def score(self, pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray | None:
        preferred: list[Mapping[str, Any]] = ((pod.affinity.get("nodeAffinity") or {})
                                              .get("preferredDuringSchedulingIgnoredDuringExecution") or [])
        if not preferred:
            return None
        terms = [(int(p.get("weight") or 0), matching.NodeSelectorTerm(p.get("preference") or {}))
                 for p in preferred]
        raw = np.zeros(candidates.size)
        for i, slot in enumerate(candidates):
            node = cache.node_at(int(slot))
            raw[i] = sum(weight for weight, term in terms if term.matches(node))
        return framework.normalize(raw)
