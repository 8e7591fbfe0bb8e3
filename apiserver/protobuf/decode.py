"""Schema-driven decoding of Kubernetes protobuf bodies into JSON-shaped dicts.

kubectl 1.32's typed commands (create namespace/deployment/secret..., auth can-i/whoami) POST
``application/vnd.kubernetes.protobuf`` and never fall back to JSON, while the rest of the server
works on plain dicts. This module walks the wire format (wire.py) with the message tables
(schemas.py) and yields the object in the shape of the JSON kubectl would otherwise have sent:
- scalars come out as Go's JSON encoding of the decoded struct would give them: Go's protobuf
  code writes every non-pointer field, so the zero values (0, false, "") of non-pointer
  ``omitempty`` fields are dropped, while pointer fields and fields without omitempty keep them
  (the tables mark which is which, see fieldtypes.py);
- a few apimachinery messages have a JSON form of their own (times, IntOrString, Quantity, raw
  JSON), produced by the converters in ``_SPECIAL``; a zero time drops the key;
- unknown field numbers are skipped, as protobuf requires.
"""

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from apiserver.protobuf.schemas import KINDS, MESSAGES
from apiserver.protobuf.wire import LEN, VARINT, WIRE_NAMES, ProtobufError, iter_fields, iter_packed_varints

MAGIC = b"k8s\x00"

_DROP = object()  # a converter's answer for "omit this key" (zero metav1.Time)


