"""OpenAPI v3 component schemas, converted from the kubernetes client's pydantic models.

The client's models carry every field's JSON name, type and description, so we derive the
published schemas from them instead of hand-writing hundreds of types. Pydantic's JSON schema
differs from the Kubernetes one in predictable ways, undone here: optional fields come as
``anyOf [X, null]``, int-or-string as ``anyOf [integer, string]``, Time as a ``date-time`` string,
Quantity as a plain string (so a small table names the Quantity fields), and references point at
``#/$defs/<client name>``. The result uses upstream component names and ``$ref`` wrapping, so
``kubectl explain`` and kubectl's OpenAPI-driven patch computation read it as they read upstream.

Everything is built once per process on first use (about a quarter of a second).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from functools import cache
from typing import Any

from apiserver.openapi.catalog import catalog
from apiserver.openapi.errors import SchemaError
from apiserver.openapi.names import upstream_name

Schema = dict[str, Any]

REF_PREFIX = "#/components/schemas/"
TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"

#: named scalar types that have no client model
BUILTIN: dict[str, Schema] = {
    TIME: {"description": "A timestamp in RFC 3339 form, to the second, in UTC.",
           "type": "string", "format": "date-time"},
    MICRO_TIME: {"description": "A timestamp in RFC 3339 form with microseconds, in UTC.",
                 "type": "string", "format": "date-time"},
    QUANTITY: {"description": "A fixed-point number with an optional SI or binary suffix, "
                              "such as 500m, 2, 1.5Gi or 1e3.",
               "oneOf": [{"type": "string"}, {"type": "number"}]},
    INT_OR_STRING: {"description": "A value that holds either a 32-bit integer or a string, such as "
                                   "a port number or a port name, or a count or a percentage.",
                    "format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}],
                    "x-kubernetes-int-or-string": True},
    PATCH: {"description": "The body of a PATCH request; its shape depends on the patch type.",
            "type": "object"},
}

#: (client model, field) whose values are Quantities; the client types them as plain strings
QUANTITY_FIELDS = frozenset({
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "sizeLimit"), ("V1ResourceFieldSelector", "divisor"),
    ("V1PodSpec", "overhead"), ("V1PodStatus", "allocatedResources"),
    ("V1ContainerStatus", "allocatedResources"),
    ("V1NodeStatus", "capacity"), ("V1NodeStatus", "allocatable"),
    ("V1PersistentVolumeClaimStatus", "capacity"), ("V1PersistentVolumeClaimStatus", "allocatedResources"),
    ("V1NodeAllocatableMappedResources", "quantity"),
    ("V1NodeAllocatableOverheadResources", "perContainer"),
    ("V1NodeAllocatableOverheadResources", "perPod"),
})

#: (client model, field) whose timestamps carry microseconds (MicroTime rather than Time)
MICRO_TIME_FIELDS = frozenset({
    ("CoreV1Event", "eventTime"), ("EventsV1Event", "eventTime"),
    ("CoreV1EventSeries", "lastObservedTime"), ("EventsV1EventSeries", "lastObservedTime"),
    ("V1LeaseSpec", "acquireTime"), ("V1LeaseSpec", "renewTime"),
})

_PLAIN_TYPES = ("integer", "number", "boolean")
_BOILERPLATE = "\n\nAttributes:"


def ref(name: str) -> Schema:
    return {"$ref": REF_PREFIX + name}


def ref_name(schema: Schema) -> str | None:
    """Component a property points at, seeing through the ``allOf`` wrapper; None for inline."""
    target = schema.get("$ref")
    if target is None:
        wrapped = schema.get("allOf")
        if wrapped and len(wrapped) == 1:
            target = wrapped[0].get("$ref")
    if isinstance(target, str) and target.startswith(REF_PREFIX):
        return target[len(REF_PREFIX):]
    return None


def _clean(text: str | None) -> str:
    """Drop the generator's "Attributes: openapi_types..." tail from a class docstring."""
    if not text:
        return ""
    return text.split(_BOILERPLATE, 1)[0].strip()


def _shape(node: Schema, *, owner: str, field: str) -> Schema:
    """The type part of one pydantic property schema (descriptions handled by the caller)."""
    any_of = node.get("anyOf")
    if any_of is not None:
        members = [m for m in any_of if m.get("type") != "null"]
        if len(members) == 1:
            return _shape(members[0], owner=owner, field=field)
        kinds = {m.get("type") for m in members}
        if kinds == {"integer", "string"}:
            return ref(INT_OR_STRING)
        if kinds == {"string"}:
            return {"type": "string", "format": "byte"}
        return {"anyOf": [_shape(m, owner=owner, field=field) for m in members]}
    target = node.get("$ref")
    if target is not None:
        return ref(upstream_name(target.rsplit("/", 1)[-1]))
    kind = node.get("type")
    if kind == "array":
        return {"type": "array", "items": _shape(node.get("items", {}), owner=owner, field=field)}
    if kind == "object":
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return {"type": "object", "additionalProperties": _shape(extra, owner=owner, field=field)}
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if kind == "string":
        return _string(node, owner=owner, field=field)
    if kind in _PLAIN_TYPES:
        out: Schema = {"type": kind}
        if "format" in node:
            out["format"] = node["format"]
        return out
    if not node:
        return {"x-kubernetes-preserve-unknown-fields": True}
    raise SchemaError(f"{owner}.{field}: cannot convert schema {node!r}")


