"""Shared pools the API server hands out from: Service cluster IPs and node ports.

Allocation scans the Services already stored (served from the watch cache, so cheap) and picks a
free value at random; values reserved by in-flight creates are held in memory so two concurrent
creates in this process never pick the same one.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from apiserver import errors
from apiserver.storage import interface as st

SERVICE_CIDR = ipaddress.ip_network("10.43.0.0/16")
#: the first address belongs to the ``kubernetes`` Service in ``default``
KUBERNETES_SERVICE_IP = str(SERVICE_CIDR.network_address + 1)
NODE_PORTS = range(30000, 32768)
_SERVICES_PREFIX = "/registry/core/services/"
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")

_reserved_ips: set[str] = set()
_reserved_ports: set[int] = set()


async def _in_use(storage: st.Storage) -> tuple[set[str], set[int]]:
    ips: set[str] = set(_reserved_ips)
    ports: set[int] = set(_reserved_ports)
    for svc in (await storage.list(_SERVICES_PREFIX)).items:
        spec = svc.get("spec", {})
        ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None")
        ports.update(p["nodePort"] for p in spec.get("ports") or () if p.get("nodePort"))
    return ips, ports


def _pick_ip(used: set[str]) -> str:
    size = SERVICE_CIDR.num_addresses
    base = int(SERVICE_CIDR.network_address)
    for _ in range(256):
        ip = str(ipaddress.ip_address(base + random.randrange(2, size - 1)))
        if ip not in used:
            return ip
    for offset in range(2, size - 1):
        ip = str(ipaddress.ip_address(base + offset))
        if ip not in used:
            return ip
    raise errors.ApiError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: "
                          "range is full")


def _pick_port(used: set[int]) -> int:
    free = [p for p in NODE_PORTS if p not in used]
    if not free:
        raise errors.ApiError(500, "InternalError", "Internal error occurred: failed to allocate a "
                              "nodePort: range is full")
    return random.choice(free)


async def allocate_service(storage: st.Storage, svc: dict[str, Any]) -> None:
    """Fill in spec.clusterIP(s) and node ports of a new Service; reject taken explicit values."""
    spec = svc.setdefault("spec", {})
    svc_type = spec.get("type", "ClusterIP")
    if svc_type == "ExternalName":
        return
    ips, ports = await _in_use(storage)
    name = svc["metadata"]["name"]
    requested = spec.get("clusterIP") or ""
    if requested and requested != "None":
        try:
            inside = ipaddress.ip_address(requested) in SERVICE_CIDR
        except ValueError:
            inside = False
        if not inside:
            raise errors.invalid("Service", name, [errors.cause(
                "spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: '
                f"the provided IP ({requested}) is not in the valid range. The range of valid IPs is "
                f"{SERVICE_CIDR}")], kind="Service")
        if requested in ips:
            raise errors.invalid("Service", name, [errors.cause(
                "spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: '
                f"provided IP is already allocated")], kind="Service")
    elif not requested:
        requested = _pick_ip(ips)
    spec["clusterIP"] = requested
    spec["clusterIPs"] = [requested]
    if requested != "None":
        _reserved_ips.add(requested)
    if svc_type in _NODE_PORT_TYPES:
        for index, port in enumerate(spec.get("ports") or ()):
            wanted = port.get("nodePort")
            if wanted:
                if wanted in ports:
                    raise errors.invalid("Service", name, [errors.cause(
                        f"spec.ports[{index}].nodePort", f"Invalid value: {wanted}: provided port is "
                        f"already allocated")], kind="Service")
            else:
                port["nodePort"] = wanted = _pick_port(ports)
            ports.add(wanted)
            _reserved_ports.add(wanted)


def release_reservations(svc: dict[str, Any]) -> None:
    """Forget in-memory holds once the Service is stored (the store then shows the values)."""
    spec = svc.get("spec", {})
    _reserved_ips.discard(spec.get("clusterIP", ""))
    for port in spec.get("ports") or ():
        _reserved_ports.discard(port.get("nodePort", 0))


def keep_allocations(old: dict[str, Any], new: dict[str, Any]) -> None:
    """An update that leaves out clusterIP or nodePorts keeps the allocated ones (as upstream)."""
    old_spec, spec = old.get("spec", {}), new.setdefault("spec", {})
    if not spec.get("clusterIP") and old_spec.get("clusterIP") and \
            spec.get("type", "ClusterIP") != "ExternalName":
        spec["clusterIP"] = old_spec["clusterIP"]
        spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
    if spec.get("type") in _NODE_PORT_TYPES:
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in old_spec.get("ports") or ()}
        for port in spec.get("ports") or ():
            previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if not port.get("nodePort") and previous:
                port["nodePort"] = previous
