"""The registry's OpenAPI document: every path, parameter, status and answer shape.

Served at ``/openapi.json``; the tests check that it names exactly the routes the
app serves and, with schemathesis, that every answer matches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["openapi_document"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_ANSWER_TYPES = (CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json")
LEVELS = [
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
]
_MODES = ["READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT", "FORWARD"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_OBJECT = {"type": "object", "additionalProperties": True}
# What every answer carrying a schema holds of it (the schema itself and what was
# registered with it), and where it is registered.
_SCHEMA_FIELDS = {
    "schemaType": {"type": "string", "enum": ["AVRO"]},
    "schema": {"type": "string"},
    "guid": {"type": "string", "format": "uuid"},
    "references": {"type": "array", "items": _ref("Reference")},
    "metadata": _OBJECT,
    "ruleSet": _OBJECT,
}
_ID = {"type": "integer", "minimum": 1}
_VERSION = {"type": "integer", "minimum": 1}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_INTEGERS = {"type": "array", "items": {"type": "integer"}}

_COMPONENTS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error_code", "message"],
        "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}},
        "additionalProperties": False,
    },
    "Reference": {
        "type": "object",
        "required": ["name", "subject", "version"],
        "properties": {
            "name": {"type": "string"},
            "subject": {"type": "string"},
            "version": {"type": "integer"},
        },
    },
    "SchemaString": {
        "type": "object",
        "required": ["schema", "schemaType", "guid"],
        "properties": {"subject": {"type": "string"}, "version": _VERSION, **_SCHEMA_FIELDS},
        "additionalProperties": False,
    },
    "SubjectVersion": {
        "type": "object",
        "required": ["subject", "version", "id", "guid", "schemaType", "schema"],
        "properties": {
            "subject": {"type": "string"},
            "version": _VERSION,
            "id": _ID,
            **_SCHEMA_FIELDS,
            "deleted": {"type": "boolean", "enum": [True]},
        },
        "additionalProperties": False,
    },
    "Registered": {
        "type": "object",
        "required": ["id", "version", "guid", "schemaType", "schema"],
        "properties": {"id": _ID, "version": _VERSION, **_SCHEMA_FIELDS},
        "additionalProperties": False,
    },
    "SchemaRequest": {
        "type": "object",
        "required": ["schema"],
        "properties": {
            "schema": {"type": "string"},
            "schemaType": {"type": "string"},
            "references": {"type": "array", "items": _ref("Reference")},
            "metadata": _OBJECT,
            "ruleSet": _OBJECT,
            "id": {"type": "integer"},
            "version": {"type": "integer"},
        },
    },
    "Compatibility": {
        "type": "object",
        "required": ["is_compatible"],
        "properties": {"is_compatible": {"type": "boolean"}, "messages": _STRINGS},
        "additionalProperties": False,
    },
    "Level": {
        "type": "object",
        "minProperties": 1,
        "properties": {
            "compatibilityLevel": {"type": "string", "enum": LEVELS},
            "normalize": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "LevelUpdate": {
        "type": "object",
        "properties": {
            "compatibility": {"type": "string", "enum": LEVELS},
            "normalize": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "Mode": {
        "type": "object",
        "required": ["mode"],
        "properties": {"mode": {"type": "string", "enum": _MODES, "nullable": True}},
        "additionalProperties": False,
    },
    "SubjectVersionPair": {
        "type": "object",
        "required": ["subject", "version"],
        "properties": {"subject": {"type": "string"}, "version": {"type": "integer"}},
        "additionalProperties": False,
    },
}

# Every request may be refused for its media types (415 body, 406 Accept, 413 size).
_NEGOTIATION = {"406": "Accept names none of the JSON types", "415": "unsupported body type"}
_WITH_BODY = {**_NEGOTIATION, "400": "malformed JSON", "413": "body too large"}


def _answer(schema: Any) -> dict[str, Any]:
    return {"content": {media: {"schema": schema} for media in _ANSWER_TYPES}}


def _operation(
    summary: str,
    ok: Any,
    errors: dict[str, str],
    params: Sequence[dict[str, Any]] = (),
    request: Any = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", **_answer(ok)}}
    for status, what in {**(_WITH_BODY if request else _NEGOTIATION), **errors}.items():
        responses[status] = {"description": what, **_answer(_ref("Error"))}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        operation["parameters"] = list(params)
    if request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {CONTENT_TYPE: {"schema": request}},
        }
    return operation


def _path(name: str, schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: Any = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema or {"type": "boolean"}}


SUBJECT = _path("subject", {"type": "string", "minLength": 1})
VERSION = _path("version", {"type": "string", "minLength": 1})
ID = _path("id", {"type": "integer"})
_ANY_JSON: dict[str, Any] = {}  # a raw schema: any JSON
_SUBJECT_ERRORS = {"404": "40401 subject not found"}
_VERSION_ERRORS = {"404": "40401 subject, 40402 version not found", "422": "42202 bad version"}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 description of every route the registry serves."""
    level_ops = {
        "get": _operation(
            "Compatibility level",
            _ref("Level"),
            {"404": "40408 none set"},
            [_query("defaultToGlobal")],
        ),
        "put": _operation(
            "Set a compatibility level",
            _ref("LevelUpdate"),
            {"422": "42203 invalid level, 42205 read-only"},
            request=_ref("LevelUpdate"),
        ),
        "delete": _operation(
            "Remove a compatibility level",
            _ref("Level"),
            {"404": "40401 none set", "422": "42205 read-only"},
        ),
    }
    mode_ops = {
        "get": _operation(
            "Mode", _ref("Mode"), {"404": "40409 none set"}, [_query("defaultToGlobal")]
        ),
        "put": _operation(
            "Set (or with null clear) a mode",
            _ref("Mode"),
            {"422": "42204 invalid mode, 42205 IMPORT over schemas"},
            [_query("force")],
            _ref("Mode"),
        ),
        "delete": _operation("Remove a mode", _ref("Mode"), {"404": "40401 none set"}),
    }
    subject_level_ops = {
        k: {**v, "parameters": [SUBJECT, *v.get("parameters", [])]} for k, v in level_ops.items()
    }
    subject_mode_ops = {
        k: {**v, "parameters": [SUBJECT, *v.get("parameters", [])]} for k, v in mode_ops.items()
    }
    compatibility_errors = {
        "404": "40402 version not found",
        "422": "42201 invalid schema, 42202 bad version, 42209 too large",
    }
    paths: dict[str, Any] = {
        "/": {"get": _operation("Health", {"type": "object", "maxProperties": 0}, {})},
        "/schemas": {
            "get": _operation(
                "Every subject-version",
                {"type": "array", "items": _ref("SubjectVersion")},
                {},
                [
                    _query("subjectPrefix", {"type": "string"}),
                    _query("deleted"),
                    _query("latestOnly"),
                ],
            )
        },
        "/schemas/types": {"get": _operation("Schema types", _STRINGS, {})},
        "/schemas/ids/{id}": {
            "get": _operation(
                "Schema by id",
                _ref("SchemaString"),
                {"404": "40403"},
                [ID, _query("subject", {"type": "string"})],
            )
        },
        "/schemas/ids/{id}/schema": {
            "get": _operation("Raw schema by id", _ANY_JSON, {"404": "40403"}, [ID])
        },
        "/schemas/ids/{id}/versions": {
            "get": _operation(
                "Subject-versions of an id",
                {"type": "array", "items": _ref("SubjectVersionPair")},
                {"404": "40403"},
                [ID, _query("deleted")],
            )
        },
        "/schemas/ids/{id}/subjects": {
            "get": _operation(
                "Subjects of an id", _STRINGS, {"404": "40403"}, [ID, _query("deleted")]
            )
        },
        "/schemas/guids/{guid}": {
            "get": _operation(
                "Schema by GUID",
                _ref("SchemaString"),
                {"404": "40403"},
                [_path("guid", {"type": "string"})],
            )
        },
        "/subjects": {
            "get": _operation(
                "Subjects",
                _STRINGS,
                {},
                [
                    _query("deleted"),
                    _query("deletedOnly"),
                    _query("subjectPrefix", {"type": "string"}),
                ],
            )
        },
        "/subjects/{subject}": {
            "post": _operation(
                "Look a schema up",
                _ref("SubjectVersion"),
                {"404": "40401, 40403", "422": "42201 invalid, 42209 too large"},
                [SUBJECT, _query("normalize"), _query("deleted")],
                _ref("SchemaRequest"),
            ),
            "delete": _operation(
                "Delete a subject",
                _INTEGERS,
                {"404": "40401, 40404, 40405", "422": "42205 read-only"},
                [SUBJECT, _query("permanent")],
            ),
        },
        "/subjects/{subject}/versions": {
            "get": _operation(
                "Versions",
                _INTEGERS,
                _SUBJECT_ERRORS,
                [SUBJECT, _query("deleted"), _query("deletedOnly")],
            ),
            "post": _operation(
                "Register",
                _ref("Registered"),
                {
                    "409": "40901 incompatible",
                    "422": "42201 invalid, 42202, 42205 mode, 42209 too large",
                },
                [SUBJECT, _query("normalize")],
                _ref("SchemaRequest"),
            ),
        },
        "/subjects/{subject}/versions/{version}": {
            "get": _operation(
                "One version",
                _ref("SubjectVersion"),
                _VERSION_ERRORS,
                [SUBJECT, VERSION, _query("deleted")],
            ),
            "delete": _operation(
                "Delete a version",
                {"type": "integer"},
                {"404": "40401, 40402, 40406, 40407", "422": "42202 bad version, 42205 read-only"},
                [SUBJECT, VERSION, _query("permanent")],
            ),
        },
        "/subjects/{subject}/versions/{version}/schema": {
            "get": _operation(
                "Raw schema of a version",
                _ANY_JSON,
                _VERSION_ERRORS,
                [SUBJECT, VERSION, _query("deleted")],
            )
        },
        "/subjects/{subject}/versions/{version}/referencedby": {
            "get": _operation(
                "Ids referencing a version", _INTEGERS, _VERSION_ERRORS, [SUBJECT, VERSION]
            )
        },
        "/subjects/{subject}/metadata": {
            "get": _operation(
                "Latest version with metadata",
                _ref("SubjectVersion"),
                {"404": "40401, 40403", "422": "42201 key without value"},
                [
                    SUBJECT,
                    _query("key", {"type": "string"}),
                    _query("value", {"type": "string"}),
                    _query("deleted"),
                ],
            )
        },
        "/compatibility/subjects/{subject}/versions": {
            "post": _operation(
                "Check against the versions the level names",
                _ref("Compatibility"),
                compatibility_errors,
                [SUBJECT, _query("verbose"), _query("normalize")],
                _ref("SchemaRequest"),
            )
        },
        "/compatibility/subjects/{subject}/versions/{version}": {
            "post": _operation(
                "Check against one version",
                _ref("Compatibility"),
                compatibility_errors,
                [SUBJECT, VERSION, _query("verbose"), _query("normalize")],
                _ref("SchemaRequest"),
            )
        },
        "/config": level_ops,
        "/config/{subject}": subject_level_ops,
        "/mode": mode_ops,
        "/mode/{subject}": subject_mode_ops,
        "/contexts": {"get": _operation("Contexts", _STRINGS, {})},
        "/associations/resources/{namespace}/{name}": {
            "get": _operation(
                "Associations (none are kept)",
                {"type": "array", "maxItems": 0},
                {},
                [_path("namespace", {"type": "string"}), _path("name", {"type": "string"})],
            )
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "flashsale devstack Schema Registry", "version": "1"},
        "paths": paths,
        "components": {"schemas": _COMPONENTS},
    }
