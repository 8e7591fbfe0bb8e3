"""LeastAllocated (NodeResourcesFit's default score): prefer nodes with the most cpu and memory left
after placing the pod, equally weighted."""

from __future__ import annotations

import numpy as np

from scheduler import framework, resources
from scheduler.cache import NodeCache
from scheduler.podinfo import PodInfo

SCORED = [resources.CPU, resources.MEMORY]


def fractions_after(pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray:
    """requested/allocatable per scored resource once the pod is placed (0 where nothing allocatable)."""
    allocatable = cache.allocatable[candidates][:, SCORED]
    used = cache.requested[candidates][:, SCORED] + pod.requests[SCORED]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(allocatable > 0, used / allocatable, 1.0)
    return np.clip(frac, 0.0, 1.0)


class LeastAllocated:
    name = "NodeResourcesFit"
    weight = 1

    def score(self, pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray | None:
        free = 1.0 - fractions_after(pod, cache, candidates)
        return free.mean(axis=1) * framework.MAX_SCORE
