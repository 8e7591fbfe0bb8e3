"""A container's environment, resolved the way the upstream kubelet resolves it.

Order and precedence: ``envFrom`` sources in turn (ConfigMap/Secret data, with ``prefix``), then
``env`` entries (literal values with ``$(VAR)`` expanded against what came before and the service
variables; ``valueFrom`` field/resource refs and ConfigMap/Secret keys), then the service variables
not already set. A missing non-optional ConfigMap/Secret or key is a ``ConfigError`` with upstream's
message; an optional one leaves the variable out.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from kubelet.containers.downward import PodAddresses, field_value, resource_value
from kubelet.containers.errors import ConfigError
from kubelet.containers.expansion import expand, mapping_for
from kubelet.sources import ObjectSource

# plural -> (kind in the not-found message, kind in the missing-key message)
KINDS: dict[str, tuple[str, str]] = {"configmaps": ("configmap", "ConfigMap"), "secrets": ("secret", "Secret")}


def _data(plural: str, obj: dict[str, Any]) -> dict[str, str]:
    if plural == "secrets":
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    return {k: str(v) for k, v in (obj.get("data") or {}).items()}


class _Objects:
    """Each ConfigMap/Secret read once per container build."""

    def __init__(self, source: ObjectSource, namespace: str) -> None:
        self.source, self.namespace = source, namespace
        self.cache: dict[tuple[str, str], dict[str, str] | None] = {}

    async def data(self, plural: str, name: str, *, optional: bool) -> dict[str, str] | None:
        """The object's data; None when it is missing and optional."""
        if (plural, name) not in self.cache:
            obj = await self.source.get(plural, self.namespace, name)
            self.cache[plural, name] = None if obj is None else _data(plural, obj)
        found = self.cache[plural, name]
        if found is None and not optional:
            raise ConfigError(f'{KINDS[plural][0]} "{name}" not found')
        return found


async def _key_ref(objects: _Objects, plural: str, *, ref: dict[str, Any]) -> str | None:
    name, key, optional = str(ref.get("name", "")), str(ref.get("key", "")), bool(ref.get("optional"))
    data = await objects.data(plural, name, optional=optional)
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {KINDS[plural][1]} {objects.namespace}/{name}")
    return data[key]


async def resolve_env(pod: dict[str, Any], container: dict[str, Any], *, source: ObjectSource,
                      addresses: PodAddresses, allocatable: dict[str, int],
                      service_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Name -> value in upstream's order (a dict keeps it)."""
    service_env = dict(service_env or {})
    objects = _Objects(source, pod.get("metadata", {}).get("namespace", ""))
    env: dict[str, str] = {}
    for env_from in container.get("envFrom") or []:
        for plural, field in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = env_from.get(field)
            if ref is None:
                continue
            data = await objects.data(plural, str(ref.get("name", "")), optional=bool(ref.get("optional")))
            for key, val in (data or {}).items():
                env[str(env_from.get("prefix") or "") + key] = val
    lookup = mapping_for(env, service_env)
    for var in container.get("env") or []:
        value: str | None = str(var.get("value") or "")
        source_ref = var.get("valueFrom")
        if value:
            value = expand(value, lookup)
        elif source_ref:
            value = await _value_from(pod, container, ref=source_ref, objects=objects, addresses=addresses,
                                      allocatable=allocatable)
            if value is None:
                continue
        env[var["name"]] = value
    for key, val in service_env.items():
        env.setdefault(key, val)
    return env


async def _value_from(pod: dict[str, Any], container: dict[str, Any], *, ref: dict[str, Any],
                      objects: _Objects, addresses: PodAddresses, allocatable: dict[str, int]) -> str | None:
    if "fieldRef" in ref:
        return field_value(pod, str(ref["fieldRef"].get("fieldPath", "")), addresses=addresses)
    if "resourceFieldRef" in ref:
        return resource_value(pod, container, ref=ref["resourceFieldRef"], allocatable=allocatable)
    if "configMapKeyRef" in ref:
        return await _key_ref(objects, "configmaps", ref=ref["configMapKeyRef"])
    if "secretKeyRef" in ref:
        return await _key_ref(objects, "secrets", ref=ref["secretKeyRef"])
    return ""


def expand_command(container: dict[str, Any], env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """command and args with ``$(VAR)`` expanded against the final environment."""
    lookup = mapping_for(env)
    return ([expand(str(c), lookup) for c in container.get("command") or []],
            [expand(str(a), lookup) for a in container.get("args") or []])
