"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory use stay even after placing
the pod (score = (1 - standard deviation of the used fractions) * 100)."""

from __future__ import annotations

import numpy as np

from scheduler import framework
from scheduler.cache import NodeCache
from scheduler.plugins.least_allocated import fractions_after
from scheduler.podinfo import PodInfo


class BalancedAllocation:
    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def score(self, pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray | None:
        frac = fractions_after(pod, cache, candidates)
        return (1.0 - frac.std(axis=1)) * framework.MAX_SCORE
