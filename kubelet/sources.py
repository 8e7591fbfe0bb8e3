"""Where pod workers read the API objects a pod refers to: ConfigMaps, Secrets, service-account tokens.

Env resolution and volume projection depend only on these two small protocols, so unit tests can
hand them a dict; the kubelet hands them ``ApiSource``, which reads through the API server.
"""

from __future__ import annotations

from typing import Any, Protocol

from machinery.client import ApiClient, Resource, is_not_found
from machinery.resources import CONFIGMAPS, SECRETS, SERVICE_ACCOUNTS

RESOURCES: dict[str, Resource] = {
    "configmaps": CONFIGMAPS,
    "secrets": SECRETS,
}


class ObjectSource(Protocol):
    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when the API says 404."""


class TokenSource(Protocol):
    async def token(self, *, namespace: str, service_account: str, audiences: list[str],
                    expiration_seconds: int, pod: dict[str, Any]) -> str:
        """A token bound to ``pod`` (TokenRequest); raises on failure."""


class ApiSource:
    """Both protocols over one ``ApiClient``."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.client.get(RESOURCES[plural], name, namespace=namespace)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    async def token(self, *, namespace: str, service_account: str, audiences: list[str],
                    expiration_seconds: int, pod: dict[str, Any]) -> str:
        md = pod.get("metadata", {})
        request = {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": audiences, "expirationSeconds": expiration_seconds,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md.get("name"),
                                        "uid": md.get("uid")}},
        }
        path = SERVICE_ACCOUNTS.path(namespace=namespace, name=service_account, subresource="token")
        answer = await self.client.request("POST", path, body=request)
        return str(answer.get("status", {}).get("token", ""))
