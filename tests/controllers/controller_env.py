"""Helpers shared by the controller integration tests: resources, object builders, polling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from controllers.manager import ControllerManager
from machinery.client import ApiClient, NotFound, Resource

NS = Resource("", "v1", "namespaces", False)
PODS = Resource("", "v1", "pods", True)
CONFIGMAPS = Resource("", "v1", "configmaps", True)
SERVICES = Resource("", "v1", "services", True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", True)
REPLICASETS = Resource("apps", "v1", "replicasets", True)

#: the ``running`` fixture: ``async with running("garbagecollector"):`` runs those controllers
Running = Callable[..., AbstractAsyncContextManager[ControllerManager]]

CONTAINERS = [{"name": "main", "image": "busybox:1.36"}]


def owner_ref(owner: dict[str, Any], *, controller: bool = False) -> dict[str, Any]:
    md = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion") or "v1", "kind": owner["kind"], "name": md["name"],
            "uid": md["uid"], "controller": controller, "blockOwnerDeletion": True}


def configmap(name: str, *, owners: Sequence[dict[str, Any]] = (), finalizers: Sequence[str] = ()) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if owners:
        md["ownerReferences"] = [owner_ref(o) for o in owners]
    if finalizers:
        md["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"k": name}}


def replicaset(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": CONTAINERS}}}}


def deployment(name: str) -> dict[str, Any]:
    obj = replicaset(name)
    obj["kind"] = "Deployment"
    return obj


def pod(name: str, *, owner: dict[str, Any] | None = None, finalizers: Sequence[str] = ()) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": {"app": "x"}}
    if owner is not None:
        md["ownerReferences"] = [owner_ref(owner, controller=True)]
    if finalizers:
        md["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": {"containers": CONTAINERS}}


async def create(client: ApiClient, res: Resource, obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    created = await client.create(res, obj, namespace=namespace)
    created.setdefault("kind", obj["kind"])
    created.setdefault("apiVersion", obj["apiVersion"])
    return created


async def exists(client: ApiClient, res: Resource, name: str, namespace: str | None = None) -> bool:
    try:
        await client.get(res, name, namespace=namespace)
    except NotFound:
        return False
    return True


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 8.0, what: str = "") -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.05)


async def gone(client: ApiClient, res: Resource, name: str, namespace: str | None = None) -> bool:
    return not await exists(client, res, name, namespace)
