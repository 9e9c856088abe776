"""A schema as stored (:class:`RegisteredVersion`) and as sent (:class:`CandidateSchema`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import avro.schema

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
    def from_request(cls, body: Any) -> CandidateSchema:
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
        if body.get("references"):
            raise invalid_schema("schema references are not supported here")
        try:
            definition, _, parsed = parse_schema_text(body["schema"], "schema")
        except SchemaFileError as exc:
            raise invalid_schema(exc.problem) from exc
        for name in ("metadata", "ruleSet"):
            if body.get(name) is not None and not isinstance(body[name], dict):
                raise invalid_schema(f"'{name}' must be an object")
        return cls(
            text=canonical_text(definition),
            normalized=canonical_text(definition, normalize=True),
            parsed=parsed,
            metadata=_json_or_none(body.get("metadata")),
            rule_set=_json_or_none(body.get("ruleSet")),
            explicit_id=_optional_number(body, "id", "id"),
            explicit_version=_optional_number(body, "version", "version"),
            sent=frozenset(k for k, v in body.items() if v is not None),
        )

    def form(self, normalize: bool) -> str:
        return self.normalized if normalize else self.text


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
