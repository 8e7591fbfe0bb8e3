"""The garbage collector against a real API server: background, foreground and orphan cascades,
dependents with several owners, owners replaced under the same name, and catching up on start."""

from __future__ import annotations

import asyncio

import pytest
from controller_env import (
    CONFIGMAPS,
    PODS,
    REPLICASETS,
    Running,
    configmap,
    create,
    eventually,
    exists,
    gone,
    pod,
    replicaset,
)

from controllers.manager import ControllerManager, run_controllers
from machinery.client import ApiClient


async def _rs_with_pods(client: ApiClient, namespace: str, *, hold_first: bool = False) -> dict:
    rs = await create(client, REPLICASETS, replicaset("rs"), namespace)
    for i in range(2):
        fins = ["example.com/hold"] if hold_first and i == 0 else []
        await create(client, PODS, pod(f"rs-{i}", owner=rs, finalizers=fins), namespace)
    return rs


async def _pods_gone(client: ApiClient, namespace: str) -> bool:
    return not (await client.list(PODS, namespace=namespace)).get("items")


async def test_background_deletion_removes_dependents(client: ApiClient, namespace: str,
                                                      running: Running) -> None:
    async with running("garbagecollector"):
        await _rs_with_pods(client, namespace)
        await client.delete(REPLICASETS, "rs", namespace=namespace)  # Background: kubectl's default
        await eventually(lambda: _pods_gone(client, namespace), what="pods of the deleted ReplicaSet removed")


async def test_foreground_owner_stays_until_dependents_are_gone(client: ApiClient, namespace: str,
                                                                running: Running) -> None:
    async with running("garbagecollector"):
        await _rs_with_pods(client, namespace, hold_first=True)
        await client.delete(REPLICASETS, "rs", namespace=namespace, propagation_policy="Foreground")
        await eventually(lambda: gone(client, PODS, "rs-1", namespace), what="free dependent deleted")

        async def held_pod_terminating() -> bool:
            return bool((await client.get(PODS, "rs-0", namespace=namespace))["metadata"].get("deletionTimestamp"))

        await eventually(held_pod_terminating, what="held dependent marked for deletion")
        await asyncio.sleep(0.5)  # give the collector time to (wrongly) release the owner
        rs = await client.get(REPLICASETS, "rs", namespace=namespace)
        assert rs["metadata"]["deletionTimestamp"]
        assert rs["metadata"]["finalizers"] == ["foregroundDeletion"]

        await client.patch(PODS, "rs-0", {"metadata": {"finalizers": None}}, namespace=namespace)
        await eventually(lambda: gone(client, REPLICASETS, "rs", namespace), what="owner removed at last")


async def test_orphan_deletion_keeps_dependents_without_the_reference(client: ApiClient, namespace: str,
                                                                      running: Running) -> None:
    async with running("garbagecollector"):
        await _rs_with_pods(client, namespace)
        await client.delete(REPLICASETS, "rs", namespace=namespace, propagation_policy="Orphan")
        await eventually(lambda: gone(client, REPLICASETS, "rs", namespace), what="orphaning owner removed")
        await asyncio.sleep(0.3)
        for i in range(2):
            p = await client.get(PODS, f"rs-{i}", namespace=namespace)
            assert not p["metadata"].get("ownerReferences")
            assert not p["metadata"].get("deletionTimestamp")


async def test_dependent_lives_while_one_owner_remains(client: ApiClient, namespace: str,
                                                       running: Running) -> None:
    async with running("garbagecollector"):
        a = await create(client, CONFIGMAPS, configmap("owner-a"), namespace)
        b = await create(client, CONFIGMAPS, configmap("owner-b"), namespace)
        await create(client, CONFIGMAPS, configmap("shared", owners=[a, b]), namespace)
        await client.delete(CONFIGMAPS, "owner-a", namespace=namespace)

        async def only_b_left() -> bool:
            refs = (await client.get(CONFIGMAPS, "shared", namespace=namespace))["metadata"].get("ownerReferences")
            return [r["name"] for r in refs or []] == ["owner-b"]

        await eventually(only_b_left, what="reference to the deleted owner removed")
        assert await exists(client, CONFIGMAPS, "shared", namespace)
        await client.delete(CONFIGMAPS, "owner-b", namespace=namespace)
        await eventually(lambda: gone(client, CONFIGMAPS, "shared", namespace), what="last owner gone")


async def test_collector_catches_up_after_being_stopped(client: ApiClient, namespace: str) -> None:
    manager = ControllerManager(client, names=["garbagecollector"])
    await manager.start()
    async with asyncio.timeout(10):
        await manager.wait_synced()
    await manager.stop()

    owner = await create(client, CONFIGMAPS, configmap("owner"), namespace)
    await create(client, CONFIGMAPS, configmap("dep", owners=[owner]), namespace)
    # an owner replaced by a new object of the same name is a different owner (matched by uid)
    replaced = await create(client, CONFIGMAPS, configmap("replaced"), namespace)
    await create(client, CONFIGMAPS, configmap("dep-of-replaced", owners=[replaced]), namespace)
    # and a dependent whose owner lives must survive the catch-up
    kept = await create(client, CONFIGMAPS, configmap("kept-owner"), namespace)
    await create(client, CONFIGMAPS, configmap("dep-kept", owners=[kept]), namespace)
    # an owner of a kind the server does not serve cannot be checked: keep the dependent
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "uid": "u-g"}}
    await create(client, CONFIGMAPS, configmap("dep-unknown", owners=[gadget]), namespace)

    await client.delete(CONFIGMAPS, "owner", namespace=namespace)
    await client.delete(CONFIGMAPS, "replaced", namespace=namespace)
    await create(client, CONFIGMAPS, configmap("replaced"), namespace)
    await asyncio.sleep(0.2)
    assert await exists(client, CONFIGMAPS, "dep", namespace)  # nobody collects while it is stopped

    await manager.start()  # the same manager, started again
    try:
        await eventually(lambda: gone(client, CONFIGMAPS, "dep", namespace), what="dependent of a deleted owner")
        await eventually(lambda: gone(client, CONFIGMAPS, "dep-of-replaced", namespace),
                         what="dependent of a replaced owner")
        assert await exists(client, CONFIGMAPS, "dep-kept", namespace)
        assert await exists(client, CONFIGMAPS, "dep-unknown", namespace)
        assert await exists(client, CONFIGMAPS, "replaced", namespace)
    finally:
        await manager.stop()


async def test_run_controllers_until_stopped(client: ApiClient, namespace: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_controllers(client, names=["garbagecollector"], stop=stop))
    try:
        owner = await create(client, CONFIGMAPS, configmap("owner"), namespace)
        await create(client, CONFIGMAPS, configmap("dep", owners=[owner]), namespace)
        await client.delete(CONFIGMAPS, "owner", namespace=namespace)
        await eventually(lambda: gone(client, CONFIGMAPS, "dep", namespace), what="dependent collected")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    with pytest.raises(ValueError, match="unknown controller"):
        await run_controllers(client, names=["replicaset-typo"], stop=stop)
