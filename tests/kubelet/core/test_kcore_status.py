"""Pod status from CRI states: phase, conditions, container statuses and the kubectl row they make."""

from __future__ import annotations

import time

import pytest

from apiserver.tables import POD
from kubelet.cri import pb
from kubelet.status import PodObservation, compute_status, merge_conditions, pod_phase, status_changed

NS = 1_000_000_000
T0 = 1_764_000_000 * NS


def cs(name: str, state: str, *, attempt: int = 0, exit_code: int = 0, reason: str = "",
       cid: str = "") -> pb.ContainerStatus:
    states = {"running": pb.CONTAINER_RUNNING, "exited": pb.CONTAINER_EXITED, "created": pb.CONTAINER_CREATED}
    exited = state == "exited"
    return pb.ContainerStatus(
        id=cid or f"{name}-{attempt}", metadata=pb.ContainerMetadata(name=name, attempt=attempt),
        state=states[state], started_at=T0 + attempt * 100 * NS,
        finished_at=T0 + (attempt * 100 + 5) * NS if exited else 0, exit_code=exit_code,
        reason=reason or (("Completed" if exit_code == 0 else "Error") if exited else ""),
        image_ref="sha256:abc", annotations={"io.kubernetes.container.restartCount": str(attempt)})


def pod(*, policy: str = "Always", inits: tuple[str, ...] = (), containers: tuple[str, ...] = ("web",),
        status: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"restartPolicy": policy, "nodeName": "n1",
                     "initContainers": [{"name": n, "image": "busybox"} for n in inits],
                     "containers": [{"name": n, "image": "busybox"} for n in containers]},
            "status": status or {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}


def row(p: dict, obs: PodObservation) -> tuple[str, str, str, str]:
    status = compute_status(p, obs)
    cells = POD.cells({**p, "status": status}, time.time())
    return status["phase"], cells[1], cells[2], str(cells[3]).split(" ")[0]


# (case, pod kwargs, containers by name, waiting, ready ids, sandbox ready) -> (phase, READY, STATUS, RESTARTS)
CASES = [
    ("creating", {}, {}, {}, set(), False, ("Pending", "0/1", "ContainerCreating", "0")),
    ("running-ready", {}, {"web": [cs("web", "running")]}, {}, {"web-0"}, True, ("Running", "1/1", "Running", "0")),
    ("running-unready", {}, {"web": [cs("web", "running")]}, {}, set(), True, ("Running", "0/1", "Running", "0")),
    ("crashloop", {}, {"web": [cs("web", "exited", attempt=2, exit_code=1), cs("web", "exited", attempt=1,
                                                                              exit_code=1)]},
     {"web": ("CrashLoopBackOff", "back-off 20s restarting failed container=web pod=p_ns(u1)")}, set(), True,
     ("Running", "0/1", "CrashLoopBackOff", "2")),
    ("completed", {"policy": "Never"}, {"web": [cs("web", "exited")]}, {}, set(), True,
     ("Succeeded", "0/1", "Completed", "0")),
    ("error", {"policy": "Never"}, {"web": [cs("web", "exited", exit_code=1)]}, {}, set(), True,
     ("Failed", "0/1", "Error", "0")),
    ("oom", {"policy": "Never"}, {"web": [cs("web", "exited", exit_code=137, reason="OOMKilled")]}, {}, set(), True,
     ("Failed", "0/1", "OOMKilled", "0")),
    ("onfailure-ok", {"policy": "OnFailure"}, {"web": [cs("web", "exited")]}, {}, set(), True,
     ("Succeeded", "0/1", "Completed", "0")),
    ("onfailure-restarting", {"policy": "OnFailure"}, {"web": [cs("web", "exited", exit_code=2)]},
     {"web": ("CrashLoopBackOff", "back-off 10s")}, set(), True, ("Running", "0/1", "CrashLoopBackOff", "0")),
    ("init-running", {"inits": ("setup",)}, {"setup": [cs("setup", "running")]}, {}, set(), True,
     ("Pending", "0/1", "Init:0/1", "0")),
    ("init-failed-never", {"inits": ("setup",), "policy": "Never"},
     {"setup": [cs("setup", "exited", exit_code=3)]}, {}, set(), True, ("Failed", "0/1", "Init:Error", "0")),
    ("init-done", {"inits": ("setup",)}, {"setup": [cs("setup", "exited")], "web": [cs("web", "running")]}, {},
     {"web-0"}, True, ("Running", "1/1", "Running", "0")),
    ("image-pull", {}, {}, {"web": ("ErrImagePull", 'failed to pull "x"')}, set(), True,
     ("Pending", "0/1", "ErrImagePull", "0")),
    ("config-error", {}, {}, {"web": ("CreateContainerConfigError", 'configmap "c" not found')}, set(), True,
     ("Pending", "0/1", "CreateContainerConfigError", "0")),
    ("two-one-ready", {"containers": ("a", "b")}, {"a": [cs("a", "running")], "b": [cs("b", "running")]}, {},
     {"a-0"}, True, ("Running", "1/2", "Running", "0")),
]


