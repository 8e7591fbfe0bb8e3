"""Deployments against a real API server with fake nodes: roll out, update within maxSurge and
maxUnavailable, history and undo through the real kubectl, progress deadline, pause/resume, Recreate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from controller_env import Running, eventually
from fake_kubelet import FakeKubelet
from rollout_env import (
    DEPLOYMENTS,
    REPLICASETS,
    Sampler,
    deployment,
    image_of,
    live_pods,
    progressing,
    rolled_out,
)

from controllers.deployment import HASH_LABEL, REVISION
from e2e.cluster import Kubectl, Server, kubectl_missing
from machinery.client import ApiClient

RS_AND_DEPLOY = ("replicaset", "deployment")


async def set_image(client: ApiClient, namespace: str, name: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
    await client.patch(DEPLOYMENTS, name, patch, namespace=namespace, patch_type="strategic")


async def owned_replicasets(client: ApiClient, namespace: str) -> list[dict]:
    return (await client.list(REPLICASETS, namespace=namespace)).get("items") or []


@pytest.fixture
def kubectl(server: Server, tmp_path: Path) -> Kubectl:
    if kubectl_missing():
        pytest.skip("no kubectl")
    home = tmp_path / "home"
    home.mkdir()
    return Kubectl(kubeconfig=server.kubeconfig, home=home)


async def run_kubectl(kubectl: Kubectl, *args: str, check: bool = True) -> tuple[int, str]:
    result = await asyncio.to_thread(kubectl.run, *args, check=check, timeout=60)
    return result.returncode, result.stdout + result.stderr


async def test_rollout_update_history_and_undo(client: ApiClient, namespace: str, running: Running,
                                               kubectl: Kubectl) -> None:
    async with running(*RS_AND_DEPLOY), FakeKubelet(client, namespace, nodes=3, ready_after=0.1) as kubelet:
        await client.create(DEPLOYMENTS, deployment("web"), namespace=namespace)
        code, out = await run_kubectl(kubectl, "-n", namespace, "rollout", "status", "deploy/web", "--timeout=30s")
        assert code == 0 and 'deployment "web" successfully rolled out' in out
        pods = await live_pods(client, namespace)
        assert len(pods) == 5
        assert set(kubelet.nodes_of(pods).values()) <= {1, 2}  # spread over the 3 nodes
        first_rs = {p["metadata"]["labels"][HASH_LABEL] for p in pods}
        assert len(first_rs) == 1

        sampler = Sampler(client, namespace)
        async with sampler.during():
            await set_image(client, namespace, "web", "nginx:1.26")
            await eventually(lambda: rolled_out(client, namespace, "web"), within=30, what="update rolled out")
        assert all(image_of(p) == "nginx:1.26" for p in await live_pods(client, namespace))
        assert len(await live_pods(client, namespace)) == 5
        assert len(sampler.samples) > 10
        assert max(total for total, _ in sampler.samples) <= 6, "maxSurge=1 exceeded"
        assert min(ready for _, ready in sampler.samples) >= 5, "maxUnavailable=0 broken"

        code, out = await run_kubectl(kubectl, "-n", namespace, "rollout", "history", "deploy/web")
        revisions = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
        assert revisions == ["1", "2"], out

        await run_kubectl(kubectl, "-n", namespace, "rollout", "undo", "deploy/web")
        await eventually(lambda: rolled_out(client, namespace, "web"), within=30, what="undo rolled out")

        async def back_on_first() -> bool:
            pods = await live_pods(client, namespace)
            return len(pods) == 5 and {p["metadata"]["labels"][HASH_LABEL] for p in pods} == first_rs

        await eventually(back_on_first, within=20, what="pods of the first ReplicaSet again")
        rss = await owned_replicasets(client, namespace)
        assert len(rss) == 2, "undo must reuse the first ReplicaSet, not create a third"
        by_hash = {rs["metadata"]["labels"][HASH_LABEL]: rs for rs in rss}
        assert by_hash[first_rs.pop()]["metadata"]["annotations"][REVISION] == "3"
        d = await client.get(DEPLOYMENTS, "web", namespace=namespace)
        assert d["metadata"]["annotations"][REVISION] == "3"
        code, out = await run_kubectl(kubectl, "-n", namespace, "rollout", "history", "deploy/web")
        assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["2", "3"]


async def test_progress_deadline_exceeded_keeps_old_pods(client: ApiClient, namespace: str,
                                                         running: Running) -> None:
    def broken(pod: dict) -> bool:
        return image_of(pod) == "nginx:broken"

    async with running(*RS_AND_DEPLOY), FakeKubelet(client, namespace, ready_after=0.05, unready=broken):
        await client.create(DEPLOYMENTS, deployment("web", replicas=3, deadline=2), namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="first rollout")
        await set_image(client, namespace, "web", "nginx:broken")

        async def exceeded() -> bool:
            return (await progressing(client, namespace, "web")).get("reason") == "ProgressDeadlineExceeded"

        await eventually(exceeded, within=15, what="ProgressDeadlineExceeded")
        cond = await progressing(client, namespace, "web")
        assert cond["status"] == "False" and "has timed out progressing" in cond["message"]
        pods = await live_pods(client, namespace)
        old = [p for p in pods if image_of(p) == "nginx:1.25"]
        assert len(old) == 3 and len(pods) == 4  # old pods keep serving; one surge pod never ready
        d = await client.get(DEPLOYMENTS, "web", namespace=namespace)
        assert d["status"]["availableReplicas"] == 3 and d["status"]["updatedReplicas"] == 1


async def test_pause_stops_and_resume_finishes(client: ApiClient, namespace: str, running: Running) -> None:
    async with running(*RS_AND_DEPLOY), FakeKubelet(client, namespace, ready_after=0.3):
        await client.create(DEPLOYMENTS, deployment("web", replicas=4), namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="first rollout")
        await set_image(client, namespace, "web", "nginx:1.26")

        async def some_new() -> bool:
            return any(image_of(p) == "nginx:1.26" for p in await live_pods(client, namespace))

        await eventually(some_new, within=10, what="rollout under way")
        await client.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, namespace=namespace)
        await eventually(lambda: _reason_is(client, namespace, "DeploymentPaused"), what="paused condition")
        await asyncio.sleep(1.5)
        mixed = await live_pods(client, namespace)
        assert {image_of(p) for p in mixed} == {"nginx:1.25", "nginx:1.26"}, "pause must stop the rollout"
        assert not await rolled_out(client, namespace, "web")

        await client.patch(DEPLOYMENTS, "web", {"spec": {"paused": False}}, namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=30, what="resumed rollout")
        assert {image_of(p) for p in await live_pods(client, namespace)} == {"nginx:1.26"}


async def _reason_is(client: ApiClient, namespace: str, reason: str) -> bool:
    return (await progressing(client, namespace, "web")).get("reason") == reason


async def test_recreate_replaces_all_pods_at_once(client: ApiClient, namespace: str, running: Running) -> None:
    async with running(*RS_AND_DEPLOY), FakeKubelet(client, namespace, ready_after=0.05):
        await client.create(DEPLOYMENTS, deployment("web", replicas=3, strategy="Recreate"), namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="first rollout")
        sampler = Sampler(client, namespace)
        async with sampler.during():
            await set_image(client, namespace, "web", "nginx:1.26")
            await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="recreated")
        assert {image_of(p) for p in await live_pods(client, namespace)} == {"nginx:1.26"}
        assert max(total for total, _ in sampler.samples) <= 3


async def test_restart_annotation_rolls_pods_and_scaling_follows(client: ApiClient, namespace: str,
                                                                 running: Running) -> None:
    async with running(*RS_AND_DEPLOY), FakeKubelet(client, namespace, ready_after=0.05):
        await client.create(DEPLOYMENTS, deployment("web", replicas=2, max_surge="50%", max_unavailable="50%"),
                            namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="first rollout")
        before = {p["metadata"]["name"] for p in await live_pods(client, namespace)}
        restart = {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}
        await client.patch(DEPLOYMENTS, "web", restart, namespace=namespace, patch_type="strategic")

        async def all_replaced() -> bool:
            names = {p["metadata"]["name"] for p in await live_pods(client, namespace)}
            return len(names) == 2 and not names & before and await rolled_out(client, namespace, "web")

        await eventually(all_replaced, within=20, what="pods restarted")
        await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 4}}, namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="scaled up")
        assert len(await live_pods(client, namespace)) == 4
        await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 1}}, namespace=namespace)
        await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what="scaled down")
        await eventually(lambda: _count_is(client, namespace, 1), what="one pod left")


async def _count_is(client: ApiClient, namespace: str, n: int) -> bool:
    return len(await live_pods(client, namespace)) == n


async def test_old_replicasets_beyond_history_limit_are_deleted(client: ApiClient, namespace: str,
                                                                running: Running) -> None:
    async with running(*RS_AND_DEPLOY), FakeKubelet(client, namespace, ready_after=0.02):
        manifest = deployment("web", replicas=1)
        manifest["spec"]["revisionHistoryLimit"] = 1
        await client.create(DEPLOYMENTS, manifest, namespace=namespace)
        for tag in ("1.26", "1.27", "1.28"):
            await eventually(lambda: rolled_out(client, namespace, "web"), within=20, what=f"before {tag}")
            await set_image(client, namespace, "web", f"nginx:{tag}")

        async def history_trimmed() -> bool:
            rss = await owned_replicasets(client, namespace)
            return await rolled_out(client, namespace, "web") and sorted(
                rs["metadata"]["annotations"][REVISION] for rs in rss) == ["3", "4"]

        await eventually(history_trimmed, within=20, what="only the newest old ReplicaSet kept")
