"""Pod GC: deletes pods bound to Nodes that no longer exist.

Such pods have no kubelet left to stop them or to confirm their graceful deletion, so they would
stay Terminating or Running forever and keep their ReplicaSet from replacing them. A pod is
collected when its ``spec.nodeName`` is in neither the Node cache nor (asked again, as the cache
may lag a just-registered Node) the API server, and has not been for ``quarantine`` seconds (40, as
in Kubernetes, so a pod bound just before its Node registers is spared); it is then deleted at once
(grace period 0), guarded by its uid. Node deletions enqueue every pod bound to that node.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from controllers.node_ipam import NODES
from controllers.replicaset import PODS
from machinery.client import ApiClient, NotFound
from machinery.reconcile import Reconciler, SharedInformers, uid_of

log = logging.getLogger(__name__)

NODE_NAME_INDEX = "spec.nodeName"


def node_name_index(pod: dict[str, Any]) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


class PodGCController(Reconciler):
    name = "podgc"
    primary_resource = PODS
    workers = 2
    #: seconds a node must stay missing before its pods are collected
    quarantine: ClassVar[float] = 40.0

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.shared.informer(PODS, indexers={NODE_NAME_INDEX: node_name_index})
        self.nodes = self.watch(NODES, keys=self._pods_on)
        self.missing_since: dict[str, float] = {}  # node name -> when first found missing

    def _pods_on(self, node: dict[str, Any]) -> list[str]:
        name = (node.get("metadata") or {}).get("name", "")
        pods = self.primary.by_index(NODE_NAME_INDEX, name)
        return [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods]

    async def reconcile(self, key: str) -> float | None:
        pod = self.primary.get(key)
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        if pod is None or not node:
            return None
        if self.nodes.get(node) is not None:
            self.missing_since.pop(node, None)
            return None
        waited = time.monotonic() - self.missing_since.setdefault(node, time.monotonic())
        if waited < self.quarantine:
            return self.quarantine - waited
        try:
            await self.client.get(NODES, node)
            self.missing_since.pop(node, None)
            return None
        except NotFound:
            pass
        md = pod["metadata"]
        try:
            await self.client.delete(PODS, md["name"], namespace=md["namespace"], grace_period_seconds=0,
                                     preconditions={"uid": uid_of(pod)})
        except NotFound:
            return None
        self.metrics.inc("pinnace_podgc_deleted_total", controller=self.name)
        log.info("podgc: deleted pod %s bound to vanished node %s", key, node)
        return None
