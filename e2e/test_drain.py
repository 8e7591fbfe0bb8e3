"""``kubectl cordon``, ``uncordon`` and ``drain`` against a real server, on fake nodes.

The server runs every controller and the scheduler; the fake kubelet of tests/controllers makes the
scheduled pods Running and Ready. ``kubectl drain`` evicts through pods/eviction: first a
PodDisruptionBudget refuses (kubectl says so and retries every 5 s), then the Deployment is scaled up
elsewhere, the budget allows one disruption, and the drain finishes. DaemonSet pods stay
(``--ignore-daemonsets``) and emptyDir data goes (``--delete-emptydir-data``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest

from e2e.cluster import Kubectl, Server
from machinery.client import ApiClient
from machinery.kubeconfig import load_kubeconfig
from tests.controllers.fake_kubelet import FakeKubelet

MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: busybox:1.36, volumeMounts: [{name: scratch, mountPath: /scratch}]}]
      volumes: [{name: scratch, emptyDir: {}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox:1.36}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
"""


@pytest.fixture
async def client(server: Server) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=10) as c:
        yield c


def pods(kubectl: Kubectl, namespace: str) -> list[dict]:
    return json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]


def ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


async def wait_for(check, *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.2)


async def test_cordon_uncordon_and_drain_with_a_budget(kubectl: Kubectl, namespace: str, client: ApiClient) -> None:
    if "poddisruptionbudgets" not in kubectl("api-resources", "--api-group=policy", "-o", "name"):
        pytest.skip("the server does not serve policy/v1 poddisruptionbudgets (registry row missing)")
    async with FakeKubelet(client, namespace, nodes=2, bind=False) as kubelet:
        nodes = list(kubelet.node_names)

        # cordon / uncordon
        assert f"node/{nodes[1]} cordoned" in kubectl("cordon", nodes[1])
        assert json.loads(kubectl("get", "node", nodes[1], "-o", "json"))["spec"]["unschedulable"] is True
        assert f"node/{nodes[1]} uncordoned" in kubectl("uncordon", nodes[1])
        assert "unschedulable" not in json.loads(kubectl("get", "node", nodes[1], "-o", "json"))["spec"]

        kubectl("apply", "-n", namespace, "-f", "-", input=MANIFESTS)

        def settled() -> bool:
            items = pods(kubectl, namespace)
            web = [p for p in items if p["metadata"]["labels"].get("app") == "web"]
            agents = [p for p in items if p["metadata"]["labels"].get("app") == "agent"]
            budget = json.loads(kubectl("get", "pdb", "web", "-n", namespace, "-o", "json")).get("status") or {}
            return len(web) == 2 and len(agents) == 2 and all(ready(p) for p in web + agents) \
                and budget.get("currentHealthy") == 2 and budget.get("disruptionsAllowed") == 0

        await wait_for(settled, within=20, what="2 web pods, 2 daemon pods Ready, budget computed")
        web = [p for p in pods(kubectl, namespace) if p["metadata"]["labels"]["app"] == "web"]
        victim = web[0]["spec"]["nodeName"]
        drain = kubectl.popen("drain", victim, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s")
        try:
            await asyncio.sleep(2.0)
            assert drain.poll() is None, "the budget must hold the drain back"
            assert json.loads(kubectl("get", "node", victim, "-o", "json"))["spec"]["unschedulable"] is True
            kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=3")
            out, err = await asyncio.to_thread(drain.communicate, timeout=45)
        except BaseException:
            drain.kill()
            drain.communicate()
            raise
        text = out + err
        assert drain.returncode == 0, text
        assert "Cannot evict pod as it would violate the pod's disruption budget." in text
        assert "will retry after 5s" in text
        assert f"node/{victim} drained" in text
        assert "evicted" in text
        remaining = [p for p in pods(kubectl, namespace)
                     if p["spec"].get("nodeName") == victim and not p["metadata"].get("deletionTimestamp")]
        assert [p["metadata"]["labels"]["app"] for p in remaining] == ["agent"], "only the daemon pod stays"

        def replaced() -> bool:
            web = [p for p in pods(kubectl, namespace) if p["metadata"]["labels"]["app"] == "web"
                   and not p["metadata"].get("deletionTimestamp")]
            return len(web) == 3 and all(ready(p) and p["spec"]["nodeName"] != victim for p in web)

        await wait_for(replaced, within=20, what="web pods Ready on the other node")
        assert f"node/{victim} uncordoned" in kubectl("uncordon", victim)


async def test_daemonset_rollout_status_history_and_undo(kubectl: Kubectl, namespace: str,
                                                         client: ApiClient) -> None:
    if "controllerrevisions" not in kubectl("api-resources", "--api-group=apps", "-o", "name"):
        pytest.skip("the server does not serve apps/v1 controllerrevisions (registry row missing)")
    async with FakeKubelet(client, namespace, nodes=2, bind=False):
        kubectl("apply", "-n", namespace, "-f", "-", input=MANIFESTS.split("---")[1])

        def rollout_done() -> str:
            return kubectl("rollout", "status", "ds/agent", "-n", namespace, "--timeout=30s", timeout=40)

        assert 'daemon set "agent" successfully rolled out' in await asyncio.to_thread(rollout_done)
        kubectl("set", "image", "ds/agent", "agent=busybox:1.37", "-n", namespace)
        assert 'daemon set "agent" successfully rolled out' in await asyncio.to_thread(rollout_done)
        images = {p["spec"]["containers"][0]["image"] for p in pods(kubectl, namespace)
                  if not p["metadata"].get("deletionTimestamp")}
        assert images == {"busybox:1.37"}
        history = kubectl("rollout", "history", "ds/agent", "-n", namespace)
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"], history
        assert "busybox:1.36" in kubectl("rollout", "history", "ds/agent", "-n", namespace, "--revision=1")

        assert "rolled back" in kubectl("rollout", "undo", "ds/agent", "-n", namespace)
        assert 'daemon set "agent" successfully rolled out' in await asyncio.to_thread(rollout_done)

        def back_on_old_image() -> bool:
            live = [p for p in pods(kubectl, namespace) if not p["metadata"].get("deletionTimestamp")]
            return len(live) == 2 and {p["spec"]["containers"][0]["image"] for p in live} == {"busybox:1.36"}

        await wait_for(back_on_old_image, within=15, what="daemon pods back on the first image")
        history = kubectl("rollout", "history", "ds/agent", "-n", namespace)
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"], history
