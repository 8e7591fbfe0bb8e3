"""The plugin interface and the one place that runs plugins to pick a node for a pod.

A filter plugin answers for every node slot at once: ``filter(pod, cache)`` returns rejections,
each a boolean mask of the slots it rules out, the reason Kubernetes prints for them, and whether
preemption could help (``resolvable``). A score plugin returns 0..100 per candidate slot;
the framework weighs and sums them and picks the best, breaking ties at random so equal nodes share
the load. As upstream, a node's reasons come from the first filter plugin that rejects it, which is
what the FailedScheduling message counts (see ``fit_error``).

Filtering is vectorised over every node, but scoring looks at a sample of the feasible ones in big
clusters, as upstream's percentageOfNodesToScore does (adaptive: 50% minus 1% per 125 nodes, at
least 5% and at least 100 nodes), taken from a window that rotates over the node slots so every
node gets its turn.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from scheduler.cache import NodeCache
from scheduler.fit_error import Diagnosis
from scheduler.podinfo import PodInfo

MAX_SCORE = 100
#: below this many feasible nodes all are scored
MIN_NODES_TO_SCORE = 100
MIN_PERCENT_TO_SCORE = 5


@dataclass(frozen=True)
class Rejection:
    """Slots (``mask`` True) a filter rules out, with the reason reported for them."""

    mask: np.ndarray
    reason: str
    #: could evicting lower-priority pods make these nodes fit (Unschedulable vs ...Unresolvable)
    resolvable: bool = False


class FilterPlugin(Protocol):
    name: str

    def filter(self, pod: PodInfo, cache: NodeCache) -> Sequence[Rejection]: ...


class ScorePlugin(Protocol):
    name: str
    weight: int

    def score(self, pod: PodInfo, cache: NodeCache, candidates: np.ndarray) -> np.ndarray | None:
        """0..MAX_SCORE per slot in ``candidates``; None when the plugin has no opinion on this pod."""
        ...


@dataclass(frozen=True)
class Decision:
    node: str | None
    diagnosis: Diagnosis


def normalize(raw: np.ndarray, *, reverse: bool = False) -> np.ndarray:
    """Scale to 0..MAX_SCORE by the largest value (reverse: the largest scores 0), as upstream does."""
    top = float(raw.max()) if raw.size else 0.0
    if top <= 0:
        return np.full(raw.shape, MAX_SCORE if reverse else 0, dtype=float)
    scaled = raw * (MAX_SCORE / top)
    return MAX_SCORE - scaled if reverse else scaled


def nodes_to_score(feasible: int) -> int:
    """How many feasible nodes to score (upstream's adaptive percentageOfNodesToScore)."""
    if feasible < MIN_NODES_TO_SCORE:
        return feasible
    percent = max(MIN_PERCENT_TO_SCORE, 50 - feasible // 125)
    return max(MIN_NODES_TO_SCORE, feasible * percent // 100)


class Framework:
    """An ordered set of filter plugins and weighted score plugins."""

    def __init__(self, *, filters: Sequence[FilterPlugin], scorers: Sequence[ScorePlugin],
                 rng: random.Random | None = None) -> None:
        self.filters = list(filters)
        self.scorers = list(scorers)
        self._rng = rng or random.Random()
        self._next_start = 0  # slot where the next scoring window begins

    def feasible(self, pod: PodInfo, cache: NodeCache) -> tuple[np.ndarray, Diagnosis]:
        """The slots that pass every filter, and why the others did not."""
        remaining = cache.valid.copy()
        reasons: Counter[str] = Counter()
        unresolvable = np.zeros_like(remaining)
        for plugin in self.filters:
            if not remaining.any():
                break
            rejected_here = np.zeros_like(remaining)
            for rejection in plugin.filter(pod, cache):
                hit = rejection.mask & remaining
                count = int(np.count_nonzero(hit))
                if count:
                    reasons[rejection.reason] += count
                    rejected_here |= hit
                    if not rejection.resolvable:
                        unresolvable |= hit
            remaining &= ~rejected_here
        rejected = cache.valid & ~remaining
        diagnosis = Diagnosis(total=len(cache), reasons=reasons,
                              unresolvable=int(np.count_nonzero(unresolvable)),
                              resolvable=int(np.count_nonzero(rejected & ~unresolvable)))
        return np.flatnonzero(remaining), diagnosis

    def decide(self, pod: PodInfo, cache: NodeCache) -> Decision:
        candidates, diagnosis = self.feasible(pod, cache)
        if candidates.size == 0:
            return Decision(None, diagnosis)
        if candidates.size == 1:
            return Decision(cache.names[int(candidates[0])], diagnosis)
        candidates = self._sample(candidates)
        total = np.zeros(candidates.size)
        for plugin in self.scorers:
            scores = plugin.score(pod, cache, candidates)
            if scores is not None:
                total += plugin.weight * scores
        best = np.flatnonzero(total >= total.max() - 1e-9)
        slot = int(candidates[best[self._rng.randrange(best.size)]])
        return Decision(cache.names[slot], diagnosis)

    def _sample(self, candidates: np.ndarray) -> np.ndarray:
        """A window of ``nodes_to_score`` candidates starting at the rotating start slot."""
        wanted = nodes_to_score(candidates.size)
        if wanted >= candidates.size:
            return candidates
        first = int(np.searchsorted(candidates, self._next_start))
        window = candidates[(first + np.arange(wanted)) % candidates.size]
        self._next_start = int(window[-1]) + 1
        return window
