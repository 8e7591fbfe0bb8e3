"""The object side of an apply: merging a configuration into the live object, then pruning.

Merging favours the configuration: maps merge key by key, keyed lists merge item by item (live-only
items keep their place, configured items follow the configuration's order), set lists gain the
configured values, atomic lists are replaced. ``null`` in a configuration removes the field.

Pruning removes what the applier owned last time but no longer configures, unless some manager
(the applier's new claim included) still owns it or something below it. A container left empty by
pruning goes too, unless someone owns it.

Both functions work in place on a private copy the caller made, and copy whatever they take from
the configuration, so the result shares nothing with either input.
"""

from __future__ import annotations

from typing import Any

from apiserver.fieldmanager.fieldsets import FieldSet, is_member
from apiserver.fieldmanager.listtypes import (
    ATOMIC,
    MAP,
    config_item_elements,
    list_type,
    live_item_elements,
)
from machinery.patch.values import clone


def merge_into(target: dict[str, Any], config: dict[str, Any], *, kind: str | None) -> None:
    """Merge ``config`` into ``target`` (a private copy, changed in place)."""
    _merge_map(target, config, (), kind)


def _merge_map(target: dict[str, Any], config: dict[str, Any], names: tuple[str, ...],
               kind: str | None) -> None:
    for name, cv in config.items():
        if cv is None:
            target.pop(name, None)
        else:
            target[name] = _merge_value(target.get(name), cv, (*names, name), kind)


def _merge_value(lv: Any, cv: Any, names: tuple[str, ...], kind: str | None) -> Any:
    if isinstance(cv, dict):
        base = lv if isinstance(lv, dict) else {}
        _merge_map(base, cv, names, kind)
        return base
    if isinstance(cv, list):
        return _merge_list(lv, cv, names, kind)
    return cv


def _merge_list(lv: Any, cv: list[Any], names: tuple[str, ...], kind: str | None) -> list[Any]:
    lt = list_type(names, kind)
    if lt.shape == ATOMIC:
        return clone(cv)
    config_elements = config_item_elements(lt, cv, names)
    live = lv if isinstance(lv, list) else []
    live_elements = live_item_elements(lt, live)
    live_by_element = dict(zip(live_elements, live, strict=True))
    configured = dict(zip(config_elements, cv, strict=True))

    def merged_item(element: str) -> Any:
        item = configured[element]
        if lt.shape != MAP:
            return item
        base = live_by_element.get(element)
        base = base if isinstance(base, dict) else {}
        _merge_map(base, item, names, kind)
        return base

    out: list[Any] = []
    emitted: set[str] = set()
    i = j = 0
    while i < len(live) or j < len(cv):
        if i < len(live):
            element = live_elements[i]
            if element not in configured:
                out.append(live[i])
                i += 1
                continue
            if element in emitted:
                i += 1
                continue
        # the next live item is configured: configured items come first, in their own order
        element = config_elements[j]
        out.append(merged_item(element))
        emitted.add(element)
        j += 1
    return out


def prune(target: dict[str, Any], remove: FieldSet, keep: FieldSet, *, kind: str | None) -> None:
    """Delete from ``target`` the members of ``remove`` that nothing in ``keep`` reaches."""
    _prune_map(target, remove, keep, (), kind)


def _prune_map(m: dict[str, Any], remove: FieldSet, keep: FieldSet | None, names: tuple[str, ...],
               kind: str | None) -> None:
    for element, rnode in remove.items():
        if not element.startswith("f:"):
            continue
        name = element[2:]
        if name not in m:
            continue
        knode = keep.get(element) if keep else None
        if knode is None and is_member(rnode):
            del m[name]
            continue
        value = m[name]
        if not rnode or not value:
            continue
        if isinstance(value, dict):
            _prune_map(value, rnode, knode, (*names, name), kind)
        elif isinstance(value, list):
            m[name] = value = _prune_list(value, rnode, knode, (*names, name), kind)
        else:
            continue
        if not value and knode is None:
            del m[name]


def _prune_list(items: list[Any], remove: FieldSet, keep: FieldSet | None, names: tuple[str, ...],
                kind: str | None) -> list[Any]:
    lt = list_type(names, kind)
    if lt.shape == ATOMIC:
        return items
    out: list[Any] = []
    for element, item in zip(live_item_elements(lt, items), items, strict=True):
        rnode = remove.get(element)
        if rnode is None:
            out.append(item)
            continue
        knode = keep.get(element) if keep else None
        if knode is None and is_member(rnode):
            continue
        if lt.shape == MAP and rnode and isinstance(item, dict):
            _prune_map(item, rnode, knode, names, kind)
            if not item and knode is None:
                continue
        out.append(item)
    return out
