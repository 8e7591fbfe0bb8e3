"""Issue 8's acceptance list: real pods on a real one-node cluster, driven by the real kubectl.

One ``pinnace up`` cluster for the module (``one_node``, e2e/node_cluster.py); each test works in a
namespace of its own (the demo in its ``demo``), waits by polling with deadlines and leaves
clean-up of its namespace to the API (``pinnace down`` removes whatever is left at the end).
Pods use ``pinnace/busybox:1``, which ``pinnace up`` builds into the node's engine, with
imagePullPolicy IfNotPresent.

Order matters in two places. The ConfigMap pod is made by an early test, which also edits the
ConfigMap, and a test near the end waits for the edit to reach the mounted file: the kubelet
re-projects config volumes on its periodic resync (``--sync-frequency``, 60 s: docs/kubelet.md), so
the wait overlaps with the rest of the module instead of adding a minute to it (run alone, that
test edits the ConfigMap itself). The kubelet SIGKILL test comes last, so that a restarted kubelet
(whose new pod workers project the volumes afresh) cannot be what delivered the edit.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from e2e.cluster import REPO, free_port
from e2e.node_cluster import UNSUPPORTED, UNSUPPORTED_REASON, NodeCluster, alive, wait_for

pytestmark = pytest.mark.skipif(UNSUPPORTED, reason=UNSUPPORTED_REASON)

IMAGE = "pinnace/busybox:1"
POD_START = 60.0  # seconds a pod gets to be Running (the image is local)
CONFIG_REFRESH = 75.0  # the kubelet's 60 s resync re-projects config volumes, plus slack


# ------------------------------------------------------------------------------------- helpers


def pod_manifest(name: str, *, namespace: str, script: str, restart_policy: str = "Always",
                 container: dict[str, Any] | None = None, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A one-container busybox pod running ``sh -c script``; ``container``/``spec`` add fields."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"restartPolicy": restart_policy, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sh", "-c", script], **(container or {})}],
                     **(spec or {})}}


def get_pod(node: NodeCluster, namespace: str, name: str) -> dict[str, Any]:
    return node.get("pod", name, "-n", namespace) or {}


def main_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def running_and_ready(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_ready(pod)


def wait_pod(node: NodeCluster, namespace: str, name: str, check: Callable[[dict[str, Any]], Any], *, what: str,
             within: float = POD_START) -> dict[str, Any]:
    """Poll the pod until ``check(pod)`` holds; the pod's status is in the failure message."""
    def probe() -> dict[str, Any] | None:
        pod = get_pod(node, namespace, name)
        return pod if pod and check(pod) else None

    try:
        return wait_for(probe, within=within, what=f"{namespace}/{name}: {what}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {json.dumps(get_pod(node, namespace, name).get('status'))}") from None


