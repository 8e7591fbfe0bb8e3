"""Writing a decision back: the pods/binding subresource, which sets spec.nodeName atomically.

The API server refuses a second binding of the same pod (409), so two schedulers racing on one
pod cannot both win; the loser's cache forgets its assumption.
"""

from __future__ import annotations

from machinery.client import ApiClient
from machinery.resources import PODS


def binding(*, namespace: str, name: str, uid: str, node: str) -> dict:
    """The Binding object for a pod (uid set so a re-created pod of the same name is not bound)."""
    md: dict[str, str] = {"name": name, "namespace": namespace}
    if uid:
        md["uid"] = uid
    return {"apiVersion": "v1", "kind": "Binding", "metadata": md,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


async def bind(client: ApiClient, *, namespace: str, name: str, uid: str, node: str) -> None:
    """POST the binding; raises the client's ApiError/TransportError on failure."""
    path = PODS.path(namespace=namespace, name=name, subresource="binding")
    await client.request("POST", path, body=binding(namespace=namespace, name=name, uid=uid, node=node))
