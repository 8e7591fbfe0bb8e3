"""Node failure, DaemonSets and evictions against a real ``pinnace server``.

The controllers and the real scheduler run in the test's loop; fake nodes (tests/controllers/
fake_kubelet.py) make pods Running and Ready, and :class:`Heartbeats` renews their Leases until the
test stops one. Grace periods and toleration seconds are 2 s so a node failure plays out in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from controller_env import PODS, REPLICASETS, create, eventually
from fake_kubelet import FakeKubelet
from nodelife_env import DAEMONSETS, NODES, PDBS, REVISIONS, Heartbeats, control_plane, require, served

from machinery.client import ApiClient, ApiError, NotFound, Resource, TooManyRequests

EVENTS = Resource("", "v1", "events", True)

FAST_TOLERATIONS = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}
                    for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]


def workload(name: str, *, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}],
                                           "terminationGracePeriodSeconds": 30,
                                           "tolerations": FAST_TOLERATIONS}}}}


def daemonset(name: str, *, tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {"containers": [{"name": "agent", "image": "busybox:1.36"}]}
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


async def pods_of(client: ApiClient, namespace: str, app: str) -> list[dict[str, Any]]:
    return (await client.list(PODS, namespace=namespace, label_selector=f"app={app}"))["items"]


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or () if c.get("type") == kind), {})


def taint_keys(node: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or ()}


async def evict(client: ApiClient, namespace: str, name: str, *, body_name: str | None = None) -> dict[str, Any]:
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": body_name or name, "namespace": namespace}}
    return await client.request("POST", PODS.path(namespace=namespace, name=name, subresource="eviction"),
                                body=body)


# --- node failure ----------------------------------------------------------------------------------

async def test_silent_node_is_tainted_its_pods_evicted_and_replaced_then_it_recovers(
        client: ApiClient, namespace: str) -> None:
    async with FakeKubelet(client, namespace, nodes=3, bind=False) as kubelet, \
            Heartbeats(client, list(kubelet.node_names)) as beats, \
            control_plane(client, "replicaset", "nodelifecycle", "taint-eviction-controller", grace=2.0):
        await create(client, REPLICASETS, workload("web", replicas=4), namespace)

        async def all_ready() -> bool:
            pods = [p for p in await pods_of(client, namespace, "web") if not p["metadata"].get("deletionTimestamp")]
            return len(pods) == 4 and all(ready(p) for p in pods)

        await eventually(all_ready, within=10, what="4 pods Running and Ready")
        first = await pods_of(client, namespace, "web")
        victim = first[0]["spec"]["nodeName"]
        on_victim = {p["metadata"]["name"] for p in first if p["spec"]["nodeName"] == victim}
        for node in kubelet.node_names:
            assert taint_keys(await client.get(NODES, node)) == set(), "healthy nodes carry no taints"

        beats.stop(victim)
        kubelet.node_names.remove(victim)  # its kubelet is gone: nothing confirms deletions there now

        async def unreachable() -> bool:
            node = await client.get(NODES, victim)
            return condition(node, "Ready").get("status") == "Unknown" and taint_keys(node) >= {
                ("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}

        await eventually(unreachable, within=6, what=f"{victim} Unknown and tainted unreachable")
        node = await client.get(NODES, victim)
        ready_cond = condition(node, "Ready")
        assert (ready_cond["reason"], ready_cond["message"]) == ("NodeStatusUnknown",
                                                                 "Kubelet stopped posting node status.")
        pressure = ("MemoryPressure", "DiskPressure", "PIDPressure")
        assert {condition(node, t).get("status") for t in pressure} == {"Unknown"}
        no_execute = next(t for t in node["spec"]["taints"] if t["effect"] == "NoExecute")
        assert no_execute.get("timeAdded"), "a NoExecute taint records when it was added"

        async def not_ready_then_evicted() -> bool:
            pods = {p["metadata"]["name"]: p for p in await pods_of(client, namespace, "web")}
            return all(n in pods and not ready(pods[n]) and pods[n]["metadata"].get("deletionTimestamp")
                       and condition(pods[n], "DisruptionTarget").get("reason") == "DeletionByTaintManager"
                       for n in on_victim)

        await eventually(not_ready_then_evicted, within=8, what="the silent node's pods NotReady and evicted")
        events = (await client.list(EVENTS, namespace=namespace))["items"]
        assert {e["involvedObject"]["name"] for e in events if e["reason"] == "TaintManagerEviction"} >= on_victim

        async def replaced_elsewhere() -> bool:
            pods = [p for p in await pods_of(client, namespace, "web") if not p["metadata"].get("deletionTimestamp")]
            return len(pods) == 4 and all(ready(p) and p["spec"]["nodeName"] != victim for p in pods)

        await eventually(replaced_elsewhere, within=10, what="replacements Ready on the healthy nodes")

        # the node comes back: taints go, its kubelet finishes off the stale pods
        kubelet.node_names.append(victim)
        await beats.resume(victim)
        for pod in await pods_of(client, namespace, "web"):
            if pod["metadata"]["name"] in on_victim:
                kubelet.queue.add(f"{namespace}/{pod['metadata']['name']}")

        async def recovered() -> bool:
            node = await client.get(NODES, victim)
            names = {p["metadata"]["name"] for p in await pods_of(client, namespace, "web")}
            return condition(node, "Ready").get("status") == "True" and not taint_keys(node) \
                and not (names & on_victim)

        await eventually(recovered, within=6, what=f"{victim} Ready without taints, stale pods gone")


async def test_cordon_adds_the_unschedulable_taint_and_uncordon_removes_it(client: ApiClient, namespace: str) -> None:
    async with FakeKubelet(client, namespace, nodes=1, bind=False) as kubelet, \
            Heartbeats(client, list(kubelet.node_names)), \
            control_plane(client, "nodelifecycle", grace=5.0):
        node = kubelet.node_names[0]
        await client.patch(NODES, node, {"spec": {"unschedulable": True}})

        async def tainted() -> bool:
            return ("node.kubernetes.io/unschedulable", "NoSchedule") in taint_keys(await client.get(NODES, node))

        await eventually(tainted, within=5, what="cordoned node tainted unschedulable")
        await client.patch(NODES, node, {"spec": {"unschedulable": None}})

        async def untainted() -> bool:
            return not taint_keys(await client.get(NODES, node))

        await eventually(untainted, within=5, what="uncordoned node untainted")


# --- DaemonSet -------------------------------------------------------------------------------------

async def test_daemonset_one_pod_per_eligible_node_rolling_update_and_history(
        client: ApiClient, namespace: str) -> None:
    async with FakeKubelet(client, namespace, nodes=3, bind=False) as kubelet, \
            control_plane(client, "daemonset"):
        nodes = list(kubelet.node_names)
        dedicated = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
        await client.patch(NODES, nodes[2], {"spec": {"taints": [dedicated]}})
        ds = await create(client, DAEMONSETS, daemonset("agent"), namespace)

        async def status_is(**want: int) -> bool:
            status = (await client.get(DAEMONSETS, "agent", namespace=namespace)).get("status") or {}
            return all(status.get(k, 0) == v for k, v in want.items())

        await eventually(lambda: status_is(desiredNumberScheduled=2, currentNumberScheduled=2, numberReady=2,
                                           numberAvailable=2, updatedNumberScheduled=2, numberMisscheduled=0,
                                           observedGeneration=1),
                         within=10, what="2 daemon pods on the untainted nodes")
        pods = await pods_of(client, namespace, "agent")
        assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(nodes[:2])
        for pod in pods:
            terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert terms["nodeSelectorTerms"] == [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]}]
            keys = {(t.get("key"), t.get("effect")) for t in pod["spec"]["tolerations"]}
            assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
            assert ("node.kubernetes.io/unreachable", "NoExecute") in keys
        old_names = {p["metadata"]["name"] for p in pods}

        # tolerate the taint: a rolling update to 3 nodes, one node down at a time
        template_spec = {**ds["spec"]["template"]["spec"], "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]}
        await client.patch(DAEMONSETS, "agent", {"spec": {"template": {"spec": template_spec}}}, namespace=namespace)
        worst = 0

        async def rolled() -> bool:
            nonlocal worst
            status = (await client.get(DAEMONSETS, "agent", namespace=namespace)).get("status") or {}
            worst = max(worst, status.get("numberUnavailable", 0))
            return status.get("observedGeneration") == 2 and status.get("updatedNumberScheduled") == 3 \
                and status.get("numberAvailable") == 3 and status.get("desiredNumberScheduled") == 3

        await eventually(rolled, within=15, what="rolled out to all 3 nodes")
        assert worst <= 1, "maxUnavailable 1: never more than one node without an available daemon pod"
        live = [p for p in await pods_of(client, namespace, "agent") if not p["metadata"].get("deletionTimestamp")]
        assert sorted(p["spec"]["nodeName"] for p in live) == sorted(nodes)
        assert not ({p["metadata"]["name"] for p in live} & old_names), "every old pod was replaced"
        assert len({p["metadata"]["labels"]["controller-revision-hash"] for p in live}) == 1

        if await served(client, REVISIONS):
            revisions = (await client.list(REVISIONS, namespace=namespace))["items"]
            assert sorted(r["revision"] for r in revisions) == [1, 2]
            newest = max(revisions, key=lambda r: r["revision"])
            assert newest["data"]["spec"]["template"]["spec"]["tolerations"][0]["key"] == "dedicated"

        # a cordoned node still runs its daemon pod: a deleted one comes back there
        await client.patch(NODES, nodes[0], {"spec": {"unschedulable": True}})
        gone = next(p for p in live if p["spec"]["nodeName"] == nodes[0])
        await client.delete(PODS, gone["metadata"]["name"], namespace=namespace)

        async def back_on_cordoned() -> bool:
            pods = [p for p in await pods_of(client, namespace, "agent")
                    if p["spec"].get("nodeName") == nodes[0] and ready(p)]
            return any(p["metadata"]["name"] != gone["metadata"]["name"] for p in pods)

        await eventually(back_on_cordoned, within=10, what="daemon pod recreated on the cordoned node")

        # the node stops being eligible: its pod goes, and the status counts one node less
        await client.patch(NODES, nodes[1], {"spec": {"taints": [{"key": "x", "effect": "NoExecute"}]}})

        async def left_node() -> bool:
            pods = [p for p in await pods_of(client, namespace, "agent") if not p["metadata"].get("deletionTimestamp")]
            return nodes[1] not in {p["spec"].get("nodeName") for p in pods} and await status_is(
                desiredNumberScheduled=2, currentNumberScheduled=2, numberMisscheduled=0)

        await eventually(left_node, within=10, what="daemon pod removed from the NoExecute-tainted node")


# --- eviction and disruption budgets ---------------------------------------------------------------

async def test_eviction_honours_the_disruption_budget(client: ApiClient, namespace: str) -> None:
    await require(client, PDBS)
    async with FakeKubelet(client, namespace, nodes=2, bind=False), \
            control_plane(client, "replicaset", "disruption"):
        await create(client, REPLICASETS, workload("db", replicas=2), namespace)
        pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
               "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}}
        await client.create(PDBS, pdb, namespace=namespace)

        async def budget(**want: Any) -> bool:
            status = (await client.get(PDBS, "db", namespace=namespace)).get("status") or {}
            return all(status.get(k) == v for k, v in want.items())

        await eventually(lambda: budget(currentHealthy=2, desiredHealthy=2, expectedPods=2, disruptionsAllowed=0,
                                        observedGeneration=1), within=10, what="budget with no disruption allowed")
        victim = (await pods_of(client, namespace, "db"))[0]["metadata"]["name"]
        with pytest.raises(TooManyRequests) as refused:
            await evict(client, namespace, victim)
        status = refused.value.status
        assert (status["code"], status["reason"]) == (429, "TooManyRequests")
        assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
        assert status["details"]["causes"] == [{"reason": "DisruptionBudget", "message":
                                                "The disruption budget db needs 2 healthy pods and has 2 currently"}]
        assert await client.get(PODS, victim, namespace=namespace), "a refused eviction deletes nothing"

        await client.patch(PDBS, "db", {"spec": {"minAvailable": 1}}, namespace=namespace)
        await eventually(lambda: budget(disruptionsAllowed=1, observedGeneration=2), within=5,
                         what="one disruption allowed")
        names = [p["metadata"]["name"] for p in await pods_of(client, namespace, "db")]
        results = await asyncio.gather(*(evict(client, namespace, n) for n in names), return_exceptions=True)
        refusals = [r for r in results if isinstance(r, TooManyRequests)]
        granted = [n for n, r in zip(names, results, strict=True) if not isinstance(r, BaseException)]
        assert len(granted) == 1 and len(refusals) == 1, f"exactly one of two concurrent evictions: {results}"
        spent = (await client.get(PDBS, "db", namespace=namespace))["status"]
        assert spent["disruptionsAllowed"] == 0, "the granted eviction spent the only allowed disruption"

        async def evicted_and_replaced() -> bool:
            pods = [p for p in await pods_of(client, namespace, "db") if not p["metadata"].get("deletionTimestamp")]
            return granted[0] not in {p["metadata"]["name"] for p in pods} and len(pods) == 2 \
                and all(ready(p) for p in pods)

        await eventually(evicted_and_replaced, within=10, what="the evicted pod replaced")
        await eventually(lambda: budget(currentHealthy=2, disruptionsAllowed=1), within=5,
                         what="budget recovered after the replacement")


async def test_eviction_edge_cases(client: ApiClient, namespace: str) -> None:
    await require(client, PDBS)
    selector = {"matchLabels": {"app": "solo"}}
    for name in ("a", "b"):
        await client.create(PDBS, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
                                   "spec": {"maxUnavailable": 0, "selector": selector}}, namespace=namespace)
    pending = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pending", "labels": {"app": "solo"}},
               "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    await client.create(PODS, pending, namespace=namespace)
    with pytest.raises(ApiError) as mismatch:
        await evict(client, namespace, "pending", body_name="other")
    assert (mismatch.value.code, mismatch.value.message) == (400, "name in URL does not match name in Eviction object")

    # a Pending pod is not counted by any budget: evicted even with two (otherwise a 500) blocking ones
    await evict(client, namespace, "pending")
    with pytest.raises(NotFound):
        await client.get(PODS, "pending", namespace=namespace)

    running = {**pending, "metadata": {"name": "running", "labels": {"app": "solo"}}}
    await client.create(PODS, running, namespace=namespace)
    await client.patch(PODS, "running", {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]}}, namespace=namespace, subresource="status")
    with pytest.raises(ApiError) as two:
        await evict(client, namespace, "running")
    assert two.value.code == 500
    assert "more than one PodDisruptionBudget" in two.value.message
    await client.delete(PDBS, "b", namespace=namespace)
    with pytest.raises(TooManyRequests) as unprocessed:
        await evict(client, namespace, "running")
    assert unprocessed.value.status["details"]["causes"][0]["message"] == \
        "The disruption budget a is still being processed by the server."
    with contextlib.suppress(NotFound):
        await client.delete(PODS, "running", namespace=namespace, grace_period_seconds=0)
