"""The downward API for env vars: pod fields (``fieldRef``) and container resources (``resourceFieldRef``).

Field paths and formats are upstream's: labels/annotations as a whole are ``k="v"`` lines sorted by
key, a missing ``labels['x']`` is empty, pod/host IP lists are comma-joined. Resource values are
rounded up after dividing by ``divisor``; a limit the container does not set reads as the node's
allocatable amount, as upstream defaults it for the downward API.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubelet.containers.errors import ConfigError
from kubelet.containers.qos import node_memory_bytes
from kubelet.containers.quantity import quantity

_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['(.*)'\]")


@dataclass(frozen=True)
class PodAddresses:
    pod_ips: tuple[str, ...] = ()
    host_ips: tuple[str, ...] = ()


def _format_map(values: dict[str, Any]) -> str:
    return "\n".join(f"{k}={json.dumps(str(values[k]))}" for k in sorted(values))


def _metadata(key: str) -> Callable[[dict[str, Any], PodAddresses], str]:
    return lambda pod, _addr: str(pod.get("metadata", {}).get(key) or "")


def _spec(key: str) -> Callable[[dict[str, Any], PodAddresses], str]:
    return lambda pod, _addr: str(pod.get("spec", {}).get(key) or "")


FIELDS: dict[str, Callable[[dict[str, Any], PodAddresses], str]] = {
    "metadata.name": _metadata("name"),
    "metadata.namespace": _metadata("namespace"),
    "metadata.uid": _metadata("uid"),
    "metadata.labels": lambda pod, _a: _format_map(pod.get("metadata", {}).get("labels") or {}),
    "metadata.annotations": lambda pod, _a: _format_map(pod.get("metadata", {}).get("annotations") or {}),
    "spec.nodeName": _spec("nodeName"),
    "spec.serviceAccountName": _spec("serviceAccountName"),
    "status.podIP": lambda _p, addr: addr.pod_ips[0] if addr.pod_ips else "",
    "status.podIPs": lambda _p, addr: ",".join(addr.pod_ips),
    "status.hostIP": lambda _p, addr: addr.host_ips[0] if addr.host_ips else "",
    "status.hostIPs": lambda _p, addr: ",".join(addr.host_ips),
}


def field_value(pod: dict[str, Any], field_path: str, *, addresses: PodAddresses) -> str:
    getter = FIELDS.get(field_path)
    if getter is not None:
        return getter(pod, addresses)
    match = _SUBSCRIPT.fullmatch(field_path)
    if match:
        return str((pod.get("metadata", {}).get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldPath: {field_path}")


def node_allocatable(root: str = "/") -> dict[str, int]:
    """What an unset limit reads as: the node's cpus (in millicores), memory and disk bytes."""
    disk = shutil.disk_usage(root if os.path.isdir(root) else "/").total
    return {"cpu": (os.cpu_count() or 1) * 1000, "memory": node_memory_bytes(), "ephemeral-storage": disk}


def _amount(container: dict[str, Any], *, kind: str, name: str, allocatable: dict[str, int]) -> Any:
    amounts = (container.get("resources") or {}).get(kind) or {}
    if name in amounts:
        return amounts[name]
    if kind == "limits" and name in allocatable:
        return f"{allocatable[name]}m" if name == "cpu" else allocatable[name]
    return 0


def resource_value(pod: dict[str, Any], container: dict[str, Any], *, ref: dict[str, Any],
                   allocatable: dict[str, int]) -> str:
    """``limits.cpu`` etc. of this (or ``ref.containerName``'s) container, divided and rounded up."""
    wanted = ref.get("containerName")
    if wanted:
        spec = pod.get("spec", {})
        found = [c for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
                 if c.get("name") == wanted]
        if not found:
            raise ConfigError(f"container {wanted} not found")
        container = found[0]
    resource = str(ref.get("resource", ""))
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not (name in ("cpu", "memory", "ephemeral-storage")
                                                  or name.startswith("hugepages-")):
        raise ConfigError(f"unsupported container resource : {resource}")
    divisor = quantity(ref.get("divisor") or 0) or quantity(1)
    amount = quantity(_amount(container, kind=kind, name=name, allocatable=allocatable))
    if name == "cpu":  # both as millicores, each rounded up (MilliValue)
        return str(math.ceil(math.ceil(amount * 1000) / math.ceil(divisor * 1000)))
    return str(math.ceil(math.ceil(amount) / math.ceil(divisor)))
