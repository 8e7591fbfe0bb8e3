"""Services and EndpointSlices reduced to the few facts the proxy programs: one entry per service port.

The rule writer (proxy/rules.py) never looks at API objects; it reads this model, so it stays a pure
function that unit tests can feed directly. Endpoint choice follows kube-proxy: ready endpoints
(``ready`` is serving and not terminating); only when none is ready, the serving terminating ones,
so a rolling update keeps answering. Headless services (``clusterIP: None``) and services without a
ClusterIP yield nothing, as do ports of protocols nftables cannot match here; IPv6 external addresses
are left out (the table is IPv4). Everything that ends up in a rule (names, addresses) is checked
here, so no object text can inject nft syntax.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, the API default for sessionAffinityConfig.clientIP
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ModelError(ValueError):
    """An object the proxy cannot turn into rules (bad name, address or port)."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """One backend address of a service port, with the conditions that decide whether it gets traffic."""

    ip: str
    port: int
    node: str | None = None
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True, order=True)
class ServicePort:
    """What one port of one service needs: where it listens and who answers."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # nft spelling: tcp, udp, sctp
    cluster_ip: str
    port: int
    node_port: int | None = None
    affinity_timeout: int | None = None  # seconds when sessionAffinity is ClientIP
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local
    external_ips: tuple[str, ...] = ()  # spec.externalIPs and status.loadBalancer.ingress[].ip (IPv4)
    endpoints: tuple[Endpoint, ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """kube-proxy's servicePortName, ``ns/name/proto/port``; unique per port."""
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name or self.port}"

    def usable(self, *, node: str | None = None) -> tuple[Endpoint, ...]:
        """The endpoints that get new connections (only those on ``node`` when given)."""
        pool = [e for e in self.endpoints if node is None or e.node == node]
        ready = [e for e in pool if e.ready]
        return tuple(ready or [e for e in pool if e.serving and e.terminating])


def _check_name(text: Any, what: str, pattern: re.Pattern[str] = _DNS_LABEL) -> str:
    if not isinstance(text, str) or len(text) > 253 or not pattern.match(text):
        raise ModelError(f"invalid {what} {text!r}")
    return text


def _check_ipv4(text: Any, what: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ModelError(f"invalid {what} {text!r}") from None
    if address.version != 4:
        raise ModelError(f"{what} {text!r} is not IPv4")
    return str(address)


def _check_port(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ModelError(f"invalid {what} {value!r}")
    return value


def _slice_endpoints(slices: Iterable[Mapping[str, Any]], *, port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    """Endpoints for one service port across the service's slices, one per address (first slice wins)."""
    found: dict[str, Endpoint] = {}
    for sl in slices:
        if sl.get("addressType", "IPv4") != "IPv4":
            continue
        port = next((p for p in sl.get("ports") or [] if (p.get("name") or "") == port_name
                     and p.get("protocol", "TCP") == protocol), None)
        if port is None or port.get("port") is None:
            continue
        number = _check_port(port["port"], "endpoint port")
        for ep in sl.get("endpoints") or []:
            addresses = ep.get("addresses") or []
            if not addresses:
                continue
            ip = _check_ipv4(addresses[0], "endpoint address")
            cond = ep.get("conditions") or {}
            ready = cond.get("ready")
            ready = True if ready is None else bool(ready)
            serving = cond.get("serving")
            serving = ready if serving is None else bool(serving)
            found.setdefault(ip, Endpoint(ip=ip, port=number, node=ep.get("nodeName"), ready=ready,
                                          serving=serving, terminating=bool(cond.get("terminating"))))
    return tuple(sorted(found.values()))


def service_ports(service: Mapping[str, Any], slices: Iterable[Mapping[str, Any]]) -> list[ServicePort]:
    """One service's ports with their endpoints; [] for headless or ClusterIP-less services."""
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    namespace = _check_name(meta.get("namespace"), "namespace")
    name = _check_name(meta.get("name"), "service name")
    cluster_ip = spec.get("clusterIP")
    if not cluster_ip or cluster_ip == "None" or spec.get("type") == "ExternalName":
        return []
    cluster_ip = _check_ipv4(cluster_ip, "clusterIP")
    timeout = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        timeout = config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT
        if not isinstance(timeout, int) or not 1 <= timeout <= 86400:
            raise ModelError(f"invalid sessionAffinity timeoutSeconds {timeout!r}")
    slices = list(slices)
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external_ips = tuple(sorted({_check_ipv4(ip, "external IP") for ip in
                                 [*(spec.get("externalIPs") or []), *(i.get("ip") for i in ingress if i.get("ip"))]
                                 if ":" not in str(ip)}))
    result = []
    for port in spec.get("ports") or []:
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            continue
        port_name = port.get("name") or ""
        if port_name:
            _check_name(port_name, "port name", _PORT_NAME)
        node_port = port.get("nodePort") if spec.get("type") in ("NodePort", "LoadBalancer") else None
        result.append(ServicePort(
            namespace=namespace, name=name, port_name=port_name, protocol=PROTOCOLS[protocol],
            cluster_ip=cluster_ip, port=_check_port(port.get("port"), "service port"),
            node_port=_check_port(node_port, "nodePort") if node_port is not None else None,
            affinity_timeout=timeout, external_local=spec.get("externalTrafficPolicy") == "Local",
            internal_local=spec.get("internalTrafficPolicy") == "Local", external_ips=external_ips,
            endpoints=_slice_endpoints(slices, port_name=port_name, protocol=protocol)))
    return result


def build(services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]]) -> list[ServicePort]:
    """The whole model, sorted; a service that cannot be programmed is logged and left out, not fatal."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            by_service.setdefault((meta.get("namespace", ""), owner), []).append(sl)
    model = []
    for svc in services:
        meta = svc.get("metadata") or {}
        try:
            model += service_ports(svc, by_service.get((meta.get("namespace", ""), meta.get("name", "")), []))
        except ModelError as exc:
            log.warning("service %s/%s skipped: %s", meta.get("namespace"), meta.get("name"), exc)
    return sorted(model)
