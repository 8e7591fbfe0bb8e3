"""The pod status the kubelet reports, computed from what the CRI says and what the pod worker knows.

This is a pure function of (pod spec, CRI container statuses, sandbox state, the worker's waiting
reasons and probe results), written to match the upstream kubelet (``convertToAPIContainerStatuses``,
``getPhase``, ``GeneratePodReadyCondition`` ...) so ``kubectl get pods`` shows the same READY,
STATUS and RESTARTS as a real cluster. Keeping it pure makes it testable as a table of cases and
lets the worker skip the API write when nothing changed (``status_changed``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubelet.cri import pb

RUNTIME_NAME = "pinnace"  # containerID scheme: "<runtime>://<id>", as the CRI's Version names it

#: CRI container state -> the API state key it maps to (created counts as waiting to run)
STATE_KEYS: dict[int, str] = {
    pb.CONTAINER_RUNNING: "running",
    pb.CONTAINER_EXITED: "terminated",
    pb.CONTAINER_CREATED: "waiting",
    pb.CONTAINER_UNKNOWN: "waiting",
}

#: condition types the kubelet owns, in the order upstream lists them
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


@dataclass
class PodObservation:
    """Everything the status depends on besides the pod object itself.

    ``containers`` maps a container name to its CRI statuses, newest attempt first (the first is the
    current one, the second the ``lastState``). ``waiting`` holds the worker's reason for a container
    that is not running (ErrImagePull, CrashLoopBackOff, CreateContainerConfigError...).
    ``ready``/``started`` are probe results by container id.
    """

    sandbox_ready: bool = False
    pod_ips: Sequence[str] = ()
    containers: Mapping[str, Sequence[pb.ContainerStatus]] = field(default_factory=dict)
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    ready: Mapping[str, bool] = field(default_factory=dict)
    started: Mapping[str, bool] = field(default_factory=dict)
    host_ip: str = ""
    qos_class: str = ""
    runtime_name: str = RUNTIME_NAME


def rfc3339(ns: int) -> str | None:
    """Nanoseconds since the epoch as metav1.Time (seconds precision), None for 0."""
    if ns <= 0:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _terminated(cs: pb.ContainerStatus, runtime: str) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": cs.exit_code, "reason": cs.reason or ("Completed" if cs.exit_code == 0
                                                                              else "Error"),
                            "startedAt": rfc3339(cs.started_at), "finishedAt": rfc3339(cs.finished_at),
                            "containerID": f"{runtime}://{cs.id}"}
    if cs.message:
        term["message"] = cs.message
    return term


def _state(cs: pb.ContainerStatus, runtime: str) -> dict[str, Any]:
    key = STATE_KEYS.get(cs.state, "waiting")
    if key == "running":
        return {"running": {"startedAt": rfc3339(cs.started_at)}}
    if key == "terminated":
        return {"terminated": _terminated(cs, runtime)}
    return {"waiting": {"reason": "ContainerCreating"}}


def container_status(container: Mapping[str, Any], obs: PodObservation, *,
                     default_reason: str) -> dict[str, Any]:
    """One entry of containerStatuses/initContainerStatuses, as upstream fills it."""
    name = container["name"]
    history = list(obs.containers.get(name, ()))
    out: dict[str, Any] = {"name": name, "image": container.get("image", ""), "imageID": "",
                           "ready": False, "restartCount": 0, "started": False,
                           "state": {"waiting": {"reason": default_reason}}, "lastState": {}}
    if history:
        current = history[0]
        out["state"] = _state(current, obs.runtime_name)
        out["restartCount"] = int(current.annotations.get("io.kubernetes.container.restartCount",
                                                          current.metadata.attempt) or 0)
        out["imageID"] = current.image_ref
        out["containerID"] = f"{obs.runtime_name}://{current.id}"
        running = current.state == pb.CONTAINER_RUNNING
        out["started"] = running and obs.started.get(current.id, True)
        out["ready"] = running and obs.ready.get(current.id, False)
        if len(history) > 1 and history[1].state == pb.CONTAINER_EXITED:
            out["lastState"] = {"terminated": _terminated(history[1], obs.runtime_name)}
    reason = obs.waiting.get(name)
    if reason and "running" not in out["state"]:
        if "terminated" in out["state"]:
            out["lastState"] = {"terminated": out["state"]["terminated"]}
        waiting = {"reason": reason[0]}
        if reason[1]:
            waiting["message"] = reason[1]
        out["state"] = {"waiting": waiting}
    return out


def _init_done(spec_inits: Sequence[Mapping[str, Any]], statuses: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of init containers that have not yet exited 0 (empty: initialized)."""
    by_name = {s["name"]: s for s in statuses}
    pending = []
    for c in spec_inits:
        term = by_name.get(c["name"], {}).get("state", {}).get("terminated")
        if not term or term.get("exitCode") != 0:
            pending.append(c["name"])
    return pending


