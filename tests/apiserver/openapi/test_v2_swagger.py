"""The Swagger 2.0 document: v3 → v2 conversion rules and what kubectl needs from the whole document."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from apiserver.openapi import swagger, v2
from apiserver.openapi.errors import SchemaError
from apiserver.registry import RESOURCES

REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return v2.build()


def test_wrapped_ref_becomes_ref_beside_its_description() -> None:
    prop = {"allOf": [{"$ref": REF + "a.B"}], "description": "the b", "x-kubernetes-patch-strategy": "retainKeys"}
    assert swagger.convert_schema(prop) == {"$ref": "#/definitions/a.B", "description": "the b",
                                            "x-kubernetes-patch-strategy": "retainKeys"}


def test_oneof_scalars_become_strings_like_upstream() -> None:
    int_or_string = {"oneOf": [{"type": "integer"}, {"type": "string"}], "format": "int-or-string"}
    assert swagger.convert_schema(int_or_string) == {"format": "int-or-string", "type": "string"}
    quantity = {"oneOf": [{"type": "string"}, {"type": "number"}], "description": "q"}
    assert swagger.convert_schema(quantity) == {"description": "q", "type": "string"}
    mixed = {"anyOf": [{"type": "object"}, {"type": "string"}]}
    assert swagger.convert_schema(mixed) == {}  # no single type: an arbitrary value


def test_nested_schemas_are_converted_and_input_untouched() -> None:
    node = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"$ref": REF + "a.C"}},
        "labels": {"type": "object", "additionalProperties": {"allOf": [{"$ref": REF + "a.D"}]}},
    }}
    before = copy.deepcopy(node)
    out = swagger.convert_schema(node)
    assert out["properties"]["items"]["items"] == {"$ref": "#/definitions/a.C"}
    assert out["properties"]["labels"]["additionalProperties"] == {"$ref": "#/definitions/a.D"}
    assert node == before


def test_foreign_reference_is_an_error() -> None:
    with pytest.raises(SchemaError, match="outside the components"):
        swagger.convert_schema({"$ref": "http://example.com/x.json"})


def test_operation_gets_body_parameter_consumes_and_produces() -> None:
    op = {"operationId": "patchX", "parameters": [
              {"in": "query", "name": "fieldValidation", "description": "d",
               "schema": {"type": "string", "uniqueItems": True}}],
          "requestBody": {"content": {"application/merge-patch+json": {"schema": {"$ref": REF + "P"}}},
                          "required": True},
          "responses": {"200": {"description": "OK", "content": {
              "application/json": {"schema": {"$ref": REF + "D"}},
              "application/yaml": {"schema": {"$ref": REF + "D"}}}},
              "401": {"description": "Unauthorized"}},
          "x-kubernetes-action": "patch"}
    out = swagger.convert_operation(op)
    assert out["consumes"] == ["application/merge-patch+json"]
    assert out["produces"] == ["application/json", "application/yaml"]
    assert out["parameters"] == [
        {"in": "body", "name": "body", "required": True, "schema": {"$ref": "#/definitions/P"}},
        {"in": "query", "name": "fieldValidation", "description": "d", "type": "string", "uniqueItems": True},
    ]
    assert out["responses"] == {"200": {"description": "OK", "schema": {"$ref": "#/definitions/D"}},
                                "401": {"description": "Unauthorized"}}
    assert out["x-kubernetes-action"] == "patch"


def test_documents_that_disagree_about_a_component_are_refused() -> None:
    one = {"components": {"schemas": {"X": {"type": "object"}}}, "paths": {}}
    two = {"components": {"schemas": {"X": {"type": "string"}}}, "paths": {}}
    with pytest.raises(SchemaError, match="X differs"):
        swagger.build([one, two])


# -- the served document ------------------------------------------------------------------------


def schemas_in(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node of the document (definitions, their properties, operation schemas)."""
    stack = [(f"definitions.{name}", schema) for name, schema in doc["definitions"].items()]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            stack += [(f"{path} {method} body", p["schema"]) for p in op.get("parameters", []) if "schema" in p]
            stack += [(f"{path} {method} {code}", r["schema"]) for code, r in op["responses"].items() if "schema" in r]
    while stack:
        where, schema = stack.pop()
        yield where, schema
        stack += [(f"{where}.{name}", prop) for name, prop in schema.get("properties", {}).items()]
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                stack.append((f"{where}[{key}]", schema[key]))


def test_every_schema_is_one_kube_openapi_can_parse(doc) -> None:
    """The rules of kube-openapi's proto.Definitions.ParseSchema, which kubectl runs on the document:
    a $ref names a definition and has no type or properties; one type at most; arrays have items;
    scalars are string/integer/number/boolean."""
    for where, schema in schemas_in(doc):
        if "$ref" in schema:
            assert schema["$ref"].removeprefix("#/definitions/") in doc["definitions"], where
            assert "type" not in schema and "properties" not in schema, where
            continue
        assert "allOf" not in schema and "oneOf" not in schema and "anyOf" not in schema, where
        kind = schema.get("type")
        assert kind is None or isinstance(kind, str), where
        if kind == "array":
            assert isinstance(schema.get("items"), dict), where
        elif kind not in (None, "object"):
            assert kind in ("string", "integer", "number", "boolean"), where


def gvk_of(rt) -> dict[str, str]:
    return {"group": rt.group, "kind": rt.kind, "version": rt.version}


def test_every_patchable_kind_has_a_patch_operation_taking_field_validation(doc) -> None:
    """What kubectl's query-parameter verifier looks for before leaving validation to the server."""
    patches = [item["patch"] for item in doc["paths"].values() if "patch" in item]
    for rt in RESOURCES:
        if "patch" not in rt.verbs:
            continue
        ops = [op for op in patches if op.get("x-kubernetes-group-version-kind") == gvk_of(rt)]
        assert ops, rt.kind
        names = {p["name"] for p in ops[0]["parameters"] if p["in"] == "query"}
        assert "fieldValidation" in names, rt.kind
        assert "application/strategic-merge-patch+json" in ops[0]["consumes"]


def test_every_stored_kind_has_a_tagged_definition(doc) -> None:
    tagged = {(g["group"], g["version"], g["kind"]) for d in doc["definitions"].values()
              for g in d.get("x-kubernetes-group-version-kind", [])}
    for rt in RESOURCES:
        assert (rt.group, rt.version, rt.kind) in tagged, rt.kind


def test_merge_keys_match_the_server_table(doc) -> None:
    pod_spec = doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert pod_spec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert pod_spec["containers"]["x-kubernetes-patch-strategy"] == "merge"
    assert pod_spec["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    env = doc["definitions"]["io.k8s.api.core.v1.Container"]["properties"]["env"]
    assert (env["x-kubernetes-patch-merge-key"], env["x-kubernetes-patch-strategy"]) == ("name", "merge")
    ports = doc["definitions"]["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    strategy = doc["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert strategy["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy"


def test_special_scalars_are_published_as_strings(doc) -> None:
    defs = doc["definitions"]
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    assert defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    time = defs["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]
    assert (time["type"], time["format"]) == ("string", "date-time")


def test_document_header_and_security(doc) -> None:
    assert doc["swagger"] == "2.0"
    assert doc["info"]["title"] == "Kubernetes"
    assert doc["securityDefinitions"]["BearerToken"]["type"] == "apiKey"
    assert doc["security"] == [{"BearerToken": []}]
    assert list(doc["paths"]) == sorted(doc["paths"])
