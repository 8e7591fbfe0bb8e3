"""The gnostic encoder: field numbers, oneof choices, proto3 zero rules, YAML extensions, errors.

Output is read back with the API server's protobuf *reader* (apiserver.protobuf.wire), a separate
implementation of the wire format; expected numbers come from gnostic's OpenAPIv2.proto.
"""

from __future__ import annotations

import struct
from collections import defaultdict

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from apiserver.openapi import gnostic, protowire
from apiserver.openapi.errors import SchemaError
from apiserver.openapi.gnostic_messages import MESSAGES
from apiserver.protobuf.wire import iter_fields, read_varint


def fields(buf: bytes) -> dict[int, list]:
    out: dict[int, list] = defaultdict(list)
    for number, _wire, value in iter_fields(buf):
        out[number].append(value)
    return dict(out)


def named(entries: list[bytes]) -> dict[str, bytes]:
    """``repeated Named<T>`` entries as name -> encoded value."""
    out = {}
    for entry in entries:
        parts = fields(entry)
        out[parts[1][0].decode()] = parts.get(2, [b""])[0]
    return out


def any_yaml(encoded_any: bytes):
    return yaml.safe_load(fields(encoded_any)[2][0].decode())


def test_document_top_level_numbers() -> None:
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1"}, "paths": {},
           "definitions": {"A": {"type": "object"}}, "consumes": ["a", "b"], "x-top": 1}
    top = fields(gnostic.encode_document(doc))
    assert top[1] == [b"2.0"]
    assert fields(top[2][0]) == {1: [b"Kubernetes"], 2: [b"v1"]}
    assert top[6] == [b"a", b"b"]
    assert top[8] == [b""]  # an empty message is still present
    (definition,) = fields(top[9][0])[1]
    assert fields(fields(named([definition])["A"])[22][0]) == {1: [b"object"]}  # Schema.type -> TypeItem
    assert any_yaml(named(top[16])["x-top"]) == 1


def test_schema_fields_refs_items_and_extensions() -> None:
    schema = {
        "description": "d", "type": "array", "items": {"$ref": "#/definitions/B"},
        "required": ["x"], "uniqueItems": True,
        "properties": {"p": {"type": "string", "format": "byte"}},
        "additionalProperties": {"type": "integer"},
        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}],
    }
    out = fields(gnostic.encode(schema, "Schema"))
    assert out[4] == [b"d"]
    assert out[19] == [b"x"]
    assert out[16] == [1]
    (item,) = fields(out[23][0])[1]  # ItemsItem.schema
    assert fields(item)[1] == [b"#/definitions/B"]
    prop = fields(named(fields(out[25][0])[1])["p"])
    assert (prop[2], fields(prop[22][0])[1]) == ([b"byte"], [b"string"])
    additional = fields(out[21][0])  # AdditionalPropertiesItem.schema = 1
    assert list(additional) == [1]
    extensions = {name: any_yaml(value) for name, value in named(out[31]).items()}
    assert extensions == {
        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}],
    }


def test_additional_properties_false_is_the_boolean_branch() -> None:
    out = fields(gnostic.encode({"additionalProperties": False, "type": "object"}, "Schema"))
    assert fields(out[21][0]) == {2: [0]}  # oneof member: written even at its zero value


@pytest.mark.parametrize(
    ("param", "branch", "sub", "name_field"),
    [
        ({"in": "query", "name": "fieldValidation", "type": "string"}, 2, 3, 4),
        ({"in": "path", "name": "name", "type": "string", "required": True}, 2, 4, 4),
        ({"in": "header", "name": "h", "type": "string"}, 2, 1, 4),
        ({"in": "body", "name": "body", "schema": {"$ref": "#/definitions/P"}}, 1, None, 2),
    ],
)
def test_parameter_oneof_branches(param: dict, branch: int, sub: int | None, name_field: int) -> None:
    item = fields(gnostic.encode(param, "ParametersItem"))
    parameter = fields(item[1][0])  # ParametersItem.parameter
    chosen = parameter[branch][0]
    message = fields(fields(chosen)[sub][0]) if sub is not None else fields(chosen)
    assert message[name_field] == [param["name"].encode()]


def test_parameter_reference_and_response_reference() -> None:
    item = fields(gnostic.encode({"$ref": "#/parameters/x"}, "ParametersItem"))
    assert fields(item[2][0]) == {1: [b"#/parameters/x"]}
    response = fields(gnostic.encode({"$ref": "#/responses/y"}, "ResponseValue"))
    assert fields(response[2][0]) == {1: [b"#/responses/y"]}


