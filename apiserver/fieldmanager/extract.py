"""Field sets read off objects: what an apply configuration claims, and what a write changed.

Two readings, as upstream's structured-merge-diff makes them:

* ``fields_of`` (an Apply's claim): every leaf, every list item (its own member, ``"."``), empty
  maps and atomic lists as leaves; plain maps are only prefixes, so two appliers can share one.
* ``diff`` (an Update's claim): the paths that were added or modified, and separately the ones
  removed. Added maps and lists own themselves (``"."``) besides their content, except the
  top-level ``metadata``/``spec``/``status`` which every typed object has from the start.

Neither reading includes the fields the server owns or identifies the object by (``apiVersion``,
``kind``, ``metadata.name/namespace/uid/resourceVersion/generation/creationTimestamp/selfLink``
and ``metadata.managedFields``), as upstream strips them too.

The update reading runs on every write, so it compares subtrees with ``==`` before walking them:
untouched parts of the object cost one C-level comparison.
"""

from __future__ import annotations

from typing import Any

from apiserver.fieldmanager.errors import FieldManagerError
from apiserver.fieldmanager.fieldsets import SELF, FieldSet
from apiserver.fieldmanager.listtypes import (
    ATOMIC,
    MAP,
    SET,
    config_item_elements,
    item_elements,
    list_type,
)

ROOT_SKIP = frozenset({"apiVersion", "kind"})
META_SKIP = frozenset({"name", "namespace", "managedFields", "uid", "resourceVersion", "generation",
                       "creationTimestamp", "selfLink"})
#: top-level fields a typed object always has, so creating them owns nothing by itself
STRUCT_ROOTS = frozenset({"metadata", "spec", "status"})
_NO_SKIP: frozenset[str] = frozenset()
_MISSING = object()


def _skip_for(names: tuple[str, ...], name: str) -> frozenset[str]:
    return META_SKIP if not names and name == "metadata" else _NO_SKIP


# ---------------------------------------------------------------------------------------------
# an apply configuration's claim


def fields_of(obj: dict[str, Any], *, kind: str | None, strict: bool) -> FieldSet:
    """The Apply-style field set of ``obj``; ``strict`` raises on lists that cannot be keyed."""
    if not isinstance(obj, dict):
        raise FieldManagerError(f"an object must be a JSON object, got {type(obj).__name__}")
    return _map_fields(obj, (), kind, strict, ROOT_SKIP) or {}


def _map_fields(m: dict[str, Any], names: tuple[str, ...], kind: str | None, strict: bool,
                skip: frozenset[str]) -> FieldSet | None:
    out: FieldSet = {}
    for name, value in m.items():
        if name in skip:
            continue
        node = _value_fields(value, (*names, name), kind, strict, _skip_for(names, name))
        if node is not None:
            out["f:" + name] = node
    return out or None


def _value_fields(value: Any, names: tuple[str, ...], kind: str | None, strict: bool,
                  skip: frozenset[str]) -> FieldSet | None:
    if isinstance(value, dict):
        if not value:
            return {}
        return _map_fields(value, names, kind, strict, skip)
    if isinstance(value, list):
        return _list_fields(value, names, kind, strict)
    return {}


def _list_fields(items: list[Any], names: tuple[str, ...], kind: str | None, strict: bool) -> FieldSet | None:
    lt = list_type(names, kind)
    if lt.shape == ATOMIC:
        return {}
    if not items:
        return None
    if strict:
        elements: list[str] | None = config_item_elements(lt, items, names)
    else:
        elements = item_elements(lt, items)
    if elements is None:
        return {}
    out: FieldSet = {}
    if lt.shape == SET:
        for element in elements:
            out[element] = {}
        return out
    for element, item in zip(elements, items, strict=True):
        inner = _map_fields(item, names, kind, strict, _NO_SKIP)
        out[element] = {SELF: {}, **inner} if inner else {}
    return out


# ---------------------------------------------------------------------------------------------
# an update's claim


def added_fields(obj: dict[str, Any], *, kind: str | None) -> FieldSet:
    """The Update-style set of a newly created object: everything in it."""
    out: FieldSet = {}
    for name, value in obj.items():
        if name in ROOT_SKIP:
            continue
        if name in STRUCT_ROOTS and isinstance(value, dict):
            inner = _added_children(value, (name,), kind, _skip_for((), name))
            if inner:
                out["f:" + name] = inner
        else:
            out["f:" + name] = _added(value, (name,), kind)
    return out


