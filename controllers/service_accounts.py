"""Per-namespace defaults every pod relies on: the ``default`` ServiceAccount and ``kube-root-ca.crt``.

Kubernetes runs these as two controllers (serviceaccount and root-ca-cert-publisher); both keep
one object per active namespace, so here they are one reconciler keyed by namespace: a pod's
``kube-api-access`` volume projects a token for ``default`` and ``ca.crt`` from the ConfigMap, and
users expect ``kubectl get sa`` to show ``default`` in every namespace. Objects someone deleted are
made again; a terminating namespace is left alone (the namespace controller is emptying it).
"""

from __future__ import annotations

from typing import Any

from machinery.client import AlreadyExists, ApiClient, Conflict, Forbidden, NotFound, Resource
from machinery.reconcile import Reconciler, SharedInformers
from machinery.resources import CONFIGMAPS, NAMESPACES, SERVICE_ACCOUNTS

DEFAULT_SA = "default"
ROOT_CA = "kube-root-ca.crt"
ROOT_CA_ANNOTATION = "kubernetes.io/description"
ROOT_CA_DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
                       "internal endpoints such as the internal service IP or kubernetes.default.svc. "
                       "No other usage is guaranteed across distributions of Kubernetes clusters.")


def _by_namespace(obj: dict[str, Any]) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace", "")]


class ServiceAccountsController(Reconciler):
    name = "serviceaccount"
    primary_resource = NAMESPACES

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.accounts = self.watch(SERVICE_ACCOUNTS, keys=_by_namespace)
        self.configmaps = self.watch(CONFIGMAPS, keys=_by_namespace)
        ca = client.config.ca_data
        self.ca_pem = ca.decode() if ca else ""

    async def reconcile(self, key: str) -> float | None:
        ns = self.primary.get(key)
        if ns is None or (ns.get("status") or {}).get("phase") == "Terminating" \
                or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if self.accounts.get(f"{key}/{DEFAULT_SA}") is None:
            await self._create(SERVICE_ACCOUNTS, key, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                        "metadata": {"name": DEFAULT_SA, "namespace": key}})
        if self.ca_pem:
            await self._ensure_root_ca(key)
        return None

    async def _ensure_root_ca(self, namespace: str) -> None:
        current = self.configmaps.get(f"{namespace}/{ROOT_CA}")
        if current is None:
            await self._create(CONFIGMAPS, namespace, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA, "namespace": namespace,
                             "annotations": {ROOT_CA_ANNOTATION: ROOT_CA_DESCRIPTION}},
                "data": {"ca.crt": self.ca_pem}})
        elif (current.get("data") or {}).get("ca.crt") != self.ca_pem:
            try:
                await self.client.patch(CONFIGMAPS, ROOT_CA, {"data": {"ca.crt": self.ca_pem}},
                                        namespace=namespace)
            except (NotFound, Conflict):
                pass

    async def _create(self, res: Resource, namespace: str, body: dict[str, Any]) -> None:
        try:
            await self.client.create(res, body, namespace=namespace)
        except (AlreadyExists, Forbidden, NotFound):
            pass  # raced with another writer, or the namespace is going away
