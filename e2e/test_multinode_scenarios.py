"""Scenarios on a real 3-node ``pinnace cluster``: the acceptance of issue 10 run end to end.

One cluster ``sc`` for the module, made with ``--node-monitor-grace-period 10s
--default-unreachable-toleration-seconds 10`` so node failure plays out in ~20 s instead of ~6 min,
and driven only by the real kubectl. Tests run in file order and build on each other, as a user's
session would: a DaemonSet; a spread Deployment ``web`` (busybox httpd answering with its node, pod
and VERSION) behind a Service, reached by name from a client pod on node 1; a rolling update under a
request loop with no failed request, ``rollout undo`` and ``scale``; node 2 stopped (pods moved, the
Service never without a ready endpoint) and started again (it rejoins, its stale pods go); a drain
that a PodDisruptionBudget paces; uncordon. The module's finalizer deletes the cluster and kills any
recorded process, whatever failed.

Requests are made with busybox ``wget`` bounded by ``timeout`` (``wget -T`` segfaults: see
e2e/multinode_kit.py) or ``nc``.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from e2e.multinode_kit import IMAGE, SKIP, SLEEP, Host, apply, fetch_from, force_delete, is_ready, make_host, pod, wait

pytestmark = SKIP

NAME = "sc"
CONTEXT = f"pinnace-{NAME}"
NODES = [f"{NAME}-worker", f"{NAME}-worker2", f"{NAME}-worker3"]
GRACE = 10  # --node-monitor-grace-period, seconds
TOLERATION = 10  # --default-unreachable-toleration-seconds
FAILOVER_MARGIN = 15  # seconds on top of grace + toleration for eviction, scheduling and start-up
REPLICAS = 6  # after test_scale_spreads_pods
UNREACHABLE = "node.kubernetes.io/unreachable"

# The answer names the node, the pod and the template's VERSION, so a test sees who answered.
WEB_COMMAND = ('mkdir -p /www && echo "node=$NODE pod=$(hostname) v=$VERSION" > /www/index.html'
               ' && exec httpd -f -p 8080 -h /www')
ANSWER = re.compile(r"node=(\S+) pod=(\S+) v=(\S+)")


def web_deployment() -> dict:
    """3 replicas spread over nodes. ScheduleAnyway, not DoNotSchedule: with DoNotSchedule the
    replacements of a dead node's pods stay Pending (the tainted node still counts as a domain with 0
    pods; upstream's nodeTaintsPolicy defaults to Ignore), exactly as upstream would."""
    labels = {"app": "web"}
    container = {"name": "web", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", WEB_COMMAND],
                 "env": [{"name": "VERSION", "value": "1"},
                         {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                 "ports": [{"containerPort": 8080}],
                 "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                 "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                     "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "terminationGracePeriodSeconds": 2,
                         "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                        "whenUnsatisfiable": "ScheduleAnyway",
                                                        "labelSelector": {"matchLabels": labels}}],
                         "containers": [container],
                         "volumes": [{"name": "scratch", "emptyDir": {}}]}}}}


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
DAEMONSET = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
             "spec": {"selector": {"matchLabels": {"app": "agent"}},
                      "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
                          "terminationGracePeriodSeconds": 1,
                          "containers": [{"name": "agent", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                          "command": SLEEP}]}}}}
BUDGET = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
          "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}


@dataclass
class Scene:
    """The module's cluster and what earlier tests learnt that later ones need."""

    host: Host
    cluster_ip: str = ""
    stopped: list[str] = field(default_factory=list)  # names of web pods that were on the stopped node

    def kubectl(self, *argv: str, stdin: str | None = None, timeout: float = 90) -> str:
        done = self.host.kubectl(CONTEXT, *argv, stdin=stdin, timeout=timeout)
        assert done.returncode == 0, f"kubectl {' '.join(argv)}: {done.stderr}"
        return done.stdout

    def get(self, *argv: str) -> dict:
        return json.loads(self.kubectl("get", *argv, "-o", "json"))

    def pods(self, app: str) -> list[dict]:
        return self.get("pods", "-l", f"app={app}")["items"]

    def rollout(self, kind: str = "deployment/web") -> None:
        self.kubectl("rollout", "status", kind, "--timeout=60s", timeout=70)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    host = make_host(tmp_path_factory.mktemp("scenarios"))
    try:
        done = host.create(NAME, 3, "--node-monitor-grace-period", f"{GRACE}s",
                           "--default-unreachable-toleration-seconds", str(TOLERATION))
        assert done.returncode == 0, done.stdout + done.stderr
        yield Scene(host)
    finally:
        force_delete(host, NAME)


