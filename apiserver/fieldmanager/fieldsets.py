"""Sets of field paths, held directly in the ``fieldsV1`` shape that ``managedFields`` stores.

A set is a trie of nested dicts keyed by path elements: ``f:<name>`` (a map field),
``k:<json object>`` (a keyed list item), ``v:<json>`` (a set-list item), ``i:<n>`` (a list index).
A node is a *member* of the set when it is a leaf (``{}``) or carries the ``"."`` key; a node with
children and no ``"."`` is only a prefix. Keeping the stored shape as the working shape means no
conversion on every write, which matters because ownership is recomputed on each one.

Sets are treated as immutable: every operation returns a new trie (or the input itself when
nothing changed, which lets callers skip work), sharing untouched sub-tries with its inputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

SELF = "."

FieldSet = dict[str, Any]
Path = tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# path elements


def field_element(name: str) -> str:
    return "f:" + name


def value_element(value: Any) -> str:
    return "v:" + orjson.dumps(value).decode()


def key_element(keys: dict[str, Any]) -> str:
    """``k:{...}``; ``keys`` must already be in sorted key order, as upstream serialises them."""
    return "k:" + orjson.dumps(keys).decode()


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def element_text(element: str) -> str:
    """One element as upstream prints it in conflict messages (``.x``, ``[name="a"]``, ``[="v"]``)."""
    tag, _, body = element.partition(":")
    try:
        if tag == "f":
            return "." + body
        if tag == "k":
            keys = orjson.loads(body)
            return "[" + ",".join(f"{k}={_scalar_text(v)}" for k, v in keys.items()) + "]"
        if tag == "v":
            return "[=" + _scalar_text(orjson.loads(body)) + "]"
        if tag == "i":
            return f"[{body}]"
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return element


def path_text(path: Sequence[str]) -> str:
    return "".join(element_text(e) for e in path)


# ---------------------------------------------------------------------------------------------
# membership


def is_member(node: FieldSet) -> bool:
    return not node or SELF in node


def has_member(fields: FieldSet, path: Sequence[str]) -> bool:
    node: FieldSet | None = fields
    for element in path:
        node = node.get(element) if node else None
        if node is None:
            return False
    return bool(path) and is_member(node)


def members(fields: FieldSet) -> Iterator[Path]:
    """Every member path, children in sorted order (for messages and tests)."""
    stack: list[tuple[Path, FieldSet]] = [((), fields)]
    while stack:
        prefix, node = stack.pop()
        for element in sorted(node, reverse=True):
            if element == SELF:
                continue
            child = node[element]
            path = (*prefix, element)
            stack.append((path, child))
        if prefix and is_member(node):
            yield prefix


def common_members(a: FieldSet, b: FieldSet) -> list[Path]:
    """Paths that are members of both sets, sorted."""
    found: list[Path] = []
    _common(a, b, (), found)
    return found


def _common(a: FieldSet, b: FieldSet, prefix: Path, found: list[Path]) -> None:
    for element in sorted(a):
        if element == SELF:
            continue
        bn = b.get(element)
        if bn is None:
            continue
        an = a[element]
        path = (*prefix, element)
        if is_member(an) and is_member(bn):
            found.append(path)
        if an and bn:
            _common(an, bn, path, found)


# ---------------------------------------------------------------------------------------------
# algebra (all functions take and return the children-level dict of a node; the root is one)


def _with_self(children: FieldSet) -> FieldSet:
    return children if SELF in children else {SELF: {}, **children}


def _normalise(children: FieldSet) -> FieldSet | None:
    """A node rebuilt from its children: None when it no longer says anything."""
    if not children:
        return None
    if len(children) == 1 and SELF in children:
        return {}
    return children


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    if not b:
        return a
    if not a:
        return b
    out: FieldSet | None = None
    for element, bn in b.items():
        if element == SELF:
            continue
        an = a.get(element)
        merged = bn if an is None else _union_node(an, bn)
        if merged is not an:
            if out is None:
                out = dict(a)
            out[element] = merged
    return a if out is None else out


def _union_node(an: FieldSet, bn: FieldSet) -> FieldSet:
    if an is bn:
        return an
    if not bn:
        return an if is_member(an) else _with_self(an)
    if not an:
        return _with_self(bn)
    merged = union(an, bn)
    if SELF in bn and SELF not in merged:
        merged = {SELF: {}, **merged}
    return merged


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """Members of ``a`` that are not members of ``b`` (prefixes of ``b`` do not remove anything)."""
    if not a or not b:
        return a
    out: FieldSet | None = None
    for element, bn in b.items():
        if element == SELF:
            continue
        an = a.get(element)
        if an is None:
            continue
        res = _difference_node(an, bn)
        if res is not an:
            if out is None:
                out = dict(a)
            if res is None:
                del out[element]
            else:
                out[element] = res
    return a if out is None else out


def _difference_node(an: FieldSet, bn: FieldSet) -> FieldSet | None:
    if not an:
        return None if is_member(bn) else an
    kids = difference(an, bn) if bn else an
    drop_self = SELF in kids and is_member(bn)
    if kids is an and not drop_self:
        return an
    if drop_self:
        kids = {k: v for k, v in kids.items() if k != SELF}
    return _normalise(kids)


def remove_subtrees(a: FieldSet, removed: FieldSet) -> FieldSet:
    """``a`` without everything at or below each member of ``removed`` (fields that are gone)."""
    if not a or not removed:
        return a
    out: FieldSet | None = None
    for element, rn in removed.items():
        if element == SELF:
            continue
        an = a.get(element)
        if an is None:
            continue
        if is_member(rn):
            res = None
        elif not an:
            continue
        else:
            kids = remove_subtrees(an, rn)
            if kids is an:
                continue
            res = _normalise(kids)
        if out is None:
            out = dict(a)
        if res is None:
            del out[element]
        else:
            out[element] = res
    return a if out is None else out