def _signed(value: int) -> int:
    """int32/int64 varints are two's complement over 64 bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"invalid UTF-8 in string field: {exc}") from None


def _json(value: bytes) -> Any:
    if not value:
        return _DROP
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ProtobufError(f"embedded JSON is invalid: {exc}") from None


# scalar type -> (expected wire type, converter)
_SCALARS: dict[str, tuple[int, Callable[[Any], Any]]] = {
    "str": (LEN, _text),
    "int": (VARINT, _signed),
    "bool": (VARINT, bool),
    "bytes": (LEN, lambda value: base64.b64encode(value).decode("ascii")),
    "raw": (LEN, bytes),
    "json": (LEN, _json),
}

# scalar types whose zero value omitempty drops (the others are always kept)
_OMITEMPTY = frozenset({"str", "int", "bool"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GO_ZERO_TIME_SECONDS = -62135596800  # 0001-01-01T00:00:00Z, Go's zero time.Time


def _time(fields: dict, *, micro: bool) -> Any:
    seconds, nanos = fields.get("seconds", 0), fields.get("nanos", 0)
    if nanos == 0 and seconds in (0, _GO_ZERO_TIME_SECONDS):
        return _DROP
    try:
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise ProtobufError(f"timestamp out of range: {seconds}s") from None
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"  # %Y is not zero-padded everywhere
    return f"{text}.{moment.microsecond:06d}Z" if micro else f"{text}Z"


def _int_or_string(fields: dict) -> int | str:
    if fields.get("type", 0) == 1:
        return fields.get("strVal", "")
    return fields.get("intVal", 0)


# messages whose JSON form is not an object: message name -> converter of the decoded fields
_SPECIAL: dict[str, Callable[[dict], Any]] = {
    "meta.Time": lambda fields: _time(fields, micro=False),
    "meta.MicroTime": lambda fields: _time(fields, micro=True),
    "intstr.IntOrString": _int_or_string,
    "resource.Quantity": lambda fields: fields.get("string") or "0",
    "runtime.RawExtension": lambda fields: fields.get("raw", _DROP),
    "meta.FieldsV1": lambda fields: fields.get("Raw", _DROP),
    "authentication.ExtraValue": lambda fields: fields.get("items", []),
}


@dataclass(frozen=True, slots=True)
class _Type:
    """One compiled type string of the schema tables (see fieldtypes.py)."""

    wire: int
    scalar: Callable[[Any], Any] | None = None
    message: str | None = None
    keep_zero: bool = True
    repeated: bool = False
    map_key: "_Type | None" = None
    map_value: "_Type | None" = None


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    type: _Type


def compile_type(spec: str) -> _Type:
    """Parse a type string; raises KeyError for an unknown scalar or message (caught by the tests)."""
    if spec.startswith("[]"):
        inner = compile_type(spec[2:])
        return _Type(wire=inner.wire, scalar=inner.scalar, message=inner.message, repeated=True)
    if spec.startswith("map["):
        key_spec, _, value_spec = spec[4:].partition("]")
        return _Type(wire=LEN, map_key=compile_type(key_spec), map_value=compile_type(value_spec))
    if "." in spec:
        if spec not in MESSAGES:
            raise KeyError(f"unknown message {spec!r}")
        return _Type(wire=LEN, message=spec)
    pointer, always = spec.startswith("*"), spec.endswith("!")
    base = spec.removeprefix("*").removesuffix("!")
    if (pointer or always) and base not in _OMITEMPTY:
        raise KeyError(f"{spec!r}: only {sorted(_OMITEMPTY)} take * or !")
    wire, convert = _SCALARS[base]
    return _Type(wire=wire, scalar=convert, keep_zero=pointer or always or base not in _OMITEMPTY)


_compiled: dict[str, dict[int, _Field]] = {}


def _fields_of(message: str) -> dict[int, _Field]:
    fields = _compiled.get(message)
    if fields is None:
        fields = {num: _Field(name, compile_type(spec)) for num, (name, spec) in MESSAGES[message].items()}
        _compiled[message] = fields
    return fields


def _value(ftype: _Type, value: int | bytes) -> Any:
    if ftype.message is not None:
        return decode_message(value, ftype.message)
    return ftype.scalar(value)


def _map_entry(ftype: _Type, entry: bytes) -> tuple[Any, Any]:
    key: Any = ""
    value: Any = None
    for number, wire_type, raw in iter_fields(entry):
        part = {1: ftype.map_key, 2: ftype.map_value}.get(number)
        if part is None:
            continue
        if wire_type != part.wire:
            raise _wire_error(part, wire_type, f"map entry field {number}")
        if number == 1:
            key = _value(part, raw)
        else:
            value = _value(part, raw)
    if value is None:  # an absent value is the zero value of its type
        value = _value(ftype.map_value, b"" if ftype.map_value.wire == LEN else 0)
    return key, value


def _wire_error(ftype: _Type, wire_type: int, where: str) -> ProtobufError:
    return ProtobufError(
        f"{where}: wire type {WIRE_NAMES.get(wire_type, wire_type)}, expected {WIRE_NAMES[ftype.wire]}"
    )


def _where(message: str, number: int, field: _Field) -> str:
    return f"{message} field {number} ({field.name or 'inline'})"


def _add_repeated(out: dict, field: _Field, wire_type: int, value: int | bytes) -> bool:
    """Append one element (or a packed run of varints); False if the wire type does not fit."""
    items = out.setdefault(field.name, [])
    if wire_type == LEN and field.type.wire == VARINT:  # packed encoding
        items.extend(field.type.scalar(v) for v in iter_packed_varints(value))
        return True
    if wire_type != field.type.wire:
        return False
    item = _value(field.type, value)
    if item is not _DROP:
        items.append(item)
    return True


def decode_message(buf: bytes, message: str) -> Any:
    """Decode one message of the schema tables into its JSON form (usually a dict)."""
    fields = _fields_of(message)
    out: dict[str, Any] = {}
    for number, wire_type, value in iter_fields(buf):
        field = fields.get(number)
        if field is None:
            continue
        ftype = field.type
        if ftype.repeated:
            if not _add_repeated(out, field, wire_type, value):
                raise _wire_error(ftype, wire_type, _where(message, number, field))
            continue
        if wire_type != ftype.wire:
            raise _wire_error(ftype, wire_type, _where(message, number, field))
        if ftype.map_key is not None:
            key, item = _map_entry(ftype, value)
            out.setdefault(field.name, {})[key] = item
            continue
        item = _value(ftype, value)
        if not field.name:  # json:",inline"
            out.update(item)
        elif item is _DROP or (not item and not ftype.keep_zero):
            out.pop(field.name, None)
        else:
            out[field.name] = item
    special = _SPECIAL.get(message)
    return special(out) if special is not None else out


def decode_request(body: bytes) -> dict:
    """Decode a whole request body (``k8s\\0`` + runtime.Unknown) into {"apiVersion", "kind", ...}."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ProtobufError(f"body must be bytes, not {type(body).__name__}")
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body (missing the k8s\\0 prefix)")
    try:
        return _decode_envelope(body[len(MAGIC) :])
    except RecursionError:
        raise ProtobufError("message nested too deeply") from None


def _decode_envelope(payload: bytes) -> dict:
    envelope = decode_message(payload, "runtime.Unknown")
    if envelope.get("contentEncoding"):
        raise ProtobufError(f"unsupported contentEncoding {envelope['contentEncoding']!r}")
    type_meta = envelope.get("typeMeta", {})
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = KINDS.get((api_version, kind)) or KINDS.get(("*", kind))
    if message is None:
        raise ProtobufError(f"cannot decode protobuf for kind {kind!r} in {api_version!r}")
    obj = decode_message(envelope.get("raw", b""), message)
    return {"apiVersion": api_version, "kind": kind, **obj}
