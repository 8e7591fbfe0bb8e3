"""The EndpointSlice controller: which pods back each Service, as discovery.k8s.io/v1 EndpointSlices.

Per Service key (``namespace/name``), from the caches:

1. Services without a selector are left alone (their slices are someone else's); a deleted Service's
   slices go with it through their ownerReference (the garbage collector);
2. every pod of the namespace the selector matches and that has an IPv4 address becomes one
   endpoint: ready / serving / terminating conditions, nodeName, hostname (for a pod whose
   subdomain names the Service), targetRef to the pod;
3. the Service ports are resolved per pod (a named targetPort is looked up in that pod's container
   ports, so pods using different numbers for one name land in different slices, as upstream);
4. endpoints are grouped by their resolved ports and cut into slices of at most 100, which are then
   written against the slices already owned by the Service: equal ones untouched, others replaced,
   missing ones created (``generateName: <service>-``), surplus ones deleted.

Pod and Service judgement (readiness, which pods count, port resolution) is shared with the legacy
Endpoints controller, so it lives here as plain functions.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from controllers.replicaset import PODS, is_ready
from machinery import meta
from machinery.client import ApiClient, NotFound
from machinery.informer import object_key
from machinery.reconcile import (
    CONTROLLER_UID_INDEX,
    Reconciler,
    SharedInformers,
    is_deleting,
    make_controller_ref,
    uid_of,
)
from machinery.resources import ENDPOINTSLICES, SERVICES
from machinery.selectors import LabelSelector, SelectorError

log = logging.getLogger(__name__)

Obj = dict[str, Any]


SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_ENDPOINTS_PER_SLICE = 100
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"

#: pod phases that take a pod out of a Service, by restartPolicy (ShouldPodBeInEndpoints)
_FINISHED_PHASES: dict[str, frozenset[str]] = {
    "Never": frozenset({"Failed", "Succeeded"}),
    "OnFailure": frozenset({"Succeeded"}),
    "Always": frozenset(),
}

#: a port resolved for one pod: (name, number, protocol, appProtocol or None)
ResolvedPort = tuple[str, int, str, str | None]


# --- judging Services and pods (shared with the Endpoints controller) -----------------------------

def service_selector(svc: Mapping[str, Any]) -> LabelSelector | None:
    """The pod selector, or None when the Service has none (its endpoints are managed by hand)."""
    spec = svc.get("spec") or {}
    selector = spec.get("selector")
    if spec.get("type") == "ExternalName" or not selector or not isinstance(selector, dict):
        return None
    return _compiled_selector(tuple(sorted((str(k), str(v)) for k, v in selector.items())))


@functools.lru_cache(maxsize=4096)
def _compiled_selector(pairs: tuple[tuple[str, str], ...]) -> LabelSelector | None:
    """Selectors compiled once: every pod event tests each Service of its namespace."""
    try:
        return LabelSelector.from_dict({"matchLabels": dict(pairs)})
    except SelectorError:
        return None


def services_selecting(services: Iterable[Obj], pod: Mapping[str, Any]) -> list[str]:
    """Keys of the Services (of the pod's namespace) whose selector matches the pod."""
    labels = (pod.get("metadata") or {}).get("labels")
    keys = []
    for svc in services:
        selector = service_selector(svc)
        if selector is not None and selector.matches(labels):
            keys.append(object_key(svc))
    return keys


def pod_ipv4(pod: Mapping[str, Any]) -> str | None:
    """The pod's IPv4 address (the only address family Services have here), if it has one."""
    status = pod.get("status") or {}
    candidates = [entry.get("ip") for entry in status.get("podIPs") or () if isinstance(entry, dict)]
    candidates.append(status.get("podIP"))
    for ip in candidates:
        if isinstance(ip, str) and ip:
            try:
                if ipaddress.ip_address(ip).version == 4:
                    return ip
            except ValueError:
                continue
    return None


def should_be_endpoint(pod: Mapping[str, Any], *, include_terminating: bool) -> bool:
    """Whether a pod appears in a Service's endpoints at all (ready or not)."""
    if pod_ipv4(pod) is None:
        return False
    if is_deleting(pod) and not include_terminating:
        return False
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    phase = (pod.get("status") or {}).get("phase")
    return phase not in _FINISHED_PHASES.get(policy, frozenset())


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """The pod's number for a Service port's targetPort (a named one looked up in the containers)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def resolve_ports(pod: Mapping[str, Any], svc: Mapping[str, Any]) -> tuple[ResolvedPort, ...]:
    """Every Service port this pod serves; a named port the pod lacks is left out (as upstream)."""
    resolved = []
    for port in (svc.get("spec") or {}).get("ports") or ():
        number = find_port(pod, port)
        if number is not None:
            resolved.append((port.get("name") or "", number, port.get("protocol") or "TCP", port.get("appProtocol")))
    return tuple(resolved)


def target_ref(pod: Mapping[str, Any]) -> Obj:
    md = pod["metadata"]
    return {"kind": "Pod", "namespace": md.get("namespace"), "name": md["name"], "uid": md.get("uid")}


def pod_hostname(pod: Mapping[str, Any], svc: Mapping[str, Any]) -> str | None:
    """The pod's hostname when its subdomain is this Service (ShouldSetHostname)."""
    spec = pod.get("spec") or {}
    same_ns = (pod.get("metadata") or {}).get("namespace") == svc["metadata"].get("namespace")
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"] and same_ns:
        return str(spec["hostname"])
    return None


def is_headless(svc: Mapping[str, Any]) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def service_labels(svc: Mapping[str, Any]) -> dict[str, str]:
    """The Service's own labels plus the headless marker, as both controllers copy them."""
    labels = {k: v for k, v in ((svc.get("metadata") or {}).get("labels") or {}).items() if k != HEADLESS_LABEL}
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    return labels


def selected_pods(pods: Iterable[Obj], selector: LabelSelector) -> list[Obj]:
    """The matching pods, in name order so that repeated reconciles compute the same objects."""
    chosen = [p for p in pods if selector.matches((p.get("metadata") or {}).get("labels"))]
    return sorted(chosen, key=lambda p: p["metadata"]["name"])


# --- building slices --------------------------------------------------------------------------------

def slice_endpoint(pod: Mapping[str, Any], svc: Mapping[str, Any]) -> Obj:
    """One discovery.k8s.io/v1 Endpoint for a pod (podToEndpoint)."""
    serving = is_ready(pod)
    terminating = is_deleting(pod)
    ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    endpoint: Obj = {"addresses": [pod_ipv4(pod)],
                     "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                     "targetRef": target_ref(pod)}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    hostname = pod_hostname(pod, svc)
    if hostname:
        endpoint["hostname"] = hostname
    return endpoint


def slice_ports(ports: tuple[ResolvedPort, ...]) -> list[Obj]:
    out = []
    for name, number, protocol, app_protocol in ports:
        port: Obj = {"name": name, "port": number, "protocol": protocol}
        if app_protocol:
            port["appProtocol"] = app_protocol
        out.append(port)
    return out


def desired_slices(svc: Mapping[str, Any], pods: Iterable[Obj], *,
                   max_endpoints: int = MAX_ENDPOINTS_PER_SLICE) -> list[Obj]:
    """The content (endpoints, ports) of every slice the Service should have; one empty placeholder
    when no pod qualifies, so consumers can tell "no endpoints" from "not yet reconciled"."""
    groups: dict[tuple[ResolvedPort, ...], list[Obj]] = {}
    for pod in pods:
        if should_be_endpoint(pod, include_terminating=True):
            groups.setdefault(resolve_ports(pod, svc), []).append(slice_endpoint(pod, svc))
    slices = []
    for ports, endpoints in sorted(groups.items(), key=lambda item: repr(item[0])):
        for start in range(0, len(endpoints), max_endpoints):
            slices.append({"endpoints": endpoints[start:start + max_endpoints], "ports": slice_ports(ports)})
    return slices or [{"endpoints": [], "ports": []}]


def slice_object(svc: Mapping[str, Any], content: Mapping[str, Any]) -> Obj:
    """A full EndpointSlice of the Service with ``content``'s endpoints and ports."""
    md = svc["metadata"]
    labels = {**service_labels(svc), SERVICE_NAME_LABEL: md["name"], MANAGED_BY_LABEL: MANAGED_BY}
    owner = make_controller_ref({"apiVersion": "v1", "kind": "Service", **svc})
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{md['name']}-", "namespace": md.get("namespace"), "labels": labels,
                         "ownerReferences": [owner]},
            "addressType": "IPv4", "endpoints": list(content["endpoints"]), "ports": list(content["ports"])}


