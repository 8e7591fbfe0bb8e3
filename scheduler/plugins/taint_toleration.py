"""TaintToleration: untolerated NoSchedule/NoExecute taints filter a node out; untolerated
PreferNoSchedule taints lower its score. Only tainted slots are looked at one by one."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from scheduler import framework, matching
from scheduler.cache import HARD_EFFECTS, NodeCache
from scheduler.framework import Rejection
from scheduler.podinfo import PodInfo


def untolerated_reason(taint: dict) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key') or ''}: {taint.get('value') or ''}}}"


class TaintToleration:
    name = "TaintToleration"
    weight = 3

    def filter(self, pod: PodInfo, cache: NodeCache) -> list[Rejection]:
        tainted = np.flatnonzero(cache.hard_tainted)
        if tainted.size == 0:
            return []
        tolerations = pod.spec.get("tolerations") or ()
        by_reason: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(cache.capacity, dtype=bool))
        for slot in tainted:
            taints = (cache.node_at(int(slot)).get("spec") or {}).get("taints") or ()
            for taint in taints:
                if taint.get("effect") in HARD_EFFECTS and not matching.tolerates(tolerations, taint):
                    by_reason[untolerated_reason(taint)][slot] = True  # the first one is reported
                    break
        return [Rejection(mask, reason) for reason, mask in by_reason.items()]

    def score(self, pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray | None:
        soft = cache.soft_tainted[candidates]
        if not soft.any():
            return None
        tolerations = [t for t in pod.spec.get("tolerations") or ()
                       if not t.get("effect") or t.get("effect") == "PreferNoSchedule"]
        raw = np.zeros(candidates.size)
        for i in np.flatnonzero(soft):
            taints = (cache.node_at(int(candidates[i])).get("spec") or {}).get("taints") or ()
            raw[i] = sum(1 for t in taints
                         if t.get("effect") == "PreferNoSchedule" and not matching.tolerates(tolerations, t))
        return framework.normalize(raw, reverse=True)
