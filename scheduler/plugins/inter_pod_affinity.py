"""InterPodAffinity: required pod affinity and anti-affinity, both the incoming pod's and the
anti-affinity of pods already placed (assumed ones included, so replicas scheduled back to back
still keep apart). Preferred terms score.

Each term is turned into a set of topology domains (values of its topologyKey) holding matching
pods; a node is then accepted or refused by a vector lookup of its domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scheduler import framework, topology
from scheduler.cache import NodeCache
from scheduler.framework import Rejection
from scheduler.podinfo import PodInfo, PodSpecError

AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _terms(pod: PodInfo, kind: str, which: str) -> Sequence[Mapping[str, Any]]:
    return (pod.affinity.get(kind) or {}).get(which) or ()


def _key(term: Mapping[str, Any]) -> str:
    key = term.get("topologyKey")
    if not key:
        raise PodSpecError("a pod affinity term needs a topologyKey")
    return key


def _occupied(cache: NodeCache, term: Mapping[str, Any], namespace: str) -> tuple[np.ndarray, int]:
    """Slots sharing a domain with a pod matching ``term``, and how many pods matched."""
    doms = topology.domains(cache, _key(term))
    per_domain = topology.matching_per_domain(cache, topology.PodTerm.from_affinity(term, namespace=namespace),
                                              doms)
    hit = np.flatnonzero(per_domain)
    return np.isin(doms.ids, hit) & (doms.ids != topology.MISSING), int(per_domain.sum())


def _existing_anti_affinity(pod: PodInfo, cache: NodeCache) -> np.ndarray:
    """Slots in a domain of a placed pod whose required anti-affinity selects the incoming pod."""
    blocked = np.zeros(cache.capacity, dtype=bool)
    for key in cache.with_anti_affinity:
        placed = cache.pods[key]
        slot = cache.slot.get(placed.node)
        if slot is None:
            continue
        for term in _terms(placed.info, "podAntiAffinity", REQUIRED):
            if topology.PodTerm.from_affinity(term, namespace=placed.info.namespace).matches(pod):
                doms = topology.domains(cache, _key(term))
                if doms.ids[slot] != topology.MISSING:
                    blocked |= doms.ids == doms.ids[slot]
    return blocked


class InterPodAffinity:
    name = "InterPodAffinity"
    weight = 2

    def filter(self, pod: PodInfo, cache: NodeCache) -> list[Rejection]:
        affinity_terms = _terms(pod, "podAffinity", REQUIRED)
        anti_terms = _terms(pod, "podAntiAffinity", REQUIRED)
        if not affinity_terms and not anti_terms and not cache.with_anti_affinity:
            return []
        refused = np.zeros(cache.capacity, dtype=bool)
        for term in affinity_terms:
            occupied, matched = _occupied(cache, term, pod.namespace)
            own = topology.PodTerm.from_affinity(term, namespace=pod.namespace).matches(pod)
            if matched == 0 and own:
                continue  # the first pod of a group that wants to be together may go anywhere
            refused |= ~occupied
        rejections = [Rejection(cache.valid & refused, AFFINITY_REASON)]
        anti = np.zeros(cache.capacity, dtype=bool)
        for term in anti_terms:
            anti |= _occupied(cache, term, pod.namespace)[0]
        rejections.append(Rejection(anti & ~refused, ANTI_AFFINITY_REASON, resolvable=True))
        if cache.with_anti_affinity:
            existing = _existing_anti_affinity(pod, cache)
            rejections.append(Rejection(existing & ~refused & ~anti, EXISTING_ANTI_AFFINITY_REASON,
                                        resolvable=True))
        return [r for r in rejections if r.mask.any()]

    def score(self, pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray | None:
        weighted = [(+1, t) for t in _terms(pod, "podAffinity", PREFERRED)]
        weighted += [(-1, t) for t in _terms(pod, "podAntiAffinity", PREFERRED)]
        if not weighted:
            return None
        raw = np.zeros(candidates.size)
        for sign, preference in weighted:
            term = preference.get("podAffinityTerm") or {}
            occupied, _ = _occupied(cache, term, pod.namespace)
            raw += sign * int(preference.get("weight") or 0) * occupied[candidates]
        low, high = float(raw.min()), float(raw.max())
        if high == low:
            return np.zeros(candidates.size)
        return (raw - low) * (framework.MAX_SCORE / (high - low))
