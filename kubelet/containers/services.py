"""Service link variables (``KUBERNETES_SERVICE_HOST``, ``MY_SVC_PORT_80_TCP_ADDR``...) for env.

In-cluster clients find the API server through them, so every container gets the ``kubernetes``
service's from the default namespace; with ``enableServiceLinks`` (the default) also every service of
its own namespace, Docker-link style, as upstream's envvars.FromServices writes them. Headless
services (no cluster IP) give none. The result is ``container_config``'s ``service_env``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubelet.containers.hostport import join_host_port

MASTER_SERVICES = frozenset({"kubernetes"})
DEFAULT_NAMESPACE = "default"


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def _ip_set(service: dict[str, Any]) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def _service_vars(service: dict[str, Any]) -> dict[str, str]:
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    if not ports:
        return {}
    ip, prefix = str(spec["clusterIP"]), _env_name(service.get("metadata", {}).get("name", ""))
    out = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0].get("port"))}
    for port in ports:
        if port.get("name"):
            out[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port.get("port"))
    for i, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        url = f"{protocol.lower()}://{join_host_port(ip, int(port.get('port', 0)))}"
        if i == 0:
            out[f"{prefix}_PORT"] = url
        base = f"{prefix}_PORT_{port.get('port')}_{protocol.upper()}"
        out.update({base: url, f"{base}_PROTO": protocol.lower(), f"{base}_PORT": str(port.get("port")),
                    f"{base}_ADDR": ip})
    return out


def service_env(services: Iterable[dict[str, Any]], *, namespace: str,
                enable_service_links: bool = True) -> dict[str, str]:
    chosen: dict[str, dict[str, Any]] = {}
    for service in services:
        if not _ip_set(service):
            continue
        md = service.get("metadata", {})
        name = str(md.get("name", ""))
        if md.get("namespace") == DEFAULT_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif md.get("namespace") == namespace and enable_service_links:
            chosen[name] = service
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(_service_vars(chosen[name]))
    return env
