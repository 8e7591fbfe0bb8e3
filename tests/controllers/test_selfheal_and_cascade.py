"""Self-healing (deleted pods are replaced), cascading ``kubectl delete deploy`` with the garbage
collector running, and a controller-manager killed mid-rollout that finishes within maxSurge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from controller_env import Running, eventually, gone
from fake_kubelet import FakeKubelet
from rollout_env import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    Sampler,
    deployment,
    image_of,
    live_pods,
    rolled_out,
)

from controllers.manager import ControllerManager
from e2e.cluster import Kubectl, Server, kubectl_missing
from machinery.client import ApiClient

WITH_GC = ("replicaset", "deployment", "garbagecollector")


async def _count_is(client: ApiClient, namespace: str, n: int) -> bool:
    return len(await live_pods(client, namespace)) == n


async def test_deleted_pods_are_replaced_one_and_in_bulk(client: ApiClient, namespace: str,
                                                         running: Running) -> None:
    async with running("replicaset", "deployment"), FakeKubelet(client, namespace, ready_after=0.05):
        await client.create(DEPLOYMENTS, deployment("web", replicas=4), namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="rolled out")
        first = await live_pods(client, namespace)
        victim = first[0]["metadata"]["name"]
        await client.delete(PODS, victim, namespace=namespace)

        async def replaced_one() -> bool:
            names = {p["metadata"]["name"] for p in await live_pods(client, namespace)}
            return len(names) == 4 and victim not in names

        await eventually(replaced_one, within=10, what="deleted pod replaced")
        before = {p["metadata"]["name"] for p in await live_pods(client, namespace)}
        await asyncio.gather(*(client.delete(PODS, name, namespace=namespace) for name in before))

        async def replaced_all() -> bool:
            names = {p["metadata"]["name"] for p in await live_pods(client, namespace)}
            return len(names) == 4 and not names & before and await rolled_out(client, namespace, "web")

        await eventually(replaced_all, within=10, what="bulk-deleted pods replaced")
        await asyncio.sleep(0.5)
        assert await _count_is(client, namespace, 4), "no extra pods after the replacement"


async def test_failed_pods_are_replaced_and_kept(client: ApiClient, namespace: str, running: Running) -> None:
    doomed: set[str] = set()

    def fails(pod: dict) -> bool:  # the first two pods fail, as a crashing container would
        if len(doomed) < 2:
            doomed.add(pod["metadata"]["name"])
        return pod["metadata"]["name"] in doomed

    async with running("replicaset", "deployment"), FakeKubelet(client, namespace, ready_after=0.05, fails=fails):
        await client.create(DEPLOYMENTS, deployment("web", replicas=3), namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="rolled out despite failures")
        items = (await client.list(PODS, namespace=namespace))["items"]
        phases = sorted(p["status"].get("phase") for p in items)
        assert phases == ["Failed", "Failed", "Running", "Running", "Running"]
        assert {p["metadata"]["name"] for p in items if p["status"].get("phase") == "Failed"} == doomed


@pytest.fixture
def kubectl(server: Server, tmp_path: Path) -> Kubectl:
    if kubectl_missing():
        pytest.skip("no kubectl")
    home = tmp_path / "home"
    home.mkdir()
    return Kubectl(kubeconfig=server.kubeconfig, home=home)


async def _all_items(client: ApiClient, namespace: str) -> tuple[int, int]:
    rss = (await client.list(REPLICASETS, namespace=namespace)).get("items") or []
    pods = (await client.list(PODS, namespace=namespace)).get("items") or []
    return len(rss), len(pods)


@pytest.mark.parametrize("cascade", ["background", "orphan", "foreground"])
async def test_kubectl_delete_deploy_cascades(client: ApiClient, namespace: str, running: Running,
                                             kubectl: Kubectl, cascade: str) -> None:
    async with running(*WITH_GC), FakeKubelet(client, namespace, ready_after=0.05):
        await client.create(DEPLOYMENTS, deployment("web", replicas=3), namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="rolled out")
        args = ["-n", namespace, "delete", "deploy", "web", f"--cascade={cascade}", "--timeout=30s"]
        if cascade == "foreground":
            seen: list[tuple[int, int, bool]] = []

            async def watch_order() -> None:
                while True:
                    rs, pods = await _all_items(client, namespace)
                    present = not await gone(client, DEPLOYMENTS, "web", namespace)
                    seen.append((rs, pods, present))
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(watch_order())
            await asyncio.to_thread(kubectl.run, *args, timeout=60)
            task.cancel()
            assert not [s for s in seen if not s[2] and (s[0] or s[1])], "deployment went before its pods"
        else:
            await asyncio.to_thread(kubectl.run, *args, timeout=60)
        assert await gone(client, DEPLOYMENTS, "web", namespace)
        if cascade == "orphan":
            await asyncio.sleep(0.5)
            rss = (await client.list(REPLICASETS, namespace=namespace))["items"]
            assert len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences")
            pods = {p["metadata"]["name"] for p in await live_pods(client, namespace)}
            assert len(pods) == 3
            # applied again, the Deployment adopts its old ReplicaSet instead of starting anew
            again = await client.create(DEPLOYMENTS, deployment("web", replicas=3), namespace=namespace)

            async def adopted() -> bool:
                rss = (await client.list(REPLICASETS, namespace=namespace))["items"]
                refs = [r for rs in rss for r in rs["metadata"].get("ownerReferences") or ()]
                return len(rss) == 1 and [r["uid"] for r in refs] == [again["metadata"]["uid"]]

            await eventually(adopted, what="orphaned ReplicaSet adopted")
            await eventually(lambda: rolled_out(client, namespace, "web"), within=10, what="adopted status")
            assert {p["metadata"]["name"] for p in await live_pods(client, namespace)} == pods
        else:
            async def empty() -> bool:
                return await _all_items(client, namespace) == (0, 0)

            await eventually(empty, within=10, what="ReplicaSets and pods deleted")


async def test_manager_killed_mid_rollout_finishes_without_extra_pods(client: ApiClient, namespace: str) -> None:
    async with FakeKubelet(client, namespace, ready_after=0.4):
        first = ControllerManager(client, names=["replicaset", "deployment"])
        await first.start()
        await first.wait_synced()
        await client.create(DEPLOYMENTS, deployment("web", replicas=5), namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="first rollout")
        sampler = Sampler(client, namespace)
        async with sampler.during():
            patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}}
            await client.patch(DEPLOYMENTS, "web", patch, namespace=namespace, patch_type="strategic")

            async def two_new() -> bool:
                return sum(image_of(p) == "nginx:1.26" for p in await live_pods(client, namespace)) >= 2

            await eventually(two_new, within=10, what="rollout under way")
            await first.stop()  # killed: the in-flight work and every cache go
            await asyncio.sleep(0.6)
            second = ControllerManager(client, names=["replicaset", "deployment"])
            await second.start()
            try:
                await eventually(lambda: rolled_out(client, namespace, "web"), within=30, what="finished")
            finally:
                await second.stop()
        pods = await live_pods(client, namespace)
        assert len(pods) == 5 and {image_of(p) for p in pods} == {"nginx:1.26"}
        assert max(total for total, _ in sampler.samples) <= 6
        assert min(ready for _, ready in sampler.samples) >= 5