def table_rows(text: str) -> list[dict[str, str]]:
    """``kubectl get`` table output as one dict per row, cut at the header's column offsets.

    Cells such as RESTARTS "2 (5s ago)" hold single spaces; columns are three or more apart."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    columns = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    bounds = [start for _, start in columns[1:]] + [None]
    return [{name: line[start:end].strip() for (name, start), end in zip(columns, bounds, strict=True)}
            for line in lines[1:]]


def pod_row(node: NodeCluster, namespace: str, name: str) -> dict[str, str]:
    rows = table_rows(node.kubectl_ok("get", "pod", name, "-n", namespace, "-o", "wide"))
    assert len(rows) == 1, rows
    return rows[0]


def http_get(url: str, *, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        return response.read().decode()


def http_answers(url: str) -> str | None:
    try:
        return http_get(url, timeout=2)
    except (OSError, http.client.HTTPException):
        return None


def container_ids(pod: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {s["name"]: (s.get("containerID", ""), s.get("restartCount", 0))
            for s in (pod.get("status") or {}).get("containerStatuses") or []}


@pytest.fixture
def ns(one_node: NodeCluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    one_node.kubectl_ok("create", "namespace", name)
    yield name
    one_node.kubectl("delete", "namespace", name, "--wait=false")


# ---------------------------------------------------------------------------------------- the image


def test_up_built_the_pods_image_into_the_nodes_engine(one_node: NodeCluster) -> None:
    assert one_node.result is not None and f"✓ image {IMAGE} " in one_node.result.stdout, one_node.result
    images = one_node.pinnace("engine", "images", "--socket", str(one_node.engine_socket), timeout=30)
    assert images.returncode == 0, images.stderr
    rows = [line.split()[:2] for line in images.stdout.splitlines()[1:]]  # REPOSITORY TAG ...
    assert IMAGE.split(":") in rows, images.stdout


# ----------------------------------------------------------------- configMap and secret (part 1)


@dataclass
class ConfigPod:
    """The ConfigMap/Secret pod the two configMap tests share, and when its ConfigMap was edited."""

    namespace: str
    name: str = "consumer"
    updated_at: float | None = None


CONFIG_SCRIPT = "exec sleep 3600"


def _config_objects(namespace: str) -> list[dict[str, Any]]:
    secret = base64.b64encode(b"s3cr3t").decode()
    consumer = pod_manifest("consumer", namespace=namespace, script=CONFIG_SCRIPT, container={
        "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}],
        "envFrom": [{"prefix": "CM_", "configMapRef": {"name": "settings"}}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/config"},
                         {"name": "creds", "mountPath": "/etc/creds", "readOnly": True}]},
        spec={"volumes": [{"name": "config", "configMap": {"name": "settings"}},
                          {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}}]})
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
             "data": {"greeting": "hello-v1", "colour": "blue"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": namespace},
             "type": "Opaque", "data": {"password": secret}},
            consumer]


@pytest.fixture(scope="module")
def config_pod(one_node: NodeCluster) -> Iterator[ConfigPod]:
    namespace = f"p-cfg-{uuid.uuid4().hex[:6]}"
    one_node.kubectl_ok("create", "namespace", namespace)
    one_node.apply(*_config_objects(namespace))
    found = ConfigPod(namespace)
    wait_pod(one_node, namespace, found.name, running_and_ready, what="Running and Ready")
    yield found
    one_node.kubectl("delete", "namespace", namespace, "--wait=false")


def _exec(node: NodeCluster, namespace: str, pod: str, script: str) -> subprocess.CompletedProcess[str]:
    return node.kubectl("exec", "-n", namespace, pod, "--", "sh", "-c", script, timeout=30)


def _update_configmap(node: NodeCluster, config: ConfigPod) -> None:
    node.kubectl_ok("patch", "configmap", "settings", "-n", config.namespace, "-p",
                    json.dumps({"data": {"greeting": "hello-v2"}}))
    config.updated_at = time.monotonic()


def test_configmap_and_secret_appear_as_files_and_env(one_node: NodeCluster, config_pod: ConfigPod) -> None:
    files = _exec(one_node, config_pod.namespace, config_pod.name,
                  "cat /etc/config/greeting; echo; cat /etc/config/colour; echo; cat /etc/creds/password; echo; "
                  "stat -L -c %a /etc/creds/password")
    assert files.returncode == 0, files.stderr
    assert files.stdout.split() == ["hello-v1", "blue", "s3cr3t", "400"]
    env = _exec(one_node, config_pod.namespace, config_pod.name, "env")
    assert env.returncode == 0, env.stderr
    variables = dict(line.split("=", 1) for line in env.stdout.splitlines() if "=" in line)
    assert variables["GREETING"] == "hello-v1" and variables["PASSWORD"] == "s3cr3t"
    assert variables["CM_greeting"] == "hello-v1" and variables["CM_colour"] == "blue"
    _update_configmap(one_node, config_pod)  # a later test waits for this to reach the file


# --------------------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def demo(one_node: NodeCluster) -> Iterator[list[dict[str, Any]]]:
    """``kubectl apply -f manifests/demo/`` and its three pods, once Running and Ready."""
    one_node.kubectl_ok("apply", "-f", str(REPO / "manifests" / "demo"))

    def serving() -> list[dict[str, Any]] | None:
        items = (one_node.get("pods", "-n", "demo") or {}).get("items") or []
        return items if len(items) == 3 and all(running_and_ready(p) for p in items) else None

    try:
        pods = wait_for(serving, within=POD_START, what="3 demo pods Running and Ready")
    except AssertionError as exc:
        shown = one_node.kubectl("get", "pods,events", "-n", "demo", "-o", "wide")
        raise AssertionError(f"{exc}\n{shown.stdout}{shown.stderr}") from None
    yield pods
    one_node.kubectl("delete", "namespace", "demo", "--wait=false")


def test_demo_pods_run_ready_and_answer_http_from_the_host(one_node: NodeCluster,
                                                          demo: list[dict[str, Any]]) -> None:
    from cli.agent_cmds import default_node_name

    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in demo}
    assert len(set(ips.values())) == 3, ips
    for name, ip in ips.items():
        page = http_get(f"http://{ip}:8080/")
        assert name in page, f"{ip} is {name}'s IP but the page is {page!r}; other nodes on this host: " \
                             f"{one_node.neighbours()}"
    rows = {r["NAME"]: r for r in table_rows(one_node.kubectl_ok("get", "pods", "-n", "demo", "-o", "wide"))}
    assert {name: (rows[name]["IP"], rows[name]["NODE"], rows[name]["STATUS"], rows[name]["READY"])
            for name in ips} == {name: (ip, default_node_name(), "Running", "1/1") for name, ip in ips.items()}


# ---------------------------------------------------------------- logs, exec, port-forward


def test_logs_and_logs_follow_of_a_pod_that_prints_three_lines(one_node: NodeCluster, ns: str) -> None:
    script = "echo line 1; sleep 1; echo line 2; sleep 1; echo line 3"
    one_node.apply(pod_manifest("printer", namespace=ns, script=script, restart_policy="Never"))
    wait_pod(one_node, ns, "printer", lambda p: main_status(p).get("state", {}).keys() & {"running", "terminated"},
             what="started")
    follow = one_node.kubectl("logs", "-f", "-n", ns, "printer", timeout=30)  # ends when the container does
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.splitlines() == ["line 1", "line 2", "line 3"]
    wait_pod(one_node, ns, "printer", lambda p: p["status"].get("phase") == "Succeeded", what="Succeeded")
    assert one_node.kubectl_ok("logs", "-n", ns, "printer").splitlines() == ["line 1", "line 2", "line 3"]
    assert one_node.kubectl_ok("logs", "-n", ns, "printer", "--tail=1").splitlines() == ["line 3"]


def test_exec_prints_and_exits_with_the_commands_code(one_node: NodeCluster, ns: str) -> None:
    one_node.apply(pod_manifest("shell", namespace=ns, script="exec sleep 3600"))
    wait_pod(one_node, ns, "shell", running_and_ready, what="Running and Ready")
    done = _exec(one_node, ns, "shell", "echo hi; exit 3")
    assert (done.stdout, done.returncode) == ("hi\n", 3), done.stderr


def _web_pod(name: str, *, namespace: str, page: str) -> dict[str, Any]:
    script = f"mkdir -p /w && echo {page} > /w/index.html && exec httpd -f -p 8080 -h /w"
    return pod_manifest(name, namespace=namespace, script=script, container={
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}})


def test_port_forward_carries_http(one_node: NodeCluster, ns: str) -> None:
    page = f"page-{uuid.uuid4().hex[:6]}"
    one_node.apply(_web_pod("web", namespace=ns, page=page))
    wait_pod(one_node, ns, "web", running_and_ready, what="Running and Ready")
    port = free_port()
    forward = one_node.kubectl_popen("port-forward", "-n", ns, "pod/web", f"{port}:8080", "--address", "127.0.0.1")
    try:
        body = wait_for(lambda: http_answers(f"http://127.0.0.1:{port}/"), within=20,
                        what="HTTP through kubectl port-forward")
        assert body.strip() == page
        assert http_get(f"http://127.0.0.1:{port}/").strip() == page  # a second connection on the same forward
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nkubectl port-forward said: {_stop(forward)}") from None
    finally:
        _stop(forward)


def _stop(process: subprocess.Popen[str]) -> str:
    """Terminate (then kill) a kubectl we started; its stderr."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1]


