"""The gnostic ``openapi.v2`` messages kubectl ≤ 1.27 reads /openapi/v2 into, as data.

Field numbers are those of gnostic's ``openapiv2/OpenAPIv2.proto``; each message maps the Swagger
2.0 JSON keys to (field number, type). Types: ``string``, ``bool``, ``int64``, ``double``, ``Any``
(a JSON value carried as YAML text), another message's name, ``[]T`` for repeated fields.
gnostic models JSON objects with free keys in three ways, each a field of :class:`Message`:
vendor extensions (``x-...`` keys) become ``repeated NamedAny``; maps (``definitions``,
``properties``, ``paths``, ``responses``) become ``repeated Named<T>`` entries; and a value that
may take several shapes (a parameter, a response, ``additionalProperties``) is a ``oneof`` wrapper,
chosen by :class:`Choice`. Only the messages our documents use are listed; the encoder rejects
anything else, so a new kind of schema fails loudly instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Choice:
    """A ``oneof`` wrapper: ``by`` names the selector (see gnostic.SELECTORS) whose answer picks
    the branch; ``default`` is used when no branch matches (None: an error)."""

    by: str
    branches: Mapping[str, tuple[int, str]]
    default: tuple[int, str] | None = None


@dataclass(frozen=True)
class Message:
    """One message: JSON key -> (number, type), plus the free-key and wrapper behaviours."""

    fields: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    #: number of ``repeated NamedAny vendor_extension`` (0: the message has none)
    extensions: int = 0
    #: map-like: every other key becomes a ``Named<T>{name = 1, value = 2}`` at (number, T)
    named: tuple[int, str] | None = None
    #: the JSON value itself (one item or a list of them) is this repeated field
    wrap: tuple[int, str] | None = None
    choice: Choice | None = None


#: the validation keywords of PathParameterSubSchema and HeaderParameterSubSchema (same numbers)
_PATH_PARAMETER = {
    "required": (1, "bool"), "in": (2, "string"), "description": (3, "string"), "name": (4, "string"),
    "type": (5, "string"), "format": (6, "string"), "items": (7, "PrimitivesItems"),
    "collectionFormat": (8, "string"), "default": (9, "Any"), "maximum": (10, "double"),
    "exclusiveMaximum": (11, "bool"), "minimum": (12, "double"), "exclusiveMinimum": (13, "bool"),
    "maxLength": (14, "int64"), "minLength": (15, "int64"), "pattern": (16, "string"),
    "maxItems": (17, "int64"), "minItems": (18, "int64"), "uniqueItems": (19, "bool"),
    "enum": (20, "[]Any"), "multipleOf": (21, "double"),
}

#: QueryParameterSubSchema and FormDataParameterSubSchema (same numbers; allowEmptyValue is 5)
_QUERY_PARAMETER = {
    "required": (1, "bool"), "in": (2, "string"), "description": (3, "string"), "name": (4, "string"),
    "allowEmptyValue": (5, "bool"), "type": (6, "string"), "format": (7, "string"),
    "items": (8, "PrimitivesItems"), "collectionFormat": (9, "string"), "default": (10, "Any"),
    "maximum": (11, "double"), "exclusiveMaximum": (12, "bool"), "minimum": (13, "double"),
    "exclusiveMinimum": (14, "bool"), "maxLength": (15, "int64"), "minLength": (16, "int64"),
    "pattern": (17, "string"), "maxItems": (18, "int64"), "minItems": (19, "int64"),
    "uniqueItems": (20, "bool"), "enum": (21, "[]Any"), "multipleOf": (22, "double"),
}

MESSAGES: dict[str, Message] = {
    "Document": Message({
        "swagger": (1, "string"), "info": (2, "Info"), "host": (3, "string"), "basePath": (4, "string"),
        "schemes": (5, "[]string"), "consumes": (6, "[]string"), "produces": (7, "[]string"),
        "paths": (8, "Paths"), "definitions": (9, "Definitions"), "parameters": (10, "ParameterDefinitions"),
        "responses": (11, "ResponseDefinitions"), "security": (12, "[]SecurityRequirement"),
        "securityDefinitions": (13, "SecurityDefinitions"), "tags": (14, "[]Tag"),
        "externalDocs": (15, "ExternalDocs"),
    }, extensions=16),
    "Info": Message({
        "title": (1, "string"), "version": (2, "string"), "description": (3, "string"),
        "termsOfService": (4, "string"), "contact": (5, "Contact"), "license": (6, "License"),
    }, extensions=7),
    "Contact": Message({"name": (1, "string"), "url": (2, "string"), "email": (3, "string")}, extensions=4),
    "License": Message({"name": (1, "string"), "url": (2, "string")}, extensions=3),
    "Tag": Message({"name": (1, "string"), "description": (2, "string"), "externalDocs": (3, "ExternalDocs")},
                   extensions=4),
    "ExternalDocs": Message({"description": (1, "string"), "url": (2, "string")}, extensions=3),
    "Paths": Message(extensions=1, named=(2, "PathItem")),
    "PathItem": Message({
        "$ref": (1, "string"), "get": (2, "Operation"), "put": (3, "Operation"), "post": (4, "Operation"),
        "delete": (5, "Operation"), "options": (6, "Operation"), "head": (7, "Operation"),
        "patch": (8, "Operation"), "parameters": (9, "[]ParametersItem"),
    }, extensions=10),
    "Operation": Message({
        "tags": (1, "[]string"), "summary": (2, "string"), "description": (3, "string"),
        "externalDocs": (4, "ExternalDocs"), "operationId": (5, "string"), "produces": (6, "[]string"),
        "consumes": (7, "[]string"), "parameters": (8, "[]ParametersItem"), "responses": (9, "Responses"),
        "schemes": (10, "[]string"), "deprecated": (11, "bool"), "security": (12, "[]SecurityRequirement"),
    }, extensions=13),
    "ParametersItem": Message(choice=Choice("$ref", {"ref": (2, "JsonReference")}, (1, "Parameter"))),
    "Parameter": Message(choice=Choice("in", {"body": (1, "BodyParameter")}, (2, "NonBodyParameter"))),
    "NonBodyParameter": Message(choice=Choice("in", {
        "header": (1, "HeaderParameterSubSchema"), "formData": (2, "FormDataParameterSubSchema"),
        "query": (3, "QueryParameterSubSchema"), "path": (4, "PathParameterSubSchema"),
    })),
    "BodyParameter": Message({
        "description": (1, "string"), "name": (2, "string"), "in": (3, "string"), "required": (4, "bool"),
        "schema": (5, "Schema"),
    }, extensions=6),
    "HeaderParameterSubSchema": Message(_PATH_PARAMETER, extensions=22),
    "PathParameterSubSchema": Message(_PATH_PARAMETER, extensions=22),
    "QueryParameterSubSchema": Message(_QUERY_PARAMETER, extensions=23),
    "FormDataParameterSubSchema": Message(_QUERY_PARAMETER, extensions=23),
    "PrimitivesItems": Message({
        "type": (1, "string"), "format": (2, "string"), "items": (3, "PrimitivesItems"),
        "collectionFormat": (4, "string"), "default": (5, "Any"), "maximum": (6, "double"),
        "exclusiveMaximum": (7, "bool"), "minimum": (8, "double"), "exclusiveMinimum": (9, "bool"),
        "maxLength": (10, "int64"), "minLength": (11, "int64"), "pattern": (12, "string"),
        "maxItems": (13, "int64"), "minItems": (14, "int64"), "uniqueItems": (15, "bool"),
        "enum": (16, "[]Any"), "multipleOf": (17, "double"),
    }, extensions=18),
    "Responses": Message(extensions=2, named=(1, "ResponseValue")),
    "ResponseValue": Message(choice=Choice("$ref", {"ref": (2, "JsonReference")}, (1, "Response"))),
    "Response": Message({"description": (1, "string"), "schema": (2, "SchemaItem")}, extensions=5),
    "SchemaItem": Message(choice=Choice("type", {"file": (2, "FileSchema")}, (1, "Schema"))),
    "FileSchema": Message({
        "format": (1, "string"), "title": (2, "string"), "description": (3, "string"), "default": (4, "Any"),
        "required": (5, "[]string"), "type": (6, "string"), "readOnly": (7, "bool"),
        "externalDocs": (8, "ExternalDocs"), "example": (9, "Any"),
    }, extensions=10),
    "Schema": Message({
        "$ref": (1, "string"), "format": (2, "string"), "title": (3, "string"), "description": (4, "string"),
        "default": (5, "Any"), "multipleOf": (6, "double"), "maximum": (7, "double"),
        "exclusiveMaximum": (8, "bool"), "minimum": (9, "double"), "exclusiveMinimum": (10, "bool"),
        "maxLength": (11, "int64"), "minLength": (12, "int64"), "pattern": (13, "string"),
        "maxItems": (14, "int64"), "minItems": (15, "int64"), "uniqueItems": (16, "bool"),
        "maxProperties": (17, "int64"), "minProperties": (18, "int64"), "required": (19, "[]string"),
        "enum": (20, "[]Any"), "additionalProperties": (21, "AdditionalPropertiesItem"),
        "type": (22, "TypeItem"), "items": (23, "ItemsItem"), "allOf": (24, "[]Schema"),
        "properties": (25, "Properties"), "discriminator": (26, "string"), "readOnly": (27, "bool"),
        "externalDocs": (29, "ExternalDocs"), "example": (30, "Any"),
    }, extensions=31),
    "AdditionalPropertiesItem": Message(choice=Choice("json", {"bool": (2, "bool")}, (1, "Schema"))),
    "TypeItem": Message(wrap=(1, "string")),
    "ItemsItem": Message(wrap=(1, "Schema")),
    "Properties": Message(named=(1, "Schema")),
    "Definitions": Message(named=(1, "Schema")),
    "ParameterDefinitions": Message(named=(1, "Parameter")),
    "ResponseDefinitions": Message(named=(1, "Response")),
    "JsonReference": Message({"$ref": (1, "string"), "description": (2, "string")}),
    "SecurityDefinitions": Message(named=(1, "SecurityDefinitionsItem")),
    "SecurityDefinitionsItem": Message(choice=Choice("type", {
        "basic": (1, "BasicAuthenticationSecurity"), "apiKey": (2, "ApiKeySecurity"),
    })),
    "BasicAuthenticationSecurity": Message({"type": (1, "string"), "description": (2, "string")},
                                           extensions=3),
    "ApiKeySecurity": Message({
        "type": (1, "string"), "name": (2, "string"), "in": (3, "string"), "description": (4, "string"),
    }, extensions=5),
    "SecurityRequirement": Message(named=(1, "StringArray")),
    "StringArray": Message(wrap=(1, "string")),
}

#: ``Any {google.protobuf.Any value = 1; string yaml = 2}``: we always fill ``yaml``
ANY_YAML = 2
#: ``Named<T> {string name = 1; T value = 2}``
NAMED_NAME, NAMED_VALUE = 1, 2
