"""PodTopologySpread: topologySpreadConstraints. DoNotSchedule constraints filter (the skew of
matching pods between domains may not exceed maxSkew); ScheduleAnyway ones score (fewer matching
pods in the node's domain is better). Only nodes eligible by the pod's node selector/affinity
count towards domains, as upstream's default nodeAffinityPolicy Honor does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler import framework, matching, topology
from scheduler.cache import NodeCache
from scheduler.framework import Rejection
from scheduler.plugins.node_affinity import eligible_mask
from scheduler.podinfo import PodInfo, PodSpecError

REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL_REASON = "node(s) didn't match pod topology spread constraints (missing required label)"


def _constraints(pod: PodInfo, mode: str) -> list[Mapping[str, Any]]:
    out = [c for c in pod.spec.get("topologySpreadConstraints") or () if c.get("whenUnsatisfiable") == mode]
    for c in out:
        if not c.get("topologyKey") or int(c.get("maxSkew") or 0) < 1:
            raise PodSpecError("a topology spread constraint needs a topologyKey and maxSkew >= 1")
    return out


def _counts(pod: PodInfo, cache: NodeCache, constraint: Mapping[str, Any]) -> tuple[topology.Domains, np.ndarray,
                                                                                        np.ndarray, bool]:
    """The key's domains, matching pods per domain, which domains count, and whether the pod matches."""
    doms = topology.domains(cache, constraint["topologyKey"])
    eligible = eligible_mask(pod, cache)
    counted = cache.valid if eligible is None else cache.valid & eligible
    term = topology.PodTerm(matching.label_selector(constraint.get("labelSelector")),
                            frozenset({pod.namespace}))
    per_domain = topology.matching_per_domain(cache, term, doms, counted=counted)
    present = np.zeros(doms.count, dtype=bool)
    ids = doms.ids[counted]
    present[ids[ids != topology.MISSING]] = True
    return doms, per_domain, present, term.selector.matches(pod.labels)


class PodTopologySpread:
    name = "PodTopologySpread"
    weight = 2

    def filter(self, pod: PodInfo, cache: NodeCache) -> list[Rejection]:
        missing = np.zeros(cache.capacity, dtype=bool)
        skewed = np.zeros(cache.capacity, dtype=bool)
        for constraint in _constraints(pod, "DoNotSchedule"):
            doms, per_domain, present, self_match = _counts(pod, cache, constraint)
            has = doms.ids != topology.MISSING
            missing |= cache.valid & ~has
            if not present.any():
                continue
            floor = int(per_domain[present].min())
            if int(present.sum()) < int(constraint.get("minDomains") or 1):
                floor = 0
            after = np.where(has, per_domain[np.where(has, doms.ids, 0)] + int(self_match), 0)
            skewed |= has & (after - floor > int(constraint["maxSkew"]))
        rejections = [Rejection(missing, MISSING_LABEL_REASON), Rejection(skewed & ~missing, REASON, resolvable=True)]
        return [r for r in rejections if r.mask.any()]

    def score(self, pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray | None:
        soft = _constraints(pod, "ScheduleAnyway")
        if not soft:
            return None
        raw = np.zeros(candidates.size)
        for constraint in soft:
            doms, per_domain, _, _ = _counts(pod, cache, constraint)
            ids = doms.ids[candidates]
            raw += np.where(ids != topology.MISSING, per_domain[np.where(ids != topology.MISSING, ids, 0)], 0)
        return framework.normalize(raw, reverse=True)