def _string(node: Schema, *, owner: str, field: str) -> Schema:
    if node.get("format") == "date-time":
        return ref(MICRO_TIME if (owner, field) in MICRO_TIME_FIELDS else TIME)
    if (owner, field) in QUANTITY_FIELDS:
        return ref(QUANTITY)
    if node.get("format") == "binary":
        return {"type": "string", "format": "byte"}
    out: Schema = {"type": "string"}
    if "enum" in node:
        out["enum"] = list(node["enum"])
    return out


def _property(node: Schema, *, owner: str, field: str) -> Schema:
    schema = _shape(node, owner=owner, field=field)
    description = _clean(node.get("description"))
    if description:
        if "$ref" in schema:
            schema = {"allOf": [schema]}
        schema["description"] = description
    return schema


def _component(model: str, definition: Schema) -> Schema:
    out: Schema = {}
    description = _clean(definition.get("description"))
    if description:
        out["description"] = description
    properties = definition.get("properties")
    if properties is None:
        out.update(type="object", **{"x-kubernetes-preserve-unknown-fields": True})
        return out
    out["properties"] = {name: _property(prop, owner=model, field=name) for name, prop in properties.items()}
    if definition.get("required"):
        out["required"] = list(definition["required"])
    out["type"] = "object"
    return out


def convert(models: Iterable[str]) -> dict[str, Schema]:
    """Components for the given client models and every type they reach, by upstream name."""
    from pydantic.json_schema import models_json_schema

    client = importlib.import_module("kubernetes.client")
    classes = []
    for model in models:
        cls = getattr(client, model, None)
        if cls is None or not hasattr(cls, "model_json_schema"):
            raise SchemaError(f"no kubernetes client model named {model!r}")
        classes.append((cls, "validation"))
    _, document = models_json_schema(classes, by_alias=True)
    out: dict[str, Schema] = {}
    for model, definition in document.get("$defs", {}).items():
        name = upstream_name(model)
        if name in out:
            raise SchemaError(f"two client models map to {name}")
        out[name] = _component(model, definition)
    for name, schema in BUILTIN.items():
        out.setdefault(name, dict(schema))
    _describe_bare_refs(out)
    return out


def _describe_bare_refs(components: dict[str, Schema]) -> None:
    """Give undescribed object-typed fields their type's description.

    The client drops the field comments of fields typed by another model (``spec``, ``template``),
    which would leave kubectl explain printing "<no description>" for the most important fields.
    """
    for component in components.values():
        for prop in component.get("properties", {}).values():
            if "$ref" not in prop or "description" in prop:
                continue
            target = components.get(ref_name(prop) or "")
            if target and target.get("description"):
                prop["allOf"] = [{"$ref": prop.pop("$ref")}]
                prop["description"] = target["description"]


_lock = threading.Lock()


@cache
def _published() -> dict[str, Schema]:
    cat = catalog()
    out = convert(cat.models)
    for model, gvks in cat.gvks.items():
        out[upstream_name(model)]["x-kubernetes-group-version-kind"] = list(gvks)
    return out


def components() -> dict[str, Schema]:
    """Every published component (registry kinds, lists, subresource kinds), tagged with GVKs.

    Shared and cached: callers must copy before changing anything.
    """
    with _lock:
        return _published()


@cache
def _single(model: str) -> dict[str, Schema]:
    return convert([model])


def components_for(model: str) -> dict[str, Schema]:
    """Components that describe ``model``: the published set, or a private one for other models."""
    published = components()
    if upstream_name(model) in published:
        return published
    with _lock:
        return _single(model)


def reachable(roots: Iterable[str], schemas: dict[str, Schema]) -> list[str]:
    """Names of the roots and every component they reference, directly or not, in visit order."""
    seen: dict[str, None] = {}
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise SchemaError(f"reference to unknown component {name}")
        seen[name] = None
        stack.extend(references(schemas[name]))
    return list(seen)


def references(node: Any) -> Iterable[str]:
    """Component names referenced anywhere inside ``node``."""
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith(REF_PREFIX):
            yield target[len(REF_PREFIX):]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)
