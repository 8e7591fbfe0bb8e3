"""Which kinds the OpenAPI documents describe, derived from the resource registry.

Every registry entry contributes its kind, its list kind and the kinds its subresources answer
with (autoscaling/v1 Scale for ``scale``...). The subresource table says which operations each
subresource has; streaming ones (log, exec, proxy...) have no schema and are left out.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from apiserver.registry import GROUP_VERSIONS, RESOURCES, ResourceType


@dataclass(frozen=True)
class Kind:
    """A kind and the kubernetes client model its schema comes from."""

    group: str
    version: str
    kind: str
    model: str

    @property
    def gvk(self) -> dict[str, str]:
        return {"group": self.group, "kind": self.kind, "version": self.version}


@dataclass(frozen=True)
class Subresource:
    """Operations of one subresource; ``kind`` None means the resource's own kind."""

    actions: tuple[str, ...]
    kind: Kind | None = None


SCALE = Kind("autoscaling", "v1", "Scale", "V1Scale")
STATUS = Kind("", "v1", "Status", "V1Status")
DELETE_OPTIONS = Kind("", "v1", "DeleteOptions", "V1DeleteOptions")

_READ_WRITE = ("get", "put", "patch")

SUBRESOURCES: dict[str, Subresource] = {
    "status": Subresource(_READ_WRITE),
    "scale": Subresource(_READ_WRITE, SCALE),
    "ephemeralcontainers": Subresource(_READ_WRITE),
    "finalize": Subresource(("put",)),
    "binding": Subresource(("post",), Kind("", "v1", "Binding", "V1Binding")),
    "eviction": Subresource(("post",), Kind("policy", "v1", "Eviction", "V1Eviction")),
    "token": Subresource(("post",), Kind("authentication.k8s.io", "v1", "TokenRequest",
                                         "AuthenticationV1TokenRequest")),
}


def _client_has(model: str) -> bool:
    client = importlib.import_module("kubernetes.client")
    return hasattr(client, model)


def resource_kind(rt: ResourceType) -> Kind:
    return Kind(rt.group, rt.version, rt.kind, rt.model)


def list_kind(rt: ResourceType) -> Kind | None:
    """The list kind of a stored resource, when the client has a model for it."""
    model = f"{rt.model}List"
    if not rt.stored or not _client_has(model):
        return None
    return Kind(rt.group, rt.version, rt.list_kind, model)


def subresources(rt: ResourceType) -> Iterable[tuple[str, Subresource]]:
    """The resource's subresources that have operations worth describing."""
    return ((name, SUBRESOURCES[name]) for name in rt.subresources if name in SUBRESOURCES)


def kinds_of(rt: ResourceType) -> list[Kind]:
    """Every kind a resource's operations mention (itself, its list, its subresources' kinds)."""
    kinds = [resource_kind(rt)]
    lk = list_kind(rt)
    if lk:
        kinds.append(lk)
    kinds.extend(sub.kind for _, sub in subresources(rt) if sub.kind)
    return kinds


@dataclass
class Catalog:
    """All published kinds: ``gvks`` maps a model to the GVKs its schema is tagged with."""

    models: list[str] = field(default_factory=list)
    gvks: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def add(self, kind: Kind) -> None:
        if kind.model not in self.gvks:
            self.models.append(kind.model)
            self.gvks[kind.model] = []
        if kind.gvk not in self.gvks[kind.model]:
            self.gvks[kind.model].append(kind.gvk)


@cache
def catalog() -> Catalog:
    out = Catalog()
    for rt in RESOURCES:
        for kind in kinds_of(rt):
            out.add(kind)
    out.add(STATUS)
    for gv in GROUP_VERSIONS:
        group, _, version = gv.rpartition("/")
        out.add(Kind(group, version, DELETE_OPTIONS.kind, DELETE_OPTIONS.model))
    return out