def _same(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    emd, wmd = existing.get("metadata") or {}, wanted["metadata"]
    return (existing.get("endpoints") or []) == wanted["endpoints"] and \
        (existing.get("ports") or []) == wanted["ports"] and existing.get("addressType") == "IPv4" and \
        (emd.get("labels") or {}) == wmd["labels"] and (emd.get("ownerReferences") or []) == wmd["ownerReferences"]


def _ports_key(obj: Mapping[str, Any]) -> str:
    return repr(obj.get("ports") or [])


def plan(existing: list[Obj], wanted: list[Obj]) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """(to create, to replace, to delete): each wanted slice reuses an existing one with the same
    ports when there is one, so endpoints move between objects as little as possible."""
    free: dict[str, list[Obj]] = {}
    for obj in sorted(existing, key=lambda o: o["metadata"]["name"]):
        free.setdefault(_ports_key(obj), []).append(obj)
    create, replace = [], []
    for want in wanted:
        pool = free.get(_ports_key(want)) or []
        if not pool:
            create.append(want)
            continue
        old = pool.pop(0)
        if not _same(old, want):
            md = {**want["metadata"], "name": old["metadata"]["name"],
                  "resourceVersion": old["metadata"]["resourceVersion"]}
            md.pop("generateName", None)
            replace.append({**want, "metadata": md})
    delete = [obj for pool in free.values() for obj in pool]
    return create, replace, delete


# --- the controller --------------------------------------------------------------------------------

class EndpointSliceController(Reconciler):
    name = "endpointslice"
    primary_resource = SERVICES
    workers = 4
    #: how soon to look again while earlier creations are not yet in the cache
    pending_recheck: float = 0.2

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.pods = self.watch(PODS, keys=self._services_of_pod)
        self.slices = self.watch(ENDPOINTSLICES, owner_kind="Service")

    def _services_of_pod(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        return services_selecting(self.primary.by_index("namespace", ns), pod)

    async def reconcile(self, key: str) -> float | None:
        svc = self.primary.get(key)
        if svc is None:
            self.expectations.forget(key)
            return None  # the garbage collector removes the slices with their owner
        selector = service_selector(svc)
        if selector is None or is_deleting(svc):
            return None
        if not self.expectations.satisfied(key):
            return self.pending_recheck
        ns = svc["metadata"]["namespace"]
        pods = selected_pods(self.pods.by_index("namespace", ns), selector)
        wanted = [slice_object(svc, content) for content in desired_slices(svc, pods)]
        existing = [s for s in self.slices.by_index(CONTROLLER_UID_INDEX, uid_of(svc))
                    if ((s.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY]
        create, replace, delete = plan(existing, wanted)
        for obj in (*create, *replace):
            obj["metadata"]["annotations"] = {TRIGGER_TIME_ANNOTATION: meta.now()}
        for obj in replace:
            await self.client.replace(ENDPOINTSLICES, obj)
        for obj in delete:
            try:
                await self.client.delete(ENDPOINTSLICES, obj["metadata"]["name"], namespace=ns,
                                         preconditions={"uid": uid_of(obj)})
            except NotFound:
                pass
        if create:
            self.expectations.expect_creations(key, len(create))
            for index, obj in enumerate(create):
                try:
                    await self.client.create(ENDPOINTSLICES, obj, namespace=ns)
                except Exception:
                    for _ in range(len(create) - index):
                        self.expectations.creation_observed(key)  # no event comes for these
                    raise
        if create or replace or delete:
            self.metrics.inc("pinnace_endpointslice_changes_total", len(create) + len(replace) + len(delete),
                             controller=self.name)
        return None
