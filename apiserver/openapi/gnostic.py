"""Swagger 2.0 documents (JSON-shaped dicts) to gnostic protobuf, the form kubectl ≤ 1.27 reads.

kubectl fetches /openapi/v2 as ``openapi_v2.Document`` protobuf and cannot take JSON there. The
encoder walks the dict with the message tables of :mod:`.gnostic_messages`; it follows proto3 rules
(scalars at their zero value are left out) and writes vendor extensions and other free-form values
as gnostic ``Any`` messages holding YAML text, which kubectl parses back with a YAML decoder.
Anything the tables do not describe raises :class:`SchemaError`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson
import yaml

from apiserver.openapi import protowire
from apiserver.openapi.errors import SchemaError
from apiserver.openapi.gnostic_messages import ANY_YAML, MESSAGES, NAMED_NAME, NAMED_VALUE, Choice

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _key(value: Any, name: str) -> str:
    if isinstance(value, dict):
        found = value.get(name, "")
        return found if isinstance(found, str) else ""
    return ""


#: selector name (Choice.by) -> the branch key it reads off a JSON value
SELECTORS: dict[str, Callable[[Any], str]] = {
    "$ref": lambda value: "ref" if isinstance(value, dict) and "$ref" in value else "",
    "in": lambda value: _key(value, "in"),
    "type": lambda value: _key(value, "type"),
    "json": lambda value: "bool" if isinstance(value, bool) else "",
}


def encode_document(document: dict[str, Any]) -> bytes:
    """The bytes of an ``openapi_v2.Document`` for a Swagger 2.0 dict."""
    return encode(document, "Document")


def encode(value: Any, message: str) -> bytes:
    """Encode ``value`` as the gnostic message named ``message`` (its fields, without a tag)."""
    spec = MESSAGES.get(message)
    if spec is None:
        raise SchemaError(f"no gnostic message {message!r} in the tables")
    if spec.choice is not None:
        number, branch = _choose(spec.choice, value, message)
        return _field(number, branch, value, where=message, always=True)  # a oneof member is always set
    if spec.wrap is not None:
        number, item_type = spec.wrap
        items = value if isinstance(value, list) else [value]
        return b"".join(_field(number, item_type, item, where=message, always=True) for item in items)
    if not isinstance(value, dict):
        raise SchemaError(f"{message}: expected an object, got {type(value).__name__}")
    out: list[bytes] = []
    for key, item in value.items():
        where = f"{message}.{key}"
        if key in spec.fields:
            number, field_type = spec.fields[key]
            out.append(_fields(number, field_type, item, where=where))
        elif spec.extensions and key.startswith("x-"):
            out.append(protowire.length_delimited(spec.extensions, _named(key, "Any", item, where=where)))
        elif spec.named is not None:
            number, value_type = spec.named
            out.append(protowire.length_delimited(number, _named(key, value_type, item, where=where)))
        else:
            raise SchemaError(f"{message}: no field for {key!r}")
    return b"".join(out)


def _choose(choice: Choice, value: Any, message: str) -> tuple[int, str]:
    picked = choice.branches.get(SELECTORS[choice.by](value), choice.default)
    if picked is None:
        raise SchemaError(f"{message}: cannot tell which kind of {message} {value!r} is")
    return picked


def _named(name: str, value_type: str, value: Any, *, where: str) -> bytes:
    """A ``Named<T>`` entry: name = 1, value = 2."""
    return (protowire.length_delimited(NAMED_NAME, name.encode())
            + _field(NAMED_VALUE, value_type, value, where=where))


def _fields(number: int, field_type: str, value: Any, *, where: str) -> bytes:
    if not field_type.startswith("[]"):
        return _field(number, field_type, value, where=where)
    if not isinstance(value, list):
        raise SchemaError(f"{where}: expected a list, got {type(value).__name__}")
    return b"".join(_field(number, field_type[2:], item, where=where, always=True) for item in value)


def _check(value: Any, kinds: tuple[type, ...], where: str) -> None:
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise SchemaError(f"{where}: unexpected {type(value).__name__} value {value!r}")


#: scalar type -> (accepted Python types, writer of one field)
_SCALARS: dict[str, tuple[tuple[type, ...], Callable[[int, Any], bytes]]] = {
    "string": ((str,), lambda number, value: protowire.length_delimited(number, value.encode())),
    "bool": ((bool,), lambda number, value: protowire.varint_field(number, int(value))),
    "int64": ((int,), protowire.varint_field),
    "double": ((int, float), lambda number, value: protowire.double_field(number, float(value))),
}


def _field(number: int, field_type: str, value: Any, *, where: str, always: bool = False) -> bytes:
    """One field; proto3 leaves a singular scalar at its zero value out unless ``always`` (the
    elements of repeated fields and oneof members, whose presence is the information)."""
    scalar = _SCALARS.get(field_type)
    if scalar is not None:
        kinds, write = scalar
        _check(value, kinds, where)
        return write(number, value) if value or always else b""
    if field_type == "Any":
        payload = protowire.length_delimited(ANY_YAML, yaml_text(value).encode())
        return protowire.length_delimited(number, payload)
    return protowire.length_delimited(number, encode(value, field_type))


def yaml_text(value: Any) -> str:
    """The YAML gnostic keeps in ``Any.yaml`` (kubectl reads extensions back with a YAML parser)."""
    try:
        key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise SchemaError(f"cannot write {value!r} as a JSON/YAML value") from exc
    return _yaml_of(key)


@lru_cache(maxsize=4096)
def _yaml_of(json_bytes: bytes) -> str:
    text = yaml.dump(orjson.loads(json_bytes), Dumper=_Dumper, default_flow_style=False, sort_keys=True)
    return text.removesuffix("...\n")  # the end marker PyYAML adds after a lone scalar
