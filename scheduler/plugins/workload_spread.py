"""WorkloadSpread: prefer nodes holding fewer pods of the same workload (the controlling owner),
so the replicas of a ReplicaSet land on different nodes when they can."""

from __future__ import annotations

import numpy as np

from scheduler import framework
from scheduler.cache import NodeCache
from scheduler.podinfo import PodInfo


class WorkloadSpread:
    name = "WorkloadSpread"
    weight = 2

    def score(self, pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray | None:
        counts = cache.owner_counts.get(pod.owner_uid) if pod.owner_uid else None
        if counts is None:
            return None
        return framework.normalize(counts[candidates], reverse=True)
