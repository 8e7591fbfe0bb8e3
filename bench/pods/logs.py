"""Where the time went, read from the cluster's own logs (millisecond timestamps, the host's clock).

Between "bound to the node" and "Running with an IP" a watch sees nothing; the engine logs when each
pod's sandbox is ready (after CNI ADD) and when each container is created, which splits the
kubelet's step (``pod_marks``). During ``pinnace up`` the daemons log when each process starts and
reaches its milestones (``first_marks`` over the table ``UP_MARKS``). The formats belong to the
engine, kubelet and supervisor, so a line that does not match is skipped and a missing mark prints
as "-".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
SANDBOX = re.compile(STAMP + r" INFO engine\.cri\.runtime_service: pod sandbox \w+ ready for ([^/\s]+)/(\S+) ")
#: containers are named k8s_<container>_<pod>_<namespace>_<uid>_<attempt> (pod names have no "_")
CREATED = re.compile(STAMP + r" INFO engine\.containers\.manager: created container \w+ \(k8s_[^_]+_([^_]+)_([^_]+)_")
#: (log, what the line says, pattern after the timestamp): the milestones of ``pinnace up``, in order
UP_MARKS = (
    ("server", "API server listening", r"apiserver\.server: API server listening"),
    ("server", "scheduler started", r"scheduler\.scheduler: scheduler \S+ started"),
    ("server", "controller-manager leader", r"leader election kube-controller-manager: .* became the leader"),
    ("agent", "engine process started", r"pinnace\.supervisor: started engine"),
    ("agent", "engine serving CRI", r"engine\.cri\.server: CRI serving"),
    ("agent", "kubelet process started", r"pinnace\.supervisor: started kubelet"),
    ("agent", "kubelet HTTPS server listening", r"kubelet\.server\.app: kubelet server listening"),
    ("agent", "kubelet registered/adopted the Node", r"kubelet\.node: (registered|adopted existing) node"),
    ("agent", "kubelet configured the pod network", r"kubelet\.node: node \S+: pod network"),
    ("agent", "first pod sandbox ready", r"engine\.cri\.runtime_service: pod sandbox \w+ ready"),
    ("agent", "first container created", r"engine\.containers\.manager: created container"),
)


@dataclass(frozen=True)
class PodMarks:
    """When (POSIX seconds) the engine logged a pod's sandbox ready and its first container created."""

    sandbox_ready: float = math.nan
    container_created: float = math.nan


def when(stamp: str) -> float:
    """The log's local-time stamp as POSIX seconds (the daemons and the benchmark share the host clock)."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def pod_marks(log_text: str, *, namespace: str, since: float = 0.0) -> dict[str, PodMarks]:
    """Pod name → its first sandbox-ready and container-created marks at or after ``since``."""
    sandbox: dict[str, float] = {}
    created: dict[str, float] = {}
    for line in log_text.splitlines():
        if (found := SANDBOX.search(line)) and found[2] == namespace:
            at = when(found[1])
            if at >= since:
                sandbox.setdefault(found[3], at)
        elif (found := CREATED.search(line)) and found[3] == namespace:
            at = when(found[1])
            if at >= since:
                created.setdefault(found[2], at)
    return {name: PodMarks(sandbox.get(name, math.nan), created.get(name, math.nan))
            for name in sandbox.keys() | created.keys()}


def first_marks(logs: dict[str, str], *, since: float,
                marks: Sequence[tuple[str, str, str]] = UP_MARKS) -> list[tuple[str, float]]:
    """(what, POSIX seconds) of each mark's first line at or after ``since``; NaN where none matched."""
    out = []
    for log, label, pattern in marks:
        regex = re.compile(STAMP + r" \w+ " + pattern)
        found = math.nan
        for line in logs.get(log, "").splitlines():
            if (hit := regex.search(line)) and (at := when(hit[1])) >= since:
                found = at
                break
        out.append((label, found))
    return out
