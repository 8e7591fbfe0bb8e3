"""The Endpoints controller: the legacy v1 Endpoints object of each selector Service.

kubectl (``get endpoints``, ``describe svc``) and the Python client still read Endpoints, so every
Service with a selector gets one, named as the Service: its pods with an IPv4 address as
``addresses`` (ready, or any pod with ``publishNotReadyAddresses``) or ``notReadyAddresses``, each
subset holding the addresses that share one set of resolved ports (RepackSubsets). Terminating pods
are left out unless ``publishNotReadyAddresses``. The object carries the
``endpoints.kubernetes.io/last-change-trigger-time`` annotation (when its content last changed) and
the ``endpointslice.kubernetes.io/skip-mirror`` label (its slices come from the EndpointSlice
controller, not from mirroring); past 1000 addresses it is cut (ready ones kept first) and marked
``endpoints.kubernetes.io/over-capacity: truncated``. A deleted Service's Endpoints are deleted here (they have no
ownerReference upstream either). Pod judgement is shared with controllers.endpointslice.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from controllers.endpointslice import (
    SERVICES,
    TRIGGER_TIME_ANNOTATION,
    ResolvedPort,
    is_headless,
    pod_hostname,
    pod_ipv4,
    resolve_ports,
    selected_pods,
    service_labels,
    service_selector,
    services_selecting,
    should_be_endpoint,
    target_ref,
)
from controllers.replicaset import PODS, is_ready
from machinery import meta
from machinery.client import ApiClient, NotFound, Resource
from machinery.informer import object_key
from machinery.reconcile import Reconciler, SharedInformers, is_deleting

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ENDPOINTS = Resource("", "v1", "endpoints", True)
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
#: addresses one Endpoints object holds at most (upstream's maxCapacity); the rest are cut
MAX_ADDRESSES = 1000
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"


def _address(pod: Mapping[str, Any], svc: Mapping[str, Any]) -> Obj:
    address: Obj = {"ip": pod_ipv4(pod), "targetRef": target_ref(pod)}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    hostname = pod_hostname(pod, svc)
    if hostname:
        address["hostname"] = hostname
    return address


def _ports(ports: tuple[ResolvedPort, ...]) -> list[Obj]:
    out = []
    for name, number, protocol, app_protocol in ports:
        port: Obj = {"port": number, "protocol": protocol}
        if name:
            port["name"] = name
        if app_protocol:
            port["appProtocol"] = app_protocol
        out.append(port)
    return sorted(out, key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))


def _ip_order(address: Mapping[str, Any]) -> tuple[int, str]:
    try:
        return int(ipaddress.ip_address(address["ip"])), ""
    except ValueError:
        return 0, str(address["ip"])


def desired_subsets(svc: Mapping[str, Any], pods: Iterable[Obj]) -> list[Obj]:
    """The subsets of the Service's Endpoints, addresses grouped by their resolved ports."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    has_ports = bool(spec.get("ports"))
    groups: dict[tuple[ResolvedPort, ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_be_endpoint(pod, include_terminating=publish):
            continue
        ports = resolve_ports(pod, svc)
        if has_ports and not ports:
            continue  # none of the Service's ports exists on this pod
        if not has_ports and not is_headless(svc):
            continue
        ready, not_ready = groups.setdefault(ports, ([], []))
        (ready if publish or is_ready(pod) else not_ready).append(_address(pod, svc))
    subsets = []
    for ports, (ready, not_ready) in sorted(groups.items(), key=lambda item: repr(item[0])):
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_ip_order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_ip_order)
        if ports:
            subset["ports"] = _ports(ports)
        subsets.append(subset)
    return subsets


def truncate(subsets: list[Obj], limit: int = MAX_ADDRESSES) -> bool:
    """Cut the subsets to ``limit`` addresses, ready ones kept first; True when anything was cut."""
    total = sum(len(s.get(k) or ()) for s in subsets for k in ("addresses", "notReadyAddresses"))
    if total <= limit:
        return False
    left = limit
    for key in ("addresses", "notReadyAddresses"):
        for subset in subsets:
            kept = (subset.get(key) or [])[:left]
            left -= len(kept)
            if kept:
                subset[key] = kept
            else:
                subset.pop(key, None)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


class EndpointsController(Reconciler):
    name = "endpoints"
    primary_resource = SERVICES
    workers = 4

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.pods = self.watch(PODS, keys=self._services_of_pod)
        self.endpoints = self.watch(ENDPOINTS, keys=lambda obj: [object_key(obj)])

    def _services_of_pod(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        return services_selecting(self.primary.by_index("namespace", ns), pod)

    async def reconcile(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        svc = self.primary.get(key)
        current = self.endpoints.get(key)
        if svc is None:
            if current is not None:
                try:
                    await self.client.delete(ENDPOINTS, name, namespace=ns,
                                             preconditions={"uid": current["metadata"]["uid"]})
                except NotFound:
                    pass
            return None
        selector = service_selector(svc)
        if selector is None or is_deleting(svc):
            return None
        subsets = desired_subsets(svc, selected_pods(self.pods.by_index("namespace", ns), selector))
        truncated = truncate(subsets)
        labels = {**service_labels(svc), SKIP_MIRROR_LABEL: "true"}
        cmd = (current or {}).get("metadata") or {}
        annotations = dict(cmd.get("annotations") or {})
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        if current is not None and (current.get("subsets") or []) == subsets and \
                (cmd.get("labels") or {}) == labels and (cmd.get("annotations") or {}) == annotations:
            return None
        annotations[TRIGGER_TIME_ANNOTATION] = meta.now()
        body = {"apiVersion": "v1", "kind": "Endpoints", "subsets": subsets,
                "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations}}
        if current is not None:
            body["metadata"]["resourceVersion"] = cmd["resourceVersion"]
            await self.client.replace(ENDPOINTS, body)
        else:
            await self.client.create(ENDPOINTS, body, namespace=ns)
        self.metrics.inc("pinnace_endpoints_writes_total", controller=self.name)
        return None