def test_operation_responses_and_extensions() -> None:
    op = {"operationId": "patchX", "parameters": [{"in": "query", "name": "dryRun", "type": "string"}],
          "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/D"}}},
          "x-kubernetes-group-version-kind": {"group": "", "kind": "Pod", "version": "v1"}}
    out = fields(gnostic.encode(op, "Operation"))
    assert out[5] == [b"patchX"]
    (code,) = fields(out[9][0])[1]
    response = fields(fields(named([code])["200"])[1][0])  # ResponseValue.response
    assert response[1] == [b"OK"]
    schema = fields(fields(response[2][0])[1][0])  # SchemaItem.schema
    assert schema[1] == [b"#/definitions/D"]
    assert any_yaml(named(out[13])["x-kubernetes-group-version-kind"]) == op["x-kubernetes-group-version-kind"]


def test_paths_split_vendor_extensions_from_paths() -> None:
    out = fields(gnostic.encode({"/a": {"get": {"operationId": "a"}}, "x-note": "n"}, "Paths"))
    assert set(named(out[2])) == {"/a"}
    assert any_yaml(named(out[1])["x-note"]) == "n"


def test_security_definitions_and_requirements() -> None:
    doc = {"securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
           "security": [{"BearerToken": []}]}
    top = fields(gnostic.encode_document(doc))
    item = fields(named(fields(top[13][0])[1])["BearerToken"])
    assert fields(item[2][0]) == {1: [b"apiKey"], 2: [b"authorization"], 3: [b"header"]}  # ApiKeySecurity
    assert named(fields(top[12][0])[1]) == {"BearerToken": b""}


def test_proto3_zero_values_are_left_out_but_repeated_ones_kept() -> None:
    assert gnostic.encode({"description": "", "uniqueItems": False, "maxLength": 0, "minimum": 0.0},
                          "Schema") == b""
    out = fields(gnostic.encode({"required": ["", "a"], "maxLength": -1, "maximum": 2.5}, "Schema"))
    assert out[19] == [b"", b"a"]
    assert out[11] == [(1 << 64) - 1]  # int64 -1, two's complement
    assert struct.unpack("<d", out[7][0]) == (2.5,)


@pytest.mark.parametrize(
    ("value", "message", "text"),
    [
        ({"nope": 1}, "Schema", "no field for 'nope'"),
        ({"type": 5}, "Schema", "unexpected int"),
        ({"uniqueItems": "yes"}, "Schema", "unexpected str"),
        ({"maxLength": True}, "Schema", "unexpected bool"),
        ({"required": "a"}, "Schema", "expected a list"),
        ({"in": "cookie", "name": "c"}, "NonBodyParameter", "cannot tell"),
        ({"type": "oauth2"}, "SecurityDefinitionsItem", "cannot tell"),
        ([1], "Schema", "expected an object"),
        ({"default": {1, 2}}, "Schema", "cannot write"),
        ({}, "Nope", "no gnostic message"),
    ],
)
def test_bad_input_raises_schema_error(value, message: str, text: str) -> None:
    with pytest.raises(SchemaError, match=text):
        gnostic.encode(value, message)


def test_yaml_text_is_plain_yaml_without_end_markers() -> None:
    assert gnostic.yaml_text("merge") == "merge\n"
    assert gnostic.yaml_text(["name"]) == "- name\n"
    assert gnostic.yaml_text("1") == "'1'\n"  # stays a string when read back
    assert yaml.safe_load(gnostic.yaml_text({"group": "", "kind": "Pod"})) == {"group": "", "kind": "Pod"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@given(json_values)
def test_yaml_text_round_trips(value) -> None:
    assert yaml.safe_load(gnostic.yaml_text(value)) == value


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1))
def test_varint_round_trips(value: int) -> None:
    decoded, end = read_varint(protowire.varint(value), 0)
    assert decoded == value % (1 << 64)
    assert end == len(protowire.varint(value))


def test_varint_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        protowire.varint(1 << 64)
    with pytest.raises(ValueError):
        protowire.varint(-(1 << 64) - 1)


def test_every_table_type_is_known() -> None:
    scalars = {"string", "bool", "int64", "double", "Any"}
    for name, message in MESSAGES.items():
        specs = [*message.fields.values(), *(x for x in (message.named, message.wrap) if x)]
        if message.choice is not None:
            assert message.choice.by in gnostic.SELECTORS, name
            specs += [*message.choice.branches.values(), *([message.choice.default] if message.choice.default else [])]
        for number, field_type in specs:
            assert number > 0, name
            assert field_type.removeprefix("[]") in scalars | set(MESSAGES), (name, field_type)
        numbers = [number for number, _ in message.fields.values()]
        assert len(numbers) == len(set(numbers)), name
        assert message.extensions not in numbers, name