@pytest.mark.parametrize(("case", "kwargs", "containers", "waiting", "ready", "sandbox", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_status_table(case, kwargs, containers, waiting, ready, sandbox, expected) -> None:
    all_ids = {s.id for history in containers.values() for s in history}
    obs = PodObservation(sandbox_ready=sandbox, pod_ips=["10.1.0.5"] if sandbox else [], containers=containers,
                         waiting=waiting, ready={i: i in ready for i in all_ids}, host_ip="192.0.2.1")
    assert row(pod(**kwargs), obs) == expected


def test_container_status_fields() -> None:
    history = [cs("web", "running", attempt=1, cid="c2"), cs("web", "exited", attempt=0, exit_code=1, cid="c1")]
    obs = PodObservation(sandbox_ready=True, pod_ips=["10.1.0.5", "fd00::5"], containers={"web": history},
                         ready={"c2": True}, host_ip="192.0.2.1", qos_class="BestEffort")
    status = compute_status(pod(), obs)
    (web,) = status["containerStatuses"]
    assert web["containerID"] == "pinnace://c2"
    assert web["state"] == {"running": {"startedAt": "2025-11-24T16:01:40Z"}}
    assert web["lastState"]["terminated"]["exitCode"] == 1
    assert web["lastState"]["terminated"]["reason"] == "Error"
    assert web["lastState"]["terminated"]["containerID"] == "pinnace://c1"
    assert (web["restartCount"], web["ready"], web["started"], web["imageID"]) == (1, True, True, "sha256:abc")
    assert status["podIP"] == "10.1.0.5" and status["podIPs"] == [{"ip": "10.1.0.5"}, {"ip": "fd00::5"}]
    assert status["hostIP"] == "192.0.2.1" and status["qosClass"] == "BestEffort"
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                     "ContainersReady": "True", "PodScheduled": "True"}


def test_unready_condition_message() -> None:
    obs = PodObservation(sandbox_ready=True, containers={"web": [cs("web", "running")]}, ready={"web-0": False})
    conds = {c["type"]: c for c in compute_status(pod(), obs)["conditions"]}
    assert conds["Ready"]["reason"] == "ContainersNotReady"
    assert conds["Ready"]["message"] == "containers with unready status: [web]"
    assert conds["ContainersReady"]["message"] == "containers with unready status: [web]"


def test_init_pending_condition_and_pod_initializing() -> None:
    obs = PodObservation(sandbox_ready=True, containers={"setup": [cs("setup", "running")]})
    status = compute_status(pod(inits=("setup",)), obs)
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Initialized"]["message"] == "containers with incomplete status: [setup]"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_terminal_phase_is_kept() -> None:
    done = pod(policy="Never", status={"phase": "Succeeded", "conditions": []})
    obs = PodObservation(sandbox_ready=True, containers={"web": [cs("web", "running")]})
    assert compute_status(done, obs)["phase"] == "Succeeded"


def test_phase_unknown_state_is_pending() -> None:
    assert pod_phase({"restartPolicy": "Always"}, [], [{"name": "a", "state": {}}]) == "Pending"


def test_transition_time_moves_only_on_change() -> None:
    old = [{"type": "Ready", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"},
           {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2019-01-01T00:00:00Z"}]
    same = merge_conditions(old, [{"type": "Ready", "status": "False"}])
    moved = merge_conditions(old, [{"type": "Ready", "status": "True"}])
    assert same[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert moved[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    assert same[1]["type"] == "PodScheduled"


def test_status_changed_ignores_transition_times() -> None:
    obs = PodObservation(sandbox_ready=True, containers={"web": [cs("web", "running")]}, ready={"web-0": True})
    first = compute_status(pod(), obs)
    again = {**first, "conditions": [{**c, "lastTransitionTime": "1999-01-01T00:00:00Z"}
                                     for c in first["conditions"]]}
    assert not status_changed(first, again)
    obs2 = PodObservation(sandbox_ready=True, containers={"web": [cs("web", "running")]}, ready={"web-0": False})
    assert status_changed(first, compute_status(pod(), obs2))


def test_host_network_pod_uses_the_host_ip() -> None:
    p = pod()
    p["spec"]["hostNetwork"] = True
    obs = PodObservation(sandbox_ready=True, containers={"web": [cs("web", "running")]}, host_ip="192.0.2.7")
    status = compute_status(p, obs)
    assert status["podIP"] == "192.0.2.7" and status["podIPs"] == [{"ip": "192.0.2.7"}]


def test_pod_ip_kept_after_sandbox_stops() -> None:
    p = pod(policy="Never", status={"phase": "Succeeded", "podIP": "10.1.0.9", "conditions": []})
    status = compute_status(p, PodObservation(containers={"web": [cs("web", "exited")]}))
    assert status["podIP"] == "10.1.0.9" and status["podIPs"] == [{"ip": "10.1.0.9"}]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["reason"] == "PodCompleted" and conds["PodReadyToStartContainers"]["status"] == "False"
