"""What a fresh cluster has before anyone asks: the system namespaces and the ``kubernetes`` Service."""

from __future__ import annotations

from apiserver import allocators, registry
from apiserver.context import RequestContext, User
from apiserver.store import ObjectStore

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SYSTEM_USER = User("system:apiserver", ("system:masters",))


async def bootstrap(store: ObjectStore, *, port: int) -> None:
    ctx = RequestContext(user=SYSTEM_USER, manager="kube-apiserver", field_validation="Ignore")
    namespaces = registry.lookup("", "v1", "namespaces")
    services = registry.lookup("", "v1", "services")
    assert namespaces is not None and services is not None
    for name in SYSTEM_NAMESPACES:
        await store.ensure(namespaces, {"metadata": {"name": name}}, ctx)
    await store.ensure(services, {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": allocators.KUBERNETES_SERVICE_IP, "type": "ClusterIP",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    }, ctx)
