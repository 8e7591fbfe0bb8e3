"""Events the kubelet posts about pods and its node (Pulling, Started, BackOff, Killing ...).

``kubectl describe pod`` shows these; the reasons and messages follow the upstream kubelet's. Posting
is fire-and-forget on a background task: a failed event write must never hold up a pod worker.
Repeats of the same (object, reason, message) bump ``count`` on the event already posted, as the
upstream event recorder's aggregation does.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from machinery.client import ApiClient, ApiError, Resource, TransportError
from machinery.meta import now

log = logging.getLogger(__name__)

EVENTS = Resource("", "v1", "events", True)
COMPONENT = "kubelet"


def involved(obj: dict[str, Any], field_path: str = "") -> dict[str, Any]:
    md = obj.get("metadata", {})
    ref = {"kind": obj.get("kind", "Pod"), "apiVersion": obj.get("apiVersion", "v1"),
           "name": md.get("name", ""), "uid": md.get("uid", ""), "resourceVersion": md.get("resourceVersion", "")}
    if md.get("namespace"):
        ref["namespace"] = md["namespace"]
    if field_path:
        ref["fieldPath"] = field_path
    return ref


class EventRecorder:
    """Posts Events with ``source.component`` kubelet and ``source.host`` the node."""

    def __init__(self, client: ApiClient, *, node_name: str) -> None:
        self.client = client
        self.node_name = node_name
        self._posted: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def event(self, obj: dict[str, Any], *, reason: str, message: str, warning: bool = False,
              field_path: str = "") -> None:
        task = asyncio.get_running_loop().create_task(
            self._post(obj, reason=reason, message=message, warning=warning, field_path=field_path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, obj: dict[str, Any], *, reason: str, message: str, warning: bool,
                    field_path: str) -> None:
        ref = involved(obj, field_path)
        namespace = ref.get("namespace", "default")
        key = (ref["uid"], field_path, reason, message)
        stamp = now()
        try:
            previous = self._posted.get(key)
            if previous is not None:
                patch = {"count": previous.get("count", 1) + 1, "lastTimestamp": stamp}
                self._posted[key] = await self.client.patch(EVENTS, previous["metadata"]["name"], patch,
                                                            namespace=namespace)
                return
            body = {"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": f"{ref['name']}.{secrets.token_hex(8)}", "namespace": namespace},
                    "involvedObject": ref, "reason": reason, "message": message,
                    "type": "Warning" if warning else "Normal",
                    "source": {"component": COMPONENT, "host": self.node_name},
                    "reportingComponent": COMPONENT, "reportingInstance": self.node_name,
                    "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1}
            self._posted[key] = await self.client.create(EVENTS, body, namespace=namespace)
        except (ApiError, TransportError) as exc:
            self._posted.pop(key, None)
            log.debug("event %s for %s not posted: %s", reason, ref["name"], exc)

    def forget(self, uid: str) -> None:
        """Drop the aggregation memory of a pod that is gone."""
        for key in [k for k in self._posted if k[0] == uid]:
            del self._posted[key]

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