def _added_children(m: dict[str, Any], names: tuple[str, ...], kind: str | None,
                    skip: frozenset[str]) -> FieldSet:
    return {"f:" + name: _added(value, (*names, name), kind)
            for name, value in m.items() if name not in skip}


def _added(value: Any, names: tuple[str, ...], kind: str | None) -> FieldSet:
    if isinstance(value, dict):
        if not value:
            return {}
        return {SELF: {}, **_added_children(value, names, kind, _NO_SKIP)}
    if isinstance(value, list) and value:
        lt = list_type(names, kind)
        if lt.shape == ATOMIC:
            return {}
        elements = item_elements(lt, value)
        if elements is None:
            return {}
        out: FieldSet = {SELF: {}}
        for element, item in zip(elements, value, strict=True):
            out[element] = _added_item(lt.shape, item, names, kind)
        return out
    return {}


def _added_item(shape: str, item: Any, names: tuple[str, ...], kind: str | None) -> FieldSet:
    if shape == MAP and item:
        return {SELF: {}, **_added_children(item, names, kind, _NO_SKIP)}
    return {}


def diff(old: dict[str, Any], new: dict[str, Any], *, kind: str | None) -> tuple[FieldSet, FieldSet]:
    """(added or modified, removed) paths going from ``old`` to ``new``.

    A member of the removed set stands for its whole subtree.
    """
    changed: FieldSet = {}
    removed: FieldSet = {}
    _diff_map(old, new, (), kind, changed, removed, ROOT_SKIP)
    return changed, removed


def _diff_map(old: dict[str, Any], new: dict[str, Any], names: tuple[str, ...], kind: str | None,
              changed: FieldSet, removed: FieldSet, skip: frozenset[str]) -> None:
    for name, nv in new.items():
        if name in skip:
            continue
        ov = old.get(name, _MISSING)
        if ov is nv:
            continue
        path = (*names, name)
        if ov is _MISSING:
            if not names and name in STRUCT_ROOTS and isinstance(nv, dict):
                ov = {}
            else:
                changed["f:" + name] = _added(nv, path, kind)
                continue
        _diff_value(ov, nv, "f:" + name, path, kind, changed, removed, _skip_for(names, name))
    for name in old:
        if name not in new and name not in skip:
            removed["f:" + name] = {}


def _diff_value(ov: Any, nv: Any, element: str, names: tuple[str, ...], kind: str | None,
                changed: FieldSet, removed: FieldSet, skip: frozenset[str]) -> None:
    if isinstance(nv, dict) and isinstance(ov, dict):
        if ov == nv:
            return
        c: FieldSet = {}
        r: FieldSet = {}
        _diff_map(ov, nv, names, kind, c, r, skip)
        if c:
            changed[element] = c
        if r:
            removed[element] = r
    elif isinstance(nv, list) and isinstance(ov, list):
        if ov != nv:
            _diff_list(ov, nv, element, names, kind, changed, removed)
    elif ov != nv or type(ov) is not type(nv):
        changed[element] = _added(nv, names, kind)
        if isinstance(ov, dict | list) and ov:
            removed[element] = {}


def _diff_list(ov: list[Any], nv: list[Any], element: str, names: tuple[str, ...], kind: str | None,
               changed: FieldSet, removed: FieldSet) -> None:
    lt = list_type(names, kind)
    old_elements = new_elements = None
    if lt.shape != ATOMIC:
        old_elements = item_elements(lt, ov)
        new_elements = item_elements(lt, nv)
    if old_elements is None or new_elements is None:
        changed[element] = {}
        return
    old_items = dict(zip(old_elements, ov, strict=True))
    c: FieldSet = {}
    r: FieldSet = {}
    for item_element, item in zip(new_elements, nv, strict=True):
        before = old_items.pop(item_element, _MISSING)
        if before is _MISSING:
            c[item_element] = _added_item(lt.shape, item, names, kind)
        elif lt.shape == MAP and before != item:
            ic: FieldSet = {}
            ir: FieldSet = {}
            _diff_map(before, item, names, kind, ic, ir, _NO_SKIP)
            if ic:
                c[item_element] = ic
            if ir:
                r[item_element] = ir
    for item_element in old_items:
        r[item_element] = {}
    if c:
        changed[element] = c
    if r:
        removed[element] = r
