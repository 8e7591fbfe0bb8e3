"""Each pod's start, step by step, as seen on a watch with the client's clock, and their statistics.

The API's timestamps (creationTimestamp, a condition's lastTransitionTime) have one-second
resolution, too coarse for a target of one second; so every pod's milestones are also recorded
when a watch event first shows them, on the client's wall clock (the same host clock the API server
stamps with). Both are kept: the API's figures are what ``kubectl`` users would compute, the watch's
are the precise ones. The tracker is a pure function of events and times, so it is tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.loadgen import percentile

#: the milestones a watch shows, in order
MILESTONES = ("added", "scheduled", "running", "ready")
#: the steps reported: (from, to, what the step covers); from None is the apply; indented rows split
#: the kubelet's step by the engine's log (``bench.pods.logs``)
STEPS = (
    (None, "added", "apply → pod created (kubectl, Deployment and ReplicaSet controllers)"),
    ("added", "scheduled", "created → bound to the node (scheduler)"),
    ("scheduled", "running", "bound → Running with an IP (kubelet and engine)"),
    ("scheduled", "sandbox_ready", "  bound → sandbox ready (kubelet pick-up, volumes, RunPodSandbox, CNI ADD)"),
    ("sandbox_ready", "container_created", "  sandbox ready → container created (image check, CreateContainer)"),
    ("container_created", "running", "  created → Running seen (StartContainer, probe, status write)"),
    ("running", "ready", "Running → Ready (readiness probe, status write)"),
)


def parse_time(text: str | None) -> float:
    """An RFC 3339 timestamp of the API as POSIX seconds; NaN when absent."""
    if not text:
        return math.nan
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_running(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool(status.get("podIP"))


@dataclass
class PodTimeline:
    """When (POSIX seconds, client clock) each milestone of one pod was first seen; NaN: not yet."""

    name: str
    added: float = math.nan
    scheduled: float = math.nan
    running: float = math.nan
    ready: float = math.nan
    api_created: float = math.nan   # creationTimestamp (1 s resolution)
    api_ready: float = math.nan     # Ready condition's lastTransitionTime (1 s resolution)
    sandbox_ready: float = math.nan        # from the engine's log
    container_created: float = math.nan    # from the engine's log

    def record_api(self, pod: Mapping[str, Any]) -> None:
        self.api_created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
        cond = condition(pod, "Ready")
        if cond is not None and cond.get("status") == "True":
            self.api_ready = parse_time(cond.get("lastTransitionTime"))


@dataclass
class PodTracker:
    """Folds watch events into one PodTimeline per pod name."""

    pods: dict[str, PodTimeline] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def observe(self, event: Mapping[str, Any], now: float) -> None:
        if event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
            return  # BOOKMARK and the like carry no pod
        pod = event.get("object") or {}
        name = (pod.get("metadata") or {}).get("name")
        if not name:
            return
        if event["type"] == "DELETED":
            self.deleted.add(name)
            return
        line = self.pods.setdefault(name, PodTimeline(name))
        # a later milestone implies the earlier ones (one event may carry several at once)
        reached = [True, bool((pod.get("spec") or {}).get("nodeName")), is_running(pod), is_ready(pod)]
        for attr, hit in zip(MILESTONES, reached, strict=True):
            if hit and math.isnan(getattr(line, attr)):
                setattr(line, attr, now)
        line.record_api(pod)

    @property
    def ready_count(self) -> int:
        return sum(1 for p in self.pods.values() if not math.isnan(p.ready) and p.name not in self.deleted)

    def pending(self) -> list[str]:
        """Names of pods seen but not yet Ready (for a timeout's message)."""
        return sorted(p.name for p in self.pods.values() if math.isnan(p.ready))


@dataclass(frozen=True)
class Summary:
    """p50/p99/max of a set of durations in seconds."""

    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        kept = [v for v in values if not math.isnan(v)]
        return cls(len(kept), percentile(kept, 50), percentile(kept, 99), max(kept, default=math.nan))


def durations(pods: Sequence[PodTimeline], *, start: str, end: str) -> list[float]:
    """``end - start`` per pod for two PodTimeline attributes (NaN where either is missing)."""
    return [getattr(p, end) - getattr(p, start) for p in pods]


def step_medians(pods: Sequence[PodTimeline], *, applied_at: float) -> list[tuple[str, Summary]]:
    """Per row of STEPS, the spread over pods of the time that step took."""
    out = []
    for start, end, label in STEPS:
        if start is None:
            values = [getattr(p, end) - applied_at for p in pods]
        else:
            values = durations(pods, start=start, end=end)
        out.append((label, Summary.of(values)))
    return out
