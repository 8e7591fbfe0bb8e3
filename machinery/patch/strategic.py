"""Kubernetes strategic merge patch (``application/strategic-merge-patch+json``).

This is what ``kubectl apply`` (client side), ``kubectl patch`` and ``kubectl set`` send for the
built-in kinds. It is a JSON merge patch whose lists can merge item by item: how a list merges is
looked up in :mod:`machinery.patch.merge_keys` by the list's path from the object root (list
indices dropped) and the object's kind. On top of that the patch may carry directives:

- ``"$patch": "replace" | "delete" | "merge"`` in a map (or, for replace/delete, as a list item);
- ``"$retainKeys": [...]``: the map keeps only these fields;
- ``"$setElementOrder/<field>": [...]``: the order of the merged list ``<field>``;
- ``"$deleteFromPrimitiveList/<field>": [...]``: values to drop from the scalar list ``<field>``.

Directive keys never reach the result. The input document is copied once up front; the merge then
works in place on that private copy and copies every value it takes from the patch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from machinery.patch.element_order import identity_of, order_list
from machinery.patch.errors import PatchError
from machinery.patch.merge_keys import ListRule, list_rule
from machinery.patch.values import clone

PATCH = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE = "$deleteFromPrimitiveList/"

_DIRECTIVE_VALUES = frozenset({"replace", "delete", "merge"})


class _Deleted:
    """Marker returned for a map carrying ``$patch: delete``."""


_DELETED = _Deleted()


def _where(path: Sequence[str]) -> str:
    return ".".join(path) or "<root>"


def _is_directive(key: str) -> bool:
    return key in (PATCH, RETAIN_KEYS) or key.startswith((SET_ORDER, DELETE_FROM_PRIMITIVE))


def _list_arg(value: Any, *, name: str, path: Sequence[str]) -> list:
    if not isinstance(value, list):
        raise PatchError(f"{name} at {_where(path)} must be a list, got {value!r}")
    return value


class _Merger:
    """One patch application; holds the object kind the list rules depend on."""

    def __init__(self, kind: str | None) -> None:
        self.kind = kind

    # --- maps -----------------------------------------------------------------------------------

    def merge_map(self, original: dict, patch: dict, path: tuple[str, ...]) -> dict | _Deleted:
        """``patch`` merged into ``original`` (owned by us, changed in place)."""
        directive = patch.get(PATCH)
        if directive is not None:
            if directive not in _DIRECTIVE_VALUES:
                raise PatchError(f"unknown $patch directive {directive!r} at {_where(path)}")
            if directive == "delete":
                return _DELETED
            if directive == "replace":
                original = {}
        if RETAIN_KEYS in patch:
            self._retain_keys(original, patch, path)
        for key, value in patch.items():
            if key.startswith(DELETE_FROM_PRIMITIVE):
                self._delete_from_primitive(original, key[len(DELETE_FROM_PRIMITIVE):], value, path)
        server_lists = _lists_before(original, patch)
        for key, value in patch.items():
            if _is_directive(key):
                continue
            if value is None:
                original.pop(key, None)
                continue
            merged = self.merge_value(original.get(key), value, (*path, key))
            if merged is _DELETED:
                original.pop(key, None)
            else:
                original[key] = merged
        for field, server in server_lists.items():
            self._set_order(original, field, patch[SET_ORDER + field], server=server, path=path)
        return original

    def _retain_keys(self, original: dict, patch: dict, path: tuple[str, ...]) -> None:
        keep = _list_arg(patch[RETAIN_KEYS], name=RETAIN_KEYS, path=path)
        if not all(isinstance(k, str) for k in keep):
            raise PatchError(f"{RETAIN_KEYS} at {_where(path)} must list field names, got {keep!r}")
        for key, value in patch.items():
            if value is not None and not _is_directive(key) and key not in keep:
                raise PatchError(f"{RETAIN_KEYS} at {_where(path)} does not list {key!r}, "
                                 "which the patch sets")
        for key in [k for k in original if k not in keep]:
            del original[key]

    def _delete_from_primitive(self, original: dict, field: str, values: Any, path: tuple[str, ...]) -> None:
        doomed = _list_arg(values, name=DELETE_FROM_PRIMITIVE + field, path=path)
        current = original.get(field)
        if not isinstance(current, list):
            return
        ident = identity_of(None)
        names = {ident(v) for v in doomed}
        kept = [v for v in current if ident(v) not in names]
        if kept:
            original[field] = kept
        else:
            del original[field]

    def _set_order(self, original: dict, field: str, order: Any, *, server: list,
                   path: tuple[str, ...]) -> None:
        order = _list_arg(order, name=SET_ORDER + field, path=path)
        current = original.get(field)
        rule = list_rule((*path, field), self.kind)
        if rule is None or not isinstance(current, list):
            return
        original[field] = order_list(merged=current, order=order, server=server, merge_key=rule.key,
                                     where=_where((*path, field)))

    # --- values ---------------------------------------------------------------------------------

    def merge_value(self, current: Any, patch: Any, path: tuple[str, ...]) -> Any:
        if isinstance(patch, dict):
            return self.merge_map(current if isinstance(current, dict) else {}, patch, path)
        if isinstance(patch, list):
            rule = list_rule(path, self.kind)
            if rule is None:
                return self._atomic_list(patch, path)
            return self._merge_list(current if isinstance(current, list) else [], patch, rule, path)
        return patch

    def _fresh(self, item: Any, path: tuple[str, ...]) -> Any:
        """A patch value that has nothing to merge into: copied, without directives or nulls."""
        if isinstance(item, dict):
            return self.merge_map({}, item, path)
        return clone(item)

    def _atomic_list(self, patch: list, path: tuple[str, ...]) -> list:
        items = (self._fresh(item, path) for item in patch)
        return [item for item in items if item is not _DELETED]

    # --- lists ----------------------------------------------------------------------------------

    def _merge_list(self, original: list, patch: list, rule: ListRule, path: tuple[str, ...]) -> list:
        plain, deletions, replace = self._split_special(patch, rule, path)
        if rule.key is None:
            if replace:
                return _unique([clone(v) for v in plain])
            return _unique(original + [clone(v) for v in plain])
        if replace:
            return [self.merge_map({}, item, path) for item in plain]
        ident = identity_of(rule.key)
        doomed = {ident(item) for item in deletions}
        result = [item for item in original if ident(item) is None or ident(item) not in doomed]
        index = {}
        for i, item in enumerate(result):
            index.setdefault(ident(item), i)
        for item in plain:
            name = ident(item)
            if name in index:
                result[index[name]] = self.merge_map(result[index[name]], item, path)
            else:
                index[name] = len(result)
                result.append(self.merge_map({}, item, path))
        return result

    def _split_special(self, patch: list, rule: ListRule, path: tuple[str, ...]) -> tuple[list, list, bool]:
        """Plain items, ``$patch: delete`` items and whether a ``$patch: replace`` item is present."""
        plain: list = []
        deletions: list = []
        replace = False
        for item in patch:
            if not isinstance(item, dict):
                if rule.key is not None:
                    raise PatchError(f"list {_where(path)} merges on {rule.key!r}; "
                                     f"item {item!r} is not a map")
                plain.append(item)
                continue
            directive = item.get(PATCH)
            if directive == "replace":
                replace = True
            elif rule.key is None:
                raise PatchError(f"list {_where(path)} holds scalars; item {item!r} is not allowed")
            elif rule.key not in item:
                raise PatchError(f"item {item!r} of list {_where(path)} lacks merge key {rule.key!r}")
            elif directive == "delete":
                deletions.append(item)
            elif directive is None:
                plain.append(item)
            elif directive == "merge":
                raise PatchError(f"$patch: merge is not allowed as an item of list {_where(path)}")
            else:
                raise PatchError(f"unknown $patch directive {directive!r} in list {_where(path)}")
        return plain, deletions, replace


def _lists_before(original: dict, patch: dict) -> dict[str, list]:
    """The lists named by ``$setElementOrder`` as the server had them: ordering needs this later."""
    before: dict[str, list] = {}
    for key in patch:
        if key.startswith(SET_ORDER):
            field = key[len(SET_ORDER):]
            current = original.get(field)
            before[field] = list(current) if isinstance(current, list) else []
    return before


def _unique(values: list) -> list:
    """Scalars without repeats, first occurrence kept (a set-merged list like finalizers)."""
    ident = identity_of(None)
    seen: set = set()
    result = []
    for value in values:
        name = ident(value)
        if name not in seen:
            seen.add(name)
            result.append(value)
    return result


def apply_strategic_merge_patch(doc: dict, patch: dict, *, kind: str) -> dict:
    """``doc`` (an object of ``kind``) with the strategic merge patch applied; inputs untouched."""
    if not isinstance(doc, dict):
        raise PatchError("the document to patch must be a JSON object")
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, got {type(patch).__name__}")
    result = _Merger(kind).merge_map(clone(doc), patch, ())
    return {} if isinstance(result, _Deleted) else result
