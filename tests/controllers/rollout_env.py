"""Helpers of the ReplicaSet/Deployment tests: manifests, pod counts, a rollout-state check that reads
the status the way ``kubectl rollout status`` does, and a sampler of pod counts during a rollout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from machinery.client import ApiClient, Resource

PODS = Resource("", "v1", "pods", True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", True)
REPLICASETS = Resource("apps", "v1", "replicasets", True)
Obj = dict[str, Any]


def deployment(name: str, *, replicas: int = 5, image: str = "nginx:1.25", max_surge: Any = 1,
               max_unavailable: Any = 0, deadline: int | None = None, strategy: str = "RollingUpdate",
               min_ready: int = 0) -> Obj:
    labels = {"app": name}
    spec: Obj = {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "web", "image": image}]}}}
    if strategy == "RollingUpdate":
        spec["strategy"] = {"type": strategy,
                            "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}}
    else:
        spec["strategy"] = {"type": strategy}
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


async def live_pods(client: ApiClient, namespace: str) -> list[Obj]:
    """Pods that count (not terminating), read from the server."""
    items = (await client.list(PODS, namespace=namespace)).get("items") or []
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def image_of(pod: Obj) -> str:
    return pod["spec"]["containers"][0]["image"]


async def rolled_out(client: ApiClient, namespace: str, name: str) -> bool:
    """What ``kubectl rollout status`` calls success."""
    d = await client.get(DEPLOYMENTS, name, namespace=namespace)
    st, want = d.get("status") or {}, d["spec"]["replicas"]
    return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want
            and st.get("availableReplicas", 0) == want)


async def progressing(client: ApiClient, namespace: str, name: str) -> Obj:
    d = await client.get(DEPLOYMENTS, name, namespace=namespace)
    return next((c for c in d.get("status", {}).get("conditions") or () if c["type"] == "Progressing"), {})


@dataclass
class Sampler:
    """Counts (live pods, ready live pods, images) every few milliseconds while running."""

    client: ApiClient
    namespace: str
    samples: list[tuple[int, int]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            pods = await live_pods(self.client, self.namespace)
            self.samples.append((len(pods), sum(is_ready(p) for p in pods)))
            await asyncio.sleep(0.02)

    @contextlib.asynccontextmanager
    async def during(self) -> AsyncIterator[Sampler]:
        task = asyncio.create_task(self.run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
