"""JSON Patch (RFC 6902): ``application/json-patch+json`` bodies, e.g. ``kubectl rollout undo``.

The operations are applied in order to a private copy of the document, so a patch either applies
whole or raises :class:`PatchError` and leaves nothing changed (RFC 6902 §5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from machinery.patch.errors import PatchError
from machinery.patch.pointer import array_index, parse_pointer
from machinery.patch.values import clone, json_equal


def _child(container: Any, token: str, pointer: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise PatchError(f"path {pointer!r}: member {token!r} does not exist")
        return container[token]
    if isinstance(container, list):
        return container[array_index(token, length=len(container), allow_end=False, pointer=pointer)]
    raise PatchError(f"path {pointer!r}: cannot descend into a {type(container).__name__} value")


def _get(doc: Any, pointer: str) -> Any:
    value = doc
    for token in parse_pointer(pointer):
        value = _child(value, token, pointer)
    return value


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    """The container holding the target of ``pointer`` (not the root) and the last token."""
    tokens = parse_pointer(pointer)
    container = doc
    for token in tokens[:-1]:
        container = _child(container, token, pointer)
    if not isinstance(container, dict | list):
        raise PatchError(f"path {pointer!r}: parent is a {type(container).__name__}, not a container")
    return container, tokens[-1]


def _add(doc: Any, pointer: str, value: Any) -> Any:
    if pointer == "":
        return value
    container, token = _parent(doc, pointer)
    if isinstance(container, dict):
        container[token] = value
    else:
        container.insert(array_index(token, length=len(container), allow_end=True, pointer=pointer), value)
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    """The document without the target, and the removed value."""
    if pointer == "":
        raise PatchError("cannot remove the whole document")
    container, token = _parent(doc, pointer)
    if isinstance(container, dict):
        if token not in container:
            raise PatchError(f"path {pointer!r}: member {token!r} does not exist")
        return doc, container.pop(token)
    return doc, container.pop(array_index(token, length=len(container), allow_end=False, pointer=pointer))


def _replace(doc: Any, pointer: str, value: Any) -> Any:
    if pointer == "":
        return value
    container, token = _parent(doc, pointer)
    if isinstance(container, dict):
        if token not in container:
            raise PatchError(f"path {pointer!r}: member {token!r} does not exist")
        container[token] = value
    else:
        container[array_index(token, length=len(container), allow_end=False, pointer=pointer)] = value
    return doc


def _op_add(doc: Any, op: dict) -> Any:
    return _add(doc, op["path"], clone(op["value"]))


def _op_remove(doc: Any, op: dict) -> Any:
    return _remove(doc, op["path"])[0]


def _op_replace(doc: Any, op: dict) -> Any:
    return _replace(doc, op["path"], clone(op["value"]))


def _op_move(doc: Any, op: dict) -> Any:
    source, target = op["from"], op["path"]
    if source == target:
        _get(doc, source)  # must still exist
        return doc
    src_tokens, dst_tokens = parse_pointer(source), parse_pointer(target)
    if dst_tokens[: len(src_tokens)] == src_tokens:
        raise PatchError(f"cannot move {source!r} into its own child {target!r}")
    doc, value = _remove(doc, source)
    return _add(doc, target, value)


def _op_copy(doc: Any, op: dict) -> Any:
    return _add(doc, op["path"], clone(_get(doc, op["from"])))


def _op_test(doc: Any, op: dict) -> Any:
    if not json_equal(_get(doc, op["path"]), op["value"]):
        raise PatchError(f"test failed: value at {op['path']!r} is not {op['value']!r}")
    return doc


#: operation name -> (handler, members it requires besides "op" and "path")
_OPERATIONS: dict[str, tuple[Callable[[Any, dict], Any], tuple[str, ...]]] = {
    "add": (_op_add, ("value",)),
    "remove": (_op_remove, ()),
    "replace": (_op_replace, ("value",)),
    "move": (_op_move, ("from",)),
    "copy": (_op_copy, ("from",)),
    "test": (_op_test, ("value",)),
}


def _check(op: object, index: int) -> Callable[[Any, dict], Any]:
    if not isinstance(op, dict):
        raise PatchError(f"operation {index}: must be an object, got {op!r}")
    name = op.get("op")
    entry = _OPERATIONS.get(name) if isinstance(name, str) else None
    if entry is None:
        raise PatchError(f"operation {index}: unknown op {name!r}")
    handler, required = entry
    for member in ("path", *required):
        if member not in op:
            raise PatchError(f"operation {index} ({name}): missing {member!r}")
    for member in ("path", "from"):
        if member in op and not isinstance(op[member], str):
            raise PatchError(f"operation {index} ({name}): {member!r} must be a string")
    return handler


def apply_json_patch(doc: dict, ops: list) -> dict:
    """``doc`` with the RFC 6902 operations ``ops`` applied; inputs are left untouched."""
    if not isinstance(doc, dict):
        raise PatchError("the document to patch must be a JSON object")
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    handlers = [_check(op, i) for i, op in enumerate(ops)]
    result: Any = clone(doc)
    for index, (handler, op) in enumerate(zip(handlers, ops, strict=True)):
        try:
            result = handler(result, op)
        except PatchError as exc:
            raise PatchError(f"operation {index} ({op['op']} {op['path']!r}): {exc}") from None
    if not isinstance(result, dict):
        raise PatchError("the patched document is not a JSON object")
    return result
