"""Telling users why a pod is still Pending: a FailedScheduling Event and the PodScheduled=False
condition with reason Unschedulable, both as kube-scheduler writes them (``kubectl describe pod``
shows the first, ``kubectl get pod -o yaml`` and controllers read the second).

Repeats of the same message for the same pod bump the existing Event's count instead of creating
new ones, as client-go's event correlator does, so a pod retried for hours makes one Event.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from machinery import meta
from machinery.client import ApiClient, ApiError, NotFound, Resource, TransportError
from machinery.resources import PODS

log = logging.getLogger(__name__)

EVENTS = Resource("", "v1", "events", True)
COMPONENT = "default-scheduler"
REASON = "FailedScheduling"
#: how many (pod, message) series to remember for aggregation
_REMEMBERED = 4096


def failed_scheduling_event(pod: Mapping[str, Any], message: str, *, component: str = COMPONENT,
                            instance: str = "") -> dict[str, Any]:
    md = pod.get("metadata") or {}
    stamp = meta.now()
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{md.get('name')}.{time.time_ns():x}", "namespace": md.get("namespace")},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": md.get("namespace"),
                           "name": md.get("name"), "uid": md.get("uid"),
                           "resourceVersion": md.get("resourceVersion")},
        "reason": REASON, "message": message, "type": "Warning", "action": "Scheduling",
        "source": {"component": component}, "reportingComponent": component,
        "reportingInstance": instance or component,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def unschedulable_condition(message: str) -> dict[str, Any]:
    return {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": None, "lastTransitionTime": meta.now()}


class FailureReporter:
    """Records scheduling failures on the API server; errors are logged, never raised."""

    def __init__(self, client: ApiClient, *, component: str = COMPONENT) -> None:
        self.client = client
        self.component = component
        self._series: OrderedDict[tuple[str, str], tuple[str, int]] = OrderedDict()

    async def report(self, pod: Mapping[str, Any], message: str) -> None:
        await self._event(pod, message)
        await self._condition(pod, message)

    async def _event(self, pod: Mapping[str, Any], message: str) -> None:
        key = (meta.key_of(dict(pod)), message)
        namespace = (pod.get("metadata") or {}).get("namespace")
        known = self._series.get(key)
        try:
            if known is not None:
                name, count = known
                try:
                    await self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": meta.now()},
                                            namespace=namespace)
                    self._remember(key, name, count + 1)
                    return
                except NotFound:
                    pass  # expired or deleted: start a new series
            event = failed_scheduling_event(pod, message, component=self.component)
            await self.client.create(EVENTS, event, namespace=namespace)
            self._remember(key, event["metadata"]["name"], 1)
        except (ApiError, TransportError) as e:  # best effort: the pod stays Pending either way
            log.warning("could not record FailedScheduling for %s: %s", key[0], e)

    async def _condition(self, pod: Mapping[str, Any], message: str) -> None:
        md = pod.get("metadata") or {}
        current = [c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") == "PodScheduled"]
        if current and current[0].get("status") == "False" and current[0].get("message") == message:
            return
        patch = {"status": {"conditions": [unschedulable_condition(message)]}}
        try:
            await self.client.patch(PODS, md.get("name", ""), patch, namespace=md.get("namespace"),
                                    patch_type="strategic", subresource="status")
        except (ApiError, TransportError) as e:  # best effort: the pod may be gone or bound meanwhile
            log.debug("could not set PodScheduled=False on %s: %s", meta.key_of(dict(pod)), e)

    def _remember(self, key: tuple[str, str], name: str, count: int) -> None:
        self._series[key] = (name, count)
        self._series.move_to_end(key)
        while len(self._series) > _REMEMBERED:
            self._series.popitem(last=False)