def pod_phase(spec: Mapping[str, Any], init_statuses: Sequence[Mapping[str, Any]],
              statuses: Sequence[Mapping[str, Any]]) -> str:
    """Upstream ``getPhase`` (without sidecars)."""
    policy = spec.get("restartPolicy", "Always")
    pending_init = failed_init = 0
    for s in init_statuses:
        state, last = s.get("state", {}), s.get("lastState", {})
        if "terminated" in state:
            if state["terminated"].get("exitCode") != 0:
                failed_init += 1
        elif "waiting" in state and last.get("terminated", {}).get("exitCode", 0) != 0:
            failed_init += 1
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = unknown = 0
    for s in statuses:
        state, last = s.get("state", {}), s.get("lastState", {})
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init or failed_init or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if policy == "OnFailure" else "Failed"
    return "Pending"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def pod_conditions(pod: Mapping[str, Any], *, phase: str, sandbox_ready: bool,
                   init_statuses: Sequence[Mapping[str, Any]],
                   statuses: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The kubelet-owned conditions (without lastTransitionTime; ``merge_conditions`` adds it)."""
    spec = pod.get("spec", {})
    pending_init = _init_done(spec.get("initContainers") or (), init_statuses)
    done = phase == "Succeeded"
    if not pending_init:
        initialized = _condition("Initialized", True, "PodCompleted" if done else "")
    else:
        initialized = _condition("Initialized", False, "ContainersNotInitialized",
                                 f"containers with incomplete status: [{' '.join(pending_init)}]")
    unready = [s["name"] for s in statuses if not s.get("ready")]
    if done:
        ready = _condition("ContainersReady", False, "PodCompleted")
    elif phase == "Failed":
        ready = _condition("ContainersReady", False, "PodFailed")
    elif unready:
        ready = _condition("ContainersReady", False, "ContainersNotReady",
                           f"containers with unready status: [{' '.join(unready)}]")
    else:
        ready = _condition("ContainersReady", True)
    pod_ready = {**ready, "type": "Ready"}
    return [_condition("PodReadyToStartContainers", sandbox_ready), initialized, pod_ready, ready]


def merge_conditions(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ours replace the same types; others (PodScheduled, readiness gates) are kept; a condition's
    lastTransitionTime moves only when its status does."""
    previous = {c.get("type"): c for c in old}
    out: list[dict[str, Any]] = []
    for cond in new:
        before = previous.get(cond["type"])
        when = before.get("lastTransitionTime") if before and before.get("status") == cond["status"] else None
        out.append({**cond, "lastTransitionTime": when or _now()})
    ours = {c["type"] for c in new}
    out += [dict(c) for c in old if c.get("type") not in ours]
    return out


def compute_status(pod: Mapping[str, Any], obs: PodObservation) -> dict[str, Any]:
    """The whole ``status`` the kubelet writes for ``pod``."""
    spec = pod.get("spec", {})
    old = pod.get("status") or {}
    inits = spec.get("initContainers") or []
    init_statuses = [container_status(c, obs, default_reason="PodInitializing") for c in inits]
    pending_init = _init_done(inits, init_statuses)
    default = "PodInitializing" if pending_init else "ContainerCreating"
    statuses = [container_status(c, obs, default_reason=default) for c in spec.get("containers") or []]
    phase = old.get("phase")
    if phase not in ("Succeeded", "Failed"):  # terminal phases never change
        phase = pod_phase(spec, init_statuses, statuses)
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": merge_conditions(old.get("conditions") or [],
                                       pod_conditions(pod, phase=phase, sandbox_ready=obs.sandbox_ready,
                                                      init_statuses=init_statuses, statuses=statuses)),
        "containerStatuses": statuses,
        "startTime": old.get("startTime") or _now(),
    }
    if inits:
        status["initContainerStatuses"] = init_statuses
    if obs.host_ip:
        status["hostIP"] = obs.host_ip
        status["hostIPs"] = [{"ip": obs.host_ip}]
    ips = list(obs.pod_ips) if not spec.get("hostNetwork") else [obs.host_ip] if obs.host_ip else []
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    elif old.get("podIP"):
        status["podIP"], status["podIPs"] = old["podIP"], old.get("podIPs") or [{"ip": old["podIP"]}]
    if obs.qos_class or old.get("qosClass"):
        status["qosClass"] = obs.qos_class or old["qosClass"]
    if old.get("nominatedNodeName"):
        status["nominatedNodeName"] = old["nominatedNodeName"]
    return status


def _comparable(status: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                         for c in status.get("conditions") or []]
    return out


def status_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` would tell the API anything (transition times alone do not count)."""
    return _comparable(old) != _comparable(new)