# ---------------------------------------------------------------------------------------- helpers


def live(pods: list[dict]) -> list[dict]:
    """Pods not being deleted."""
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def per_node(pods: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in pods:
        node = p["spec"].get("nodeName") or ""
        counts[node] = counts.get(node, 0) + 1
    return counts


def ask(scene: Scene, target: str, *, times: int) -> list[tuple[str, str, str]]:
    """``times`` GETs of http://target/ from the client pod on node 1: (node, pod, version) per answer."""
    loop = (f"for i in $(seq {times}); do timeout 3 wget -qO- http://{target}/ || echo FAILED; done")
    out = scene.host.kubectl(CONTEXT, "exec", "client", "--", "sh", "-c", loop, timeout=times * 4 + 30).stdout
    return ANSWER.findall(out)


class Sampler:
    """Samples something every ``every`` s on a thread until stopped: the record of a failover."""

    def __init__(self, probe: Callable[[], object], *, every: float = 0.5) -> None:
        self.probe, self.every = probe, every
        self.samples: list[tuple[float, object]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            try:
                value = self.probe()
            except subprocess.TimeoutExpired:
                value = None  # a hung kubectl is no observation (the count check notices gaps)
            self.samples.append((time.monotonic() - start, value))
            behind = (time.monotonic() - start) % self.every  # a fixed cadence, whatever the probe took
            self._stop.wait(self.every - behind)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def ready_endpoints(scene: Scene) -> int | None:
    """Ready endpoints of Service web now (None when kubectl failed: not counted as zero)."""
    done = scene.host.kubectl(CONTEXT, "get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                              "-o", "json", timeout=10)
    if done.returncode != 0:
        return None
    slices = json.loads(done.stdout)["items"]
    return sum(1 for s in slices for e in s.get("endpoints") or () if (e.get("conditions") or {}).get("ready"))


# ------------------------------------------------------------------------------------------ tests


def test_daemonset_runs_one_pod_per_node(scene: Scene) -> None:
    apply(scene.host, CONTEXT, [DAEMONSET])
    scene.rollout("daemonset/agent")
    pods = live(scene.pods("agent"))
    assert per_node(pods) == {n: 1 for n in NODES}, per_node(pods)
    assert all(is_ready(p) for p in pods)
    status = scene.get("daemonset", "agent")["status"]
    assert (status["desiredNumberScheduled"], status["numberReady"]) == (3, 3), status
    tolerated = {t.get("key") for t in pods[0]["spec"].get("tolerations") or () if t.get("effect") == "NoExecute"}
    assert UNREACHABLE in tolerated  # so a dead node keeps its DaemonSet pod


def test_service_name_reaches_backends_on_every_node(scene: Scene) -> None:
    apply(scene.host, CONTEXT, [web_deployment(), SERVICE, pod("client", NODES[0], SLEEP, pull="IfNotPresent")])
    scene.rollout()
    scene.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=60s")
    web = live(scene.pods("web"))
    assert per_node(web) == {n: 1 for n in NODES}, per_node(web)
    scene.cluster_ip = scene.get("service", "web")["spec"]["clusterIP"]

    far = next(p for p in web if p["spec"]["nodeName"] == NODES[2])  # node 1 → node 3 by pod IP
    assert f"node={NODES[2]}" in fetch_from(scene.host, CONTEXT, "client", far["status"]["podIP"])
    answers = wait(lambda: ask(scene, "web", times=30), within=20, what="service web by name from node 1")
    assert {node for node, _, _ in answers} == set(NODES), answers


def test_rolling_update_under_load_fails_no_request(scene: Scene) -> None:
    before = {p["metadata"]["name"] for p in scene.pods("web")}
    loop = ("end=$(( $(date +%s) + 120 )); rm -f /tmp/stop; "
            "while [ ! -e /tmp/stop ] && [ $(date +%s) -lt $end ]; do "
            f"if r=$(timeout 3 wget -qO- http://{scene.cluster_ip}/); then echo \"OK $r\"; else echo FAILED; fi; "
            "sleep 0.05; done")
    load = scene.host.kubectl_popen(CONTEXT, "exec", "client", "--", "sh", "-c", loop)
    try:
        time.sleep(2)  # some answers from version 1 first
        scene.kubectl("set", "env", "deployment/web", "VERSION=2")
        scene.rollout()
        time.sleep(2)  # and some from version 2 after
        scene.kubectl("exec", "client", "--", "touch", "/tmp/stop")
        out, err = load.communicate(timeout=30)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    lines = out.splitlines()
    failed = [line for line in lines if not line.startswith("OK ")]
    versions = [m.group(3) for m in map(ANSWER.search, lines) if m]
    print(f"\nrolling update under load: {len(lines)} requests, {len(failed)} failed")
    assert len(lines) >= 20, out + err
    assert failed == [], failed
    assert versions[0] == "1" and versions[-1] == "2", versions
    after = live(scene.pods("web"))
    assert len(after) == 3 and not before & {p["metadata"]["name"] for p in after}


def test_rollout_undo_returns_to_the_previous_revision(scene: Scene) -> None:
    assert scene.get("deployment", "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    scene.kubectl("rollout", "undo", "deployment/web")
    scene.rollout()
    deployment = scene.get("deployment", "web")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["VERSION"] == "1"
    history = scene.kubectl("rollout", "history", "deployment/web")
    assert re.findall(r"^(\d+)\s", history, re.M) == ["2", "3"], history  # revision 1 became 3
    wait(lambda: {v for _, _, v in ask(scene, "web", times=6)} == {"1"}, within=20, what="only version 1 answers")


def test_scale_spreads_pods(scene: Scene) -> None:
    scene.kubectl("scale", "deployment/web", f"--replicas={REPLICAS}")
    scene.rollout()
    counts = per_node(live(scene.pods("web")))
    assert sum(counts.values()) == REPLICAS and set(counts) == set(NODES), counts
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    wait(lambda: ready_endpoints(scene) == REPLICAS, within=20, what=f"{REPLICAS} ready endpoints")


def test_node_stop_moves_its_pods_and_the_service_keeps_an_endpoint(scene: Scene) -> None:
    victim = NODES[1]
    scene.stopped = [p["metadata"]["name"] for p in live(scene.pods("web")) if p["spec"]["nodeName"] == victim]
    assert scene.stopped, "no web pod on the node to stop"
    tolerations = live(scene.pods("web"))[0]["spec"].get("tolerations") or []
    assert {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": TOLERATION} in tolerations, tolerations  # the cluster's admission default

    def moved() -> bool:
        pods = scene.pods("web")
        if any(not p["metadata"].get("deletionTimestamp") for p in pods if p["metadata"]["name"] in scene.stopped):
            return False
        elsewhere = [p for p in live(pods) if p["spec"].get("nodeName") not in (None, victim)]
        return len(elsewhere) == REPLICAS and all(is_ready(p) for p in elsewhere)

    budget = GRACE + TOLERATION + FAILOVER_MARGIN
    with Sampler(lambda: ready_endpoints(scene)) as sampler:
        start = time.monotonic()
        stopped = scene.host.cluster("node", "stop", NAME, victim)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        wait(moved, within=budget, what=f"{victim}'s pods Running on other nodes")
        took = time.monotonic() - start
        time.sleep(1)
    counts = [n for _, n in sampler.samples if n is not None]
    print(f"\nnode stop → its {len(scene.stopped)} pods Running elsewhere in {took:.1f}s "
          f"(grace {GRACE}s + toleration {TOLERATION}s); ready endpoints min {min(counts)} over {len(counts)} samples")
    assert len(counts) >= took / 1.5, sampler.samples  # sampled all along (every 0.5 s, kubectl ~0.2 s)
    assert min(counts) >= 1, sampler.samples
    assert took >= GRACE  # nothing moved before the node was declared unreachable

    node = scene.get("node", victim)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown", ready
    taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or ()}
    assert {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} <= taints, taints
    assert re.search(rf"^{victim}\s+NotReady\s", scene.kubectl("get", "nodes"), re.M)
    kept = [p for p in live(scene.pods("agent")) if p["spec"]["nodeName"] == victim]
    assert len(kept) == 1  # the DaemonSet pod tolerates the taint for good
    assert len(ask(scene, "web", times=6)) == 6  # the service answers from the nodes left


def test_node_start_rejoins_and_its_stale_pods_go(scene: Scene) -> None:
    victim = NODES[1]
    started = scene.host.cluster("node", "start", NAME, victim)
    assert started.returncode == 0, started.stdout + started.stderr

    def rejoined() -> bool:
        node = scene.get("node", victim)
        untainted = not any(t["key"] == UNREACHABLE for t in node["spec"].get("taints") or ())
        names = {p["metadata"]["name"] for p in scene.pods("web")}
        return is_ready(node) and untainted and not names & set(scene.stopped)

    wait(rejoined, within=60, what=f"{victim} Ready, untainted, its evicted pods gone")
    wait(lambda: scene.get("daemonset", "agent")["status"].get("numberReady") == 3, within=60,
         what="the DaemonSet pod on the restarted node Ready again")
    assert len(live(scene.pods("web"))) == REPLICAS


def test_drain_moves_pods_within_the_budget_and_uncordon(scene: Scene) -> None:
    apply(scene.host, CONTEXT, [BUDGET])
    wait(lambda: (scene.get("pdb", "web").get("status") or {}).get("disruptionsAllowed") == 1, within=20,
         what="the budget allows one disruption")
    counts = per_node(live(scene.pods("web")))
    target = max(NODES[1:], key=lambda n: counts.get(n, 0))  # node 1 has the bare client pod
    assert counts.get(target, 0) >= 2, counts  # so the budget must refuse one eviction

    def healthy() -> int:
        done = scene.host.kubectl(CONTEXT, "get", "pods", "-l", "app=web", "-o", "json", timeout=10)
        return sum(1 for p in live(json.loads(done.stdout)["items"]) if is_ready(p)) if done.returncode == 0 else -1

    with Sampler(healthy) as sampler:
        drained = scene.host.kubectl(CONTEXT, "drain", target, "--ignore-daemonsets", "--delete-emptydir-data",
                                     "--timeout=60s", timeout=70)
    assert drained.returncode == 0, (drained.stderr[-1500:] + scene.kubectl("get", "pods", "-o", "wide")
                                     + scene.kubectl("get", "pdb", "web", "-o", "yaml"))
    assert "disruption budget" in drained.stderr, drained.stderr  # kubectl was told to wait at least once
    assert f"node/{target} drained" in drained.stdout
    seen = [n for _, n in sampler.samples if n is not None and n >= 0]
    assert min(seen) >= REPLICAS - 1, sampler.samples

    web = live(scene.pods("web"))
    assert target not in per_node(web) and len(web) == REPLICAS
    assert [p["spec"]["nodeName"] for p in live(scene.pods("agent"))].count(target) == 1  # DaemonSet pod stays
    assert scene.get("node", target)["spec"].get("unschedulable") is True

    scene.kubectl("uncordon", target)
    node = scene.get("node", target)
    assert not node["spec"].get("unschedulable")
    assert not any(t["key"] == "node.kubernetes.io/unschedulable" for t in node["spec"].get("taints") or ())
    scene.kubectl("scale", "deployment/web", f"--replicas={REPLICAS + 1}")
    scene.rollout()  # the uncordoned node takes pods again
    assert per_node(live(scene.pods("web"))).get(target, 0) >= 1


def test_only_the_stopped_node_was_ever_declared_not_ready(scene: Scene) -> None:
    """The node lifecycle controller records a NodeNotReady Event each time it gives up on a node: the
    stopped node once, the healthy ones never (a heartbeat that is late by a hair must not count)."""
    events = scene.get("events", "--field-selector", "reason=NodeNotReady")["items"]
    per = {n: sum(1 for e in events if e["involvedObject"].get("name") == n) for n in NODES}
    assert per == {NODES[0]: 0, NODES[1]: 1, NODES[2]: 0}, per
