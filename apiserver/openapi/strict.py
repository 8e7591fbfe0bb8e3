"""Unknown-field detection for ``fieldValidation=Strict`` and ``Warn``.

kubectl apply/create/replace hand validation to the server (``fieldValidation=Strict``) once the
OpenAPI documents exist, so the server must reject ``spec.replicaz`` as upstream does:
400 ``strict decoding error: unknown field "spec.replicaz"``. The check runs on every write, so
each model's schema is compiled once into a tree of plain dicts (field name → child node) and the
walk only descends where something can be unknown: scalars, int-or-string, Quantity, free-form
objects and maps of strings (labels, annotations, ConfigMap data) are leaves.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from apiserver.openapi import schemas
from apiserver.openapi.errors import SchemaError
from apiserver.openapi.names import upstream_name
from apiserver.openapi.schemas import Schema, ref_name

_UNKNOWN = object()


class Node:
    """What may appear at one place: ``fields`` of an object, ``items`` of a list, map ``values``.

    A child of None in ``fields`` means the field exists and nothing below it is checked.
    """

    __slots__ = ("fields", "items", "values")

    def __init__(self) -> None:
        self.fields: dict[str, Node | None] | None = None
        self.items: Node | None = None
        self.values: Node | None = None


def _object(properties: Schema, components: dict[str, Schema], memo: dict[str, Node | None],
            node: Node) -> Node:
    node.fields = {name: _compile(prop, components, memo) for name, prop in properties.items()}
    return node


def _component(name: str, components: dict[str, Schema], memo: dict[str, Node | None]) -> Node | None:
    if name in memo:
        return memo[name]
    schema = components.get(name)
    if schema is None:
        raise SchemaError(f"reference to unknown component {name}")
    if "properties" not in schema or schema.get("x-kubernetes-preserve-unknown-fields"):
        memo[name] = None
        return None
    node = Node()
    memo[name] = node  # before the fields, so recursive types terminate
    return _object(schema["properties"], components, memo, node)


def _compile(schema: Schema, components: dict[str, Schema], memo: dict[str, Node | None]) -> Node | None:
    target = ref_name(schema)
    if target is not None:
        return _component(target, components, memo)
    if schema.get("x-kubernetes-preserve-unknown-fields") or "anyOf" in schema or "oneOf" in schema:
        return None
    kind = schema.get("type")
    if kind == "array":
        items = _compile(schema.get("items", {}), components, memo)
        if items is None:
            return None
        node = Node()
        node.items = items
        return node
    if kind == "object":
        if "properties" in schema:
            return _object(schema["properties"], components, memo, Node())
        extra = schema.get("additionalProperties")
        values = _compile(extra, components, memo) if isinstance(extra, dict) else None
        if values is None:
            return None
        node = Node()
        node.values = values
        return node
    return None


_lock = threading.Lock()
_published_memo: dict[str, Node | None] = {}


@cache
def compiled(model: str) -> Node | None:
    """The check tree of a kubernetes client model (``V1Deployment``); SchemaError if unknown."""
    components = schemas.components_for(model)
    with _lock:
        memo = _published_memo if components is schemas.components() else {}
        return _component(upstream_name(model), components, memo)


def _walk(node: Node, value: Any, path: str, out: list[str]) -> None:
    fields = node.fields
    if fields is not None:
        if not isinstance(value, dict):
            return
        for key, child in value.items():
            sub = fields.get(key, _UNKNOWN)
            if sub is _UNKNOWN:
                out.append(f"{path}.{key}" if path else key)
            elif sub is not None and child is not None:
                _walk(sub, child, f"{path}.{key}" if path else key, out)  # type: ignore[arg-type]
    elif node.items is not None:
        if isinstance(value, list):
            for i, child in enumerate(value):
                if child is not None:
                    _walk(node.items, child, f"{path}[{i}]", out)
    elif node.values is not None and isinstance(value, dict):
        for key, child in value.items():
            if child is not None:
                _walk(node.values, child, f"{path}[{key}]", out)


def unknown_fields(model: str, obj: dict[str, Any]) -> list[str]:
    """Dotted paths of the fields in ``obj`` that ``model``'s schema lacks, in document order,
    e.g. ``["spec.replicaz", "spec.template.spec.containers[0].imagee"]``."""
    if not isinstance(obj, dict):
        raise SchemaError(f"expected a JSON object, got {type(obj).__name__}")
    root = compiled(model)
    out: list[str] = []
    if root is not None:
        _walk(root, obj, "", out)
    return out


def strict_message(paths: list[str]) -> str:
    """The message upstream answers with (400 BadRequest) under ``fieldValidation=Strict``."""
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in paths)


def warm() -> None:
    """Compile every published model now (blocking, well under a second)."""
    from apiserver.openapi.catalog import catalog

    for model in catalog().models:
        compiled(model)
