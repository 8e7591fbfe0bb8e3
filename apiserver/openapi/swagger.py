"""The Swagger 2.0 document of /openapi/v2, converted from the OpenAPI v3 group-version documents.

kubectl ≤ 1.27 takes everything from this one document: the query-parameter verifier looks for a
PATCH operation tagged with the kind's ``x-kubernetes-group-version-kind`` that takes
``fieldValidation`` (then validation is left to the server), ``apply`` and ``diff`` compute their
strategic merge patch from the definitions' ``x-kubernetes-patch-merge-key`` and
``x-kubernetes-patch-strategy``, and ``explain`` prints the definitions. Newer kubectl still reads
it in places. Building it from the v3 documents (already annotated with the merge keys) keeps both
versions saying the same thing. The differences are mechanical: ``#/definitions/`` references,
a ``$ref`` beside its description instead of inside ``allOf``, string types for the ``oneOf``
scalars (IntOrString, Quantity) as upstream publishes them, query and path parameters without a
nested ``schema``, the request body as a ``body`` parameter and media types as consumes/produces.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apiserver.openapi.errors import SchemaError
from apiserver.openapi.schemas import REF_PREFIX

Schema = dict[str, Any]

SWAGGER_VERSION = "2.0"
DEFINITIONS_PREFIX = "#/definitions/"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
SCHEMES = ["https"]

#: v3 member types of a ``oneOf``/``anyOf`` that upstream's v2 document publishes as a string
_STRING_LIKE = frozenset({"string", "integer", "number"})
#: schema keys that hold nested schemas: key -> how many (one, a list, a name -> schema map)
_NESTED = {"items": "one", "additionalProperties": "one", "properties": "map", "allOf": "list"}


def definition_ref(target: str) -> str:
    """``#/components/schemas/X`` → ``#/definitions/X``."""
    if not target.startswith(REF_PREFIX):
        raise SchemaError(f"reference outside the components: {target!r}")
    return DEFINITIONS_PREFIX + target[len(REF_PREFIX):]


def convert_schema(node: Schema) -> Schema:
    """One v3 schema (component or property) as a Swagger 2.0 schema, as a fresh dict."""
    node = dict(node)
    wrapped = node.get("allOf")
    if isinstance(wrapped, list) and len(wrapped) == 1 and set(wrapped[0]) == {"$ref"}:
        node.pop("allOf")
        node["$ref"] = wrapped[0]["$ref"]  # Swagger readers take a description beside a $ref
    alternatives = node.pop("oneOf", None) or node.pop("anyOf", None)
    if alternatives is not None and "type" not in node:
        kinds = {member.get("type") for member in alternatives}
        if kinds <= _STRING_LIKE:
            node["type"] = "string"
    out: Schema = {}
    for key, value in node.items():
        if key == "$ref":
            out[key] = definition_ref(value)
        elif _NESTED.get(key) == "one" and isinstance(value, dict):
            out[key] = convert_schema(value)
        elif _NESTED.get(key) == "map":
            out[key] = {name: convert_schema(prop) for name, prop in value.items()}
        elif _NESTED.get(key) == "list":
            out[key] = [convert_schema(member) for member in value]
        else:
            out[key] = value
    return out


def convert_parameter(param: Schema) -> Schema:
    """A v3 query/path parameter: its ``schema`` keywords move up beside name and location."""
    out = {key: value for key, value in param.items() if key != "schema"}
    out.update(param.get("schema", {}))
    return out


def _first_schema(content: dict[str, Any]) -> Schema | None:
    for media in content.values():
        if "schema" in media:
            return convert_schema(media["schema"])
    return None


def _response(response: Schema) -> Schema:
    out: Schema = {"description": response.get("description", "")}
    schema = _first_schema(response.get("content", {}))
    if schema is not None:
        out["schema"] = schema
    return out


def convert_operation(op: Schema) -> Schema:
    """One v3 operation as a Swagger 2.0 operation (body parameter, consumes, produces)."""
    out: Schema = {key: value for key, value in op.items()
                   if key in ("description", "operationId", "tags") or key.startswith("x-")}
    params = [convert_parameter(p) for p in op.get("parameters", [])]
    body = op.get("requestBody")
    if body is not None:
        out["consumes"] = list(body.get("content", {}))
        body_param: Schema = {"in": "body", "name": "body", "required": bool(body.get("required"))}
        schema = _first_schema(body.get("content", {}))
        if schema is not None:
            body_param["schema"] = schema
        params.insert(0, body_param)
    produces: dict[str, None] = {}
    for response in op.get("responses", {}).values():
        produces.update(dict.fromkeys(response.get("content", {})))
    if produces:
        out["produces"] = list(produces)
    if params:
        out["parameters"] = params
    out["responses"] = {code: _response(r) for code, r in op.get("responses", {}).items()}
    out["schemes"] = SCHEMES
    return out


def convert_path_item(item: Schema) -> Schema:
    out: Schema = {method: convert_operation(item[method]) for method in METHODS if method in item}
    if item.get("parameters"):
        out["parameters"] = [convert_parameter(p) for p in item["parameters"]]
    return out


def build(documents: Iterable[Schema]) -> Schema:
    """Merge v3 group-version documents into one Swagger 2.0 document (a fresh dict).

    A component published by several documents must be the same in each; a difference would mean
    the two group-versions disagree about a shared type, which this refuses to paper over.
    """
    paths: Schema = {}
    components: Schema = {}
    security: Schema = {}
    info: Schema = {}
    for document in documents:
        info = info or document.get("info", {})
        parts = document.get("components", {})
        security.update(parts.get("securitySchemes", {}))
        for name, schema in parts.get("schemas", {}).items():
            if components.setdefault(name, schema) != schema:
                raise SchemaError(f"component {name} differs between group-versions")
        for path, item in document.get("paths", {}).items():
            paths[path] = convert_path_item(item)
    return {
        "swagger": SWAGGER_VERSION,
        "info": dict(info),
        "paths": dict(sorted(paths.items())),
        "definitions": {name: convert_schema(components[name]) for name in sorted(components)},
        "securityDefinitions": security,
        "security": [{name: []} for name in security],
    }