# ----------------------------------------------------------------------- restarts and probes


def _backoff(seconds: int) -> Callable[[dict[str, Any]], bool]:
    def check(pod: dict[str, Any]) -> bool:
        waiting = main_status(pod).get("state", {}).get("waiting") or {}
        return waiting.get("reason") == "CrashLoopBackOff" and f"back-off {seconds}s " in waiting.get("message", "")

    return check


def test_a_crashing_container_backs_off_longer_each_time(one_node: NodeCluster, ns: str) -> None:
    one_node.apply(pod_manifest("crasher", namespace=ns, script="echo crashing; exit 1"))
    first = main_status(wait_pod(one_node, ns, "crasher", _backoff(10), what="CrashLoopBackOff, back-off 10s",
                                 within=40))
    assert first["lastState"]["terminated"]["exitCode"] == 1 and first["restartCount"] >= 1
    row = pod_row(one_node, ns, "crasher")
    assert row["STATUS"] == "CrashLoopBackOff" and row["READY"] == "0/1", row
    second = main_status(wait_pod(one_node, ns, "crasher", _backoff(20), what="CrashLoopBackOff, back-off 20s",
                                  within=40))
    assert second["restartCount"] > first["restartCount"]
    assert int(pod_row(one_node, ns, "crasher")["RESTARTS"].split()[0]) == second["restartCount"]


