"""Strategic-merge and apply extensions on list and map properties, from the merge-key table.

kubectl apply computes its strategic merge patch from the OpenAPI v3 schema as soon as the PATCH
operation accepts ``application/strategic-merge-patch+json``. It reads the merge key and strategy
from ``x-kubernetes-patch-merge-key`` / ``x-kubernetes-patch-strategy`` on each property; a keyed
list without them is replaced whole (a second apply would drop every container it did not name).
The server merges with ``machinery.patch.merge_keys``, so the schema is annotated from that same
table, keeping client and server in agreement.

The table keys rules by trailing field names from the object root, limited to some kinds; the
component schemas are shared between kinds, so we walk from each kind's root schema and annotate
every property a rule matches along the way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apiserver.openapi.schemas import Schema, ref_name
from machinery.patch.merge_keys import LIST_RULES, RETAIN_KEYS, ListRule, list_rule, retains_keys

#: field names of context a rule can look at beyond the property's own name
_CONTEXT = max(len(suffix) for suffix in (*(r.suffix for r in LIST_RULES), *RETAIN_KEYS)) - 1


def _list_extensions(rule: ListRule, *, retain: bool) -> dict[str, Any]:
    if rule.key is None:
        return {"x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"}
    return {
        "x-kubernetes-list-map-keys": list(rule.apply_keys),
        "x-kubernetes-list-type": "map",
        "x-kubernetes-patch-merge-key": rule.key,
        "x-kubernetes-patch-strategy": "merge,retainKeys" if retain else "merge",
    }


def _annotate_property(prop: Schema, path: tuple[str, ...], kind: str) -> str | None:
    """Add the extensions the table gives ``prop``; returns the component to descend into."""
    if prop.get("type") == "array":
        rule = list_rule(path, kind)
        if rule is not None:
            for key, value in _list_extensions(rule, retain=retains_keys(path)).items():
                prop.setdefault(key, value)
        return ref_name(prop.get("items", {}))
    target = ref_name(prop)
    if target is not None and retains_keys(path):
        if "$ref" in prop:  # extensions beside a bare $ref are ignored by OpenAPI 3.0 readers
            prop["allOf"] = [{"$ref": prop.pop("$ref")}]
        prop.setdefault("x-kubernetes-patch-strategy", "retainKeys")
    return target


def annotate(components: dict[str, Schema], roots: Iterable[tuple[str, str]]) -> None:
    """Annotate ``components`` in place, walking from each ``(component name, kind)`` root.

    Components are shared between kinds, so a property gets the rule of the first walk that finds
    one for it (the table's kind limits never make two kinds of one document disagree today).
    """
    seen: set[tuple[str, tuple[str, ...], str]] = set()
    for root, kind in roots:
        stack: list[tuple[str, tuple[str, ...]]] = [(root, ())]
        while stack:
            name, context = stack.pop()
            if (name, context, kind) in seen:
                continue
            seen.add((name, context, kind))
            for field, prop in components[name].get("properties", {}).items():
                path = (*context, field)
                target = _annotate_property(prop, path, kind)
                if target is not None and target in components:
                    stack.append((target, path[-_CONTEXT:] if _CONTEXT else ()))
