"""The namespace controller against a real API server: a deleted namespace is emptied, reports what
holds it in its status conditions, and disappears once its content is gone."""

from __future__ import annotations

import pytest
from controller_env import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NS,
    SERVICES,
    Running,
    configmap,
    create,
    deployment,
    eventually,
    gone,
)

from machinery.client import ApiClient, Forbidden


def _service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


async def _count(client: ApiClient, namespace: str) -> int:
    total = 0
    for res in (CONFIGMAPS, DEPLOYMENTS, SERVICES):
        total += len((await client.list(res, namespace=namespace)).get("items") or [])
    return total


async def test_deleting_namespace_removes_its_content_then_itself(client: ApiClient, namespace: str,
                                                                  running: Running) -> None:
    for i in range(2):
        await create(client, CONFIGMAPS, configmap(f"cm-{i}"), namespace)
    await create(client, DEPLOYMENTS, deployment("web"), namespace)
    await create(client, SERVICES, _service("web"), namespace)
    assert await _count(client, namespace) == 4
    async with running():
        await client.delete(NS, namespace)
        with pytest.raises(Forbidden):  # a terminating namespace takes no new content
            await client.create(CONFIGMAPS, configmap("late"), namespace=namespace)
        await eventually(lambda: gone(client, NS, namespace), what=f"namespace {namespace} removed")
    assert await _count(client, namespace) == 0


async def test_namespace_waits_for_finalized_content_and_says_why(client: ApiClient, namespace: str,
                                                                  running: Running) -> None:
    await create(client, CONFIGMAPS, configmap("held", finalizers=["example.com/hold"]), namespace)
    await create(client, CONFIGMAPS, configmap("free"), namespace)
    async with running("namespace"):
        await client.delete(NS, namespace)

        async def reported() -> bool:
            ns = await client.get(NS, namespace)
            conds = {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}
            fin = conds.get("NamespaceFinalizersRemaining", {})
            return fin.get("status") == "True" and "example.com/hold in 1 resource instances" in fin["message"]

        await eventually(reported, what="finalizer reported in the namespace conditions")
        ns = await client.get(NS, namespace)
        assert ns["status"]["phase"] == "Terminating"
        assert "kubernetes" in ns["spec"]["finalizers"]
        assert await gone(client, CONFIGMAPS, "free", namespace)
        remaining = {c["type"]: c for c in ns["status"]["conditions"]}["NamespaceContentRemaining"]
        assert remaining["message"] == "Some resources are remaining: configmaps. has 1 resource instances"

        await client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, namespace=namespace)
        await eventually(lambda: gone(client, NS, namespace), what=f"namespace {namespace} removed")


async def test_namespace_controller_ignores_live_namespaces(client: ApiClient, namespace: str,
                                                            running: Running) -> None:
    await create(client, CONFIGMAPS, configmap("stay"), namespace)
    async with running("namespace"):
        ns = await client.get(NS, namespace)
        assert not ns["metadata"].get("deletionTimestamp")
    assert not await gone(client, CONFIGMAPS, "stay", namespace)