def test_a_failing_liveness_probe_restarts_the_container(one_node: NodeCluster, ns: str) -> None:
    one_node.apply(pod_manifest("unhealthy", namespace=ns, script="exec sleep 3600", container={
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "initialDelaySeconds": 1,
                          "periodSeconds": 1, "failureThreshold": 2}}))
    pod = wait_pod(one_node, ns, "unhealthy", lambda p: main_status(p).get("restartCount", 0) >= 1,
                   what="restarted by its liveness probe", within=40)
    assert "terminated" in main_status(pod)["lastState"], main_status(pod)


def test_a_failing_readiness_probe_unreadies_without_a_restart(one_node: NodeCluster, ns: str) -> None:
    one_node.apply(pod_manifest("flaky", namespace=ns, script="touch /tmp/ready; exec sleep 3600", container={
        "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}}))
    before = main_status(wait_pod(one_node, ns, "flaky", running_and_ready, what="Running and Ready"))
    assert pod_row(one_node, ns, "flaky")["READY"] == "1/1"
    removed = _exec(one_node, ns, "flaky", "rm /tmp/ready")
    assert removed.returncode == 0, removed.stderr
    after = wait_pod(one_node, ns, "flaky", lambda p: not is_ready(p) and not main_status(p).get("ready"),
                     what="not Ready", within=30)
    assert pod_row(one_node, ns, "flaky")["READY"] == "0/1"
    status = main_status(after)
    assert (status["containerID"], status["restartCount"]) == (before["containerID"], 0)
    assert "running" in status["state"] and after["status"]["phase"] == "Running"


# (script, restartPolicy, memory limit) → (kubectl STATUS, phase, terminated reason, exit code)
TERMINAL_CASES = {
    "completed": (("exit 0", "Never", None), ("Completed", "Succeeded", "Completed", 0)),
    "error": (("exit 1", "Never", None), ("Error", "Failed", "Error", 1)),
    "oomkilled": (("head -c 100m /dev/zero | tail", "Never", "20Mi"), ("OOMKilled", "Failed", "OOMKilled", 137)),
}


@pytest.mark.parametrize("case", list(TERMINAL_CASES))
def test_a_finished_pod_shows_how_it_ended(one_node: NodeCluster, ns: str, case: str) -> None:
    (script, policy, memory), (column, phase, reason, code) = TERMINAL_CASES[case]
    limits = {"resources": {"limits": {"memory": memory}}} if memory else {}
    one_node.apply(pod_manifest(case, namespace=ns, script=script, restart_policy=policy, container=limits))
    pod = wait_pod(one_node, ns, case, lambda p: p["status"].get("phase") in ("Succeeded", "Failed"),
                   what="finished")
    terminated = main_status(pod)["state"].get("terminated") or {}
    assert (pod["status"]["phase"], terminated.get("reason"), terminated.get("exitCode")) == (phase, reason, code)
    row = pod_row(one_node, ns, case)
    assert (row["STATUS"], row["READY"], row["RESTARTS"]) == (column, "0/1", "0")


# ---------------------------------------------------------------------------------- self-healing


def test_a_container_killed_through_the_engine_is_restarted(one_node: NodeCluster, ns: str) -> None:
    one_node.apply(pod_manifest("victim", namespace=ns, script="exec sleep 3600"))
    before = main_status(wait_pod(one_node, ns, "victim", running_and_ready, what="Running and Ready"))
    container_id = before["containerID"].removeprefix("pinnace://")
    killed = one_node.pinnace("engine", "kill", "--socket", str(one_node.engine_socket), container_id, timeout=30)
    assert killed.returncode == 0, killed.stdout + killed.stderr

    def restarted(pod: dict[str, Any]) -> bool:
        status = main_status(pod)
        return status.get("restartCount") == 1 and "running" in status.get("state", {}) and running_and_ready(pod)

    after = main_status(wait_pod(one_node, ns, "victim", restarted, what="restarted once", within=30))
    assert after["containerID"] != before["containerID"]
    assert after["lastState"]["terminated"]["exitCode"] == 137  # SIGKILL


def test_a_deleted_deployment_pod_is_replaced(one_node: NodeCluster, ns: str) -> None:
    template = pod_manifest("x", namespace=ns, script="exec sleep 3600")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sleepers", "namespace": ns},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "sleepers"}},
                           "template": {"metadata": {"labels": {"app": "sleepers"}}, "spec": template["spec"]}}}
    one_node.apply(deployment)

    def running(exclude: str = "") -> list[dict[str, Any]] | None:
        items = (one_node.get("pods", "-n", ns, "-l", "app=sleepers") or {}).get("items") or []
        names = {p["metadata"]["name"] for p in items}
        ok = len(items) == 2 and exclude not in names and all(running_and_ready(p) for p in items)
        return items if ok else None

    pods = wait_for(running, within=POD_START, what="2 Deployment pods Running and Ready")
    victim = pods[0]["metadata"]["name"]
    one_node.kubectl_ok("delete", "pod", victim, "-n", ns, "--wait=false")
    replaced = wait_for(lambda: running(exclude=victim), within=POD_START,
                        what=f"a replacement for {victim} Running and Ready, {victim} gone")
    assert {p["metadata"]["name"] for p in replaced} & {p["metadata"]["name"] for p in pods} == \
        {pods[1]["metadata"]["name"]}


# ----------------------------------------------------------------- configMap and secret (part 2)


def test_a_configmap_update_reaches_the_mounted_file(one_node: NodeCluster, config_pod: ConfigPod) -> None:
    if config_pod.updated_at is None:  # run alone: edit it now
        _update_configmap(one_node, config_pod)
    assert config_pod.updated_at is not None

    def current() -> str | None:
        done = _exec(one_node, config_pod.namespace, config_pod.name, "cat /etc/config/greeting")
        return done.stdout if done.returncode == 0 and done.stdout == "hello-v2" else None

    looking_since = time.monotonic() - config_pod.updated_at
    remaining = config_pod.updated_at + CONFIG_REFRESH - time.monotonic()
    wait_for(current, within=max(remaining, 1.0), what="hello-v2 in /etc/config/greeting", every=2)
    print(f"configMap update seen in the file {time.monotonic() - config_pod.updated_at:.1f}s after the edit "
          f"(looking since {looking_since:.1f}s)")
    env = _exec(one_node, config_pod.namespace, config_pod.name, "echo $GREETING")
    assert env.stdout.strip() == "hello-v1"  # env is fixed at container start, as upstream


# --------------------------------------------------------------------- the kubelet restarted


def test_a_sigkilled_kubelet_comes_back_and_adopts_running_pods(one_node: NodeCluster, ns: str,
                                                                demo: list[dict[str, Any]]) -> None:
    one_node.apply(_web_pod("steady", namespace=ns, page="steady"))
    wait_pod(one_node, ns, "steady", running_and_ready, what="Running and Ready")
    watched = [(ns, "steady"), *(("demo", p["metadata"]["name"]) for p in demo)]
    before = {key: container_ids(get_pod(one_node, *key)) for key in watched}
    old = one_node.kubelet_pid()
    assert old is not None, "no live kubelet recorded in <agent>/kubelet.pid"
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not alive(old), within=10, what=f"kubelet {old} gone")

    def restarted() -> int | None:
        pid = one_node.kubelet_pid()
        return pid if pid not in (None, old) else None

    new = wait_for(restarted, within=30, what="the agent's supervisor restarted the kubelet")
    # proof the new kubelet works: it runs a pod made after the kill
    one_node.apply(pod_manifest("after", namespace=ns, script="exec sleep 3600"))
    wait_pod(one_node, ns, "after", running_and_ready, what="Running and Ready under the new kubelet")
    assert one_node.kubelet_pid() == new

    def unchanged_and_ready() -> bool:
        pods = {key: get_pod(one_node, *key) for key in watched}
        changed = {key: container_ids(pod) for key, pod in pods.items() if container_ids(pod) != before[key]}
        assert not changed, f"containers restarted or replaced: before {before}, now {changed}"
        return all(running_and_ready(pod) for pod in pods.values())

    wait_for(unchanged_and_ready, within=20, what="adopted pods Ready")
    running = set(one_node.pinnace("engine", "ps", "-q", "--no-trunc", "--socket", str(one_node.engine_socket),
                                   timeout=30).stdout.split())
    adopted = {cid.removeprefix("pinnace://") for ids in before.values() for cid, _ in ids.values()}
    assert adopted <= running, f"not running in the engine any more: {adopted - running}"
