"""Why a pod fits no node, worded exactly as kube-scheduler 1.32 words it.

The message is what users read in ``kubectl describe pod`` and what tools grep, so its shape is
upstream's: ``0/N nodes are available: <count> <reason>, ... .`` with the "count reason" strings
sorted as strings, then the preemption part ``preemption: 0/N nodes are available: ...``. Pinnace
does not preempt yet; nodes whose failures preemption could in principle fix are reported as
upstream reports them when it finds no victims.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NO_NODES = "no nodes available to schedule pods"


@dataclass(frozen=True)
class Diagnosis:
    #: nodes the scheduler knows
    total: int
    #: reason -> number of nodes it ruled out
    reasons: Counter[str] = field(default_factory=Counter)
    #: nodes ruled out for reasons preemption cannot change (taints, selectors...)
    unresolvable: int = 0
    #: nodes ruled out only for reasons preemption might change (resources, ports...)
    resolvable: int = 0


def _histogram(counts: dict[str, int]) -> str:
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items() if n))


def fit_error_message(diagnosis: Diagnosis) -> str:
    if diagnosis.total == 0:
        return NO_NODES
    head = f"0/{diagnosis.total} nodes are available"
    message = f"{head}:"
    filtered = _histogram(diagnosis.reasons)
    if filtered:
        message += f" {filtered}."
    preemption = _histogram({NOT_HELPFUL: diagnosis.unresolvable, NO_VICTIMS: diagnosis.resolvable})
    message += f" preemption: {head}:"
    if preemption:
        message += f" {preemption}."
    return message
