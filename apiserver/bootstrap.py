"""What a fresh cluster has before anyone asks: the system namespaces and the ``kubernetes`` Service.

The ``kubernetes`` Service in ``default`` (cluster IP .1 of the service CIDR, port 443 named https)
has no selector; like kube-apiserver's endpoint reconciler, the API server itself writes its
Endpoints and EndpointSlice (both named ``kubernetes``) pointing at its own address and port, and
rewrites them on every start in case either changed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any

from apiserver import allocators, errors, registry
from apiserver.context import RequestContext, User
from apiserver.store import ObjectStore

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SYSTEM_USER = User("system:apiserver", ("system:masters",))
KUBERNETES = "kubernetes"


def _context() -> RequestContext:
    return RequestContext(user=SYSTEM_USER, manager="kube-apiserver", field_validation="Ignore")


async def bootstrap(store: ObjectStore, *, port: int, host: str = "127.0.0.1") -> None:
    """Namespaces and the ``kubernetes`` Service; its endpoints too once ``port`` is known (not 0)."""
    ctx = _context()
    namespaces = registry.lookup("", "v1", "namespaces")
    services = registry.lookup("", "v1", "services")
    assert namespaces is not None and services is not None
    for name in SYSTEM_NAMESPACES:
        await store.ensure(namespaces, {"metadata": {"name": name}}, ctx)
    await store.ensure(services, {
        "metadata": {"name": KUBERNETES, "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": allocators.KUBERNETES_SERVICE_IP, "type": "ClusterIP",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port or 443}]},
    }, ctx)
    if port:
        await publish_own_endpoints(store, host=host, port=port)


async def publish_own_endpoints(store: ObjectStore, *, host: str, port: int) -> None:
    """Point the ``kubernetes`` Service at this API server (call once its port is known); problems
    are logged, never raised: the API server must start even if its own endpoints cannot be written."""
    address = await advertise_address(host)
    if address is None:
        log.warning("no non-loopback address to advertise; the kubernetes Service has no endpoints")
        return
    try:
        await publish_endpoints(store, address=address, port=port)
    except errors.ApiError as exc:
        log.warning("writing the kubernetes Service's endpoints failed: %s", exc)


async def advertise_address(host: str) -> str | None:
    """The address others reach this API server at: ``host``, or (as kube-apiserver's default
    --advertise-address) for a wildcard or loopback bind the address of the interface holding the
    default route; None when there is none (Endpoints may not hold loopback addresses)."""
    return await asyncio.to_thread(_advertise_address, host)


def _advertise_address(host: str) -> str | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            ip = ipaddress.ip_address(socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0])
        except (OSError, IndexError):
            return None
    if not (ip.is_unspecified or ip.is_loopback):
        return str(ip)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it only picks a route
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def endpoints_objects(*, address: str, port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``kubernetes`` Endpoints and EndpointSlice as kube-apiserver writes them."""
    md = {"name": KUBERNETES, "namespace": "default"}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {**md, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                 "subsets": [{"addresses": [{"ip": address}],
                              "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    endpoint_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {**md, "labels": {"kubernetes.io/service-name": KUBERNETES}},
                      "addressType": "IPv6" if ":" in address else "IPv4",
                      "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
                      "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    return endpoints, endpoint_slice


async def publish_endpoints(store: ObjectStore, *, address: str, port: int) -> None:
    """Create or correct the ``kubernetes`` Endpoints and EndpointSlice (the content fields only),
    and the Service's https targetPort (the port may differ from the last start's)."""
    ctx = _context()
    services = registry.lookup("", "v1", "services")
    assert services is not None

    def retarget(svc: dict[str, Any]) -> dict[str, Any]:
        for svc_port in (svc.get("spec") or {}).get("ports") or ():
            if svc_port.get("name") == "https":
                svc_port["targetPort"] = port
        return svc

    await store.update(services, "default", KUBERNETES, retarget, ctx)
    wanted = dict(zip(("endpoints", "endpointslices"), endpoints_objects(address=address, port=port), strict=True))
    for plural, group in (("endpoints", ""), ("endpointslices", "discovery.k8s.io")):
        rt = registry.lookup(group, "v1", plural)
        assert rt is not None
        obj = wanted[plural]

        def mutate(current: dict[str, Any], obj: dict[str, Any] = obj) -> dict[str, Any]:
            content = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
            labels = {**(current["metadata"].get("labels") or {}), **obj["metadata"]["labels"]}
            return {**current, **content, "metadata": {**current["metadata"], "labels": labels}}

        try:
            await store.update(rt, "default", KUBERNETES, mutate, ctx, create=lambda obj=obj: dict(obj))
        except errors.ApiError as exc:
            if exc.code != 409:
                raise
