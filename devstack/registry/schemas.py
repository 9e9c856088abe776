"""A schema as stored (:class:`RegisteredVersion`) and as sent (:class:`CandidateSchema`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import avro.errors
import avro.name
import avro.schema
import fastavro
import fastavro.schema

from devstack.registry.canonical import canonical_text
from devstack.registry.errors import RestError, invalid_schema, invalid_version
from producer.contract.catalog import parse_schema_text
from producer.errors import SchemaFileError

__all__ = ["CandidateSchema", "RegisteredVersion", "guid_of", "parse_version"]

MAX_ID = 2**31 - 1
MAX_SCHEMA_CHARS = 1024 * 1024


def guid_of(text: str, refs: str, metadata: str | None, rule_set: str | None) -> str:
    """A schema's GUID: like Confluent's, the MD5 of its content, written as a UUID."""
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(text.encode())
    if refs != "[]":
        digest.update(refs.encode())
    for part in (metadata, rule_set):
        if part is not None:
            digest.update(part.encode())
    return str(uuid.UUID(bytes=digest.digest()))


@dataclass(frozen=True)
class RegisteredVersion:
    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool = False
    refs: str = "[]"
    metadata: str | None = None
    rule_set: str | None = None

    @property
    def guid(self) -> str:
        return guid_of(self.schema, self.refs, self.metadata, self.rule_set)

    def extras(self) -> dict[str, Any]:
        """references, metadata and ruleSet, each only when present (as Confluent omits them)."""
        answer: dict[str, Any] = {}
        if self.refs != "[]":
            answer["references"] = json.loads(self.refs)
        if self.metadata is not None:
            answer["metadata"] = json.loads(self.metadata)
        if self.rule_set is not None:
            answer["ruleSet"] = json.loads(self.rule_set)
        return answer

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "subject": self.subject,
            "version": self.version,
            "id": self.schema_id,
            "guid": self.guid,
            "schemaType": "AVRO",
            **self.extras(),
            "schema": self.schema,
        }
        if self.deleted:
            answer["deleted"] = True
        return answer

    def registered_json(self) -> dict[str, Any]:
        """The answer to a registration (Confluent's ``RegisterSchemaResponse``)."""
        return {
            "id": self.schema_id,
            "version": self.version,
            "guid": self.guid,
            "schemaType": "AVRO",
            **self.extras(),
            "schema": self.schema,
        }


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class CandidateSchema:
    """A schema sent by a client, parsed, in both identity forms, with what came with it."""

    text: str  # Confluent's canonical text: identity without ?normalize
    normalized: str  # the normalized canonical text: identity with ?normalize=true
    parsed: avro.schema.Schema
    refs: str = "[]"
    metadata: str | None = None
    rule_set: str | None = None
    explicit_id: int | None = None
    explicit_version: int | None = None
    sent: frozenset[str] = field(default_factory=frozenset)  # the keys sent, not null

    @classmethod
    def from_request(cls, body: Any, resolve: Resolver | None = None) -> CandidateSchema:
        """Parse a request's schema; ``resolve`` turns its references into the texts of
        every schema they name, dependencies first (and fixes ``-1`` to a version)."""
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise invalid_schema("the body needs a 'schema' string")
        if len(body["schema"]) > MAX_SCHEMA_CHARS:  # Kafka's record limit, in Confluent
            raise RestError(
                422,
                42209,
                f"Schema is too large: {len(body['schema'])} characters, the limit is "
                f"{MAX_SCHEMA_CHARS}",
            )
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type != "AVRO":
            raise invalid_schema(f"only AVRO is supported here, not {schema_type}")
        refs = check_references(body.get("references"))
        dependencies: list[str] = []
        if refs:
            if resolve is None:
                raise invalid_schema("schema references are not accepted here")
            refs, dependencies = resolve(refs)
        definition, parsed = parse_with(body["schema"], dependencies)
        for name in ("metadata", "ruleSet"):
            if body.get(name) is not None and not isinstance(body[name], dict):
                raise invalid_schema(f"'{name}' must be an object")
        return cls(
            text=canonical_text(definition),
            normalized=canonical_text(definition, normalize=True),
            parsed=parsed,
            refs=json.dumps(refs, separators=(",", ":")),
            metadata=_json_or_none(body.get("metadata")),
            rule_set=_json_or_none(body.get("ruleSet")),
            explicit_id=_optional_number(body, "id", "id"),
            explicit_version=_optional_number(body, "version", "version"),
            sent=frozenset(k for k, v in body.items() if v is not None),
        )

    def form(self, normalize: bool) -> str:
        return self.normalized if normalize else self.text


Reference = dict[str, Any]  # {"name", "subject", "version"}
Resolver = Callable[[list[Reference]], tuple[list[Reference], list[str]]]


def check_references(sent: Any) -> list[Reference]:
    """The references of a request, each a name, a subject and a version (-1: latest)."""
    if sent is None:
        return []
    if not isinstance(sent, list):
        raise invalid_schema("'references' must be a list")
    refs = []
    for ref in sent:
        if not (
            isinstance(ref, dict)
            and isinstance(ref.get("name"), str)
            and isinstance(ref.get("subject"), str)
            and isinstance(ref.get("version"), int)
            and not isinstance(ref.get("version"), bool)
            and (ref["version"] == -1 or 1 <= ref["version"] <= MAX_ID)
        ):
            raise invalid_schema(f"a reference needs a name, a subject and a version: {ref!r}")
        refs.append({"name": ref["name"], "subject": ref["subject"], "version": ref["version"]})
    return refs


def parse_with(text: str, dependencies: list[str]) -> tuple[Any, avro.schema.Schema]:
    """Parse ``text`` (checked by fastavro and Apache Avro) where the named types of the
    ``dependencies`` (schema texts, dependencies first) are known by name. Answers the
    JSON as sent, and the parsed schema."""
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise invalid_schema(f"invalid JSON at {where}: {exc.msg}") from exc
    plain = _unwrap(definition)
    if not dependencies:
        try:
            _, _, parsed = parse_schema_text(json.dumps(plain), "schema")
        except SchemaFileError as exc:
            raise invalid_schema(exc.problem) from exc
        return definition, parsed
    named: dict[str, Any] = {}
    names = avro.name.Names()
    try:
        for dependency in dependencies:
            fastavro.parse_schema(_unwrap(json.loads(dependency)), named_schemas=named)
            avro.schema.make_avsc_object(_unwrap(json.loads(dependency)), names)
        fastavro.parse_schema(plain, named_schemas=named)
        parsed = avro.schema.make_avsc_object(plain, names)
    except (avro.errors.AvroException, fastavro.schema.SchemaParseException) as exc:
        raise invalid_schema(f"invalid Avro schema: {exc}") from exc
    except (ValueError, TypeError, KeyError) as exc:  # fastavro's other complaints
        raise invalid_schema(f"invalid Avro schema: {exc}") from exc
    return definition, parsed


_KEYWORDS = frozenset({"record", "error", "enum", "fixed", "array", "map"})


def _unwrap(node: Any) -> Any:
    """``{"type": "some.Name"}`` as the name alone: Java Avro reads both, Python's parsers
    only the second."""
    if isinstance(node, list):
        return [_unwrap(n) for n in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if isinstance(kind, str) and kind not in _KEYWORDS and set(node) == {"type"}:
        return kind
    return {
        k: _unwrap(v) if k in ("type", "items", "values", "fields") else v for k, v in node.items()
    }


def _optional_number(body: dict[str, Any], key: str, what: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value > MAX_ID:
        raise RestError(422, 42201 if key == "id" else 42202, f"Invalid {what}: {value!r}")
    return value if value > 0 else None


def parse_version(version: str) -> int:
    if version in ("latest", "-1"):
        return -1
    try:
        number = int(version)
    except ValueError:
        number = 0
    if number < 1 or number > MAX_ID:
        raise invalid_version(version)
    return number
