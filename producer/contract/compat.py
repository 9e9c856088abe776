"""Offline schema compatibility, judged by Apache Avro's own checker.

Avro's ``ReaderWriterCompatibilityChecker`` answers one question: can a *reader*
schema decode data written with a *writer* schema? A compatibility level is a set of
such questions between a new schema and the versions that already exist:

* BACKWARD: the new schema reads data written with the latest existing version;
* FORWARD: the latest existing version reads data written with the new schema;
* FULL: both; the ``_TRANSITIVE`` forms ask against every existing version.

The local Schema Registry (``devstack``) judges registrations with this module, so the
offline check and the registry can never disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
)

__all__ = [
    "CompatibilityLevel",
    "CompatibilityReport",
    "Direction",
    "Incompatibility",
    "LabelledSchema",
    "check_compatibility",
    "check_reader_writer",
]


class Direction(str, enum.Enum):
    """Which way data flows in one reader/writer question."""

    BACKWARD = "backward"  # the new schema reads old data
    FORWARD = "forward"  # old schemas read new data


class CompatibilityLevel(str, enum.Enum):
    """Confluent Schema Registry's seven compatibility levels."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def directions(self) -> tuple[Direction, ...]:
        if self is CompatibilityLevel.NONE:
            return ()
        if self.value.startswith("BACKWARD"):
            return (Direction.BACKWARD,)
        if self.value.startswith("FORWARD"):
            return (Direction.FORWARD,)
        return (Direction.BACKWARD, Direction.FORWARD)

    @classmethod
    def parse(cls, text: str) -> CompatibilityLevel:
        try:
            return cls(text.strip().upper())
        except ValueError:
            known = ", ".join(level.value for level in cls)
            raise ValueError(f"unknown compatibility level '{text}' (known: {known})") from None


@dataclass(frozen=True)
class LabelledSchema:
    """A parsed Avro schema and the name people know it by (``v2``, ``reader.avsc``)."""

    label: str
    schema: avro.schema.Schema


@dataclass(frozen=True)
class Incompatibility:
    """One reason why ``reader`` cannot decode data written with ``writer``."""

    reader: str
    writer: str
    kind: str
    location: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"field '{self.field}'" if self.field else f"at {self.location}"
        return (
            f"{self.reader} (reader) cannot read {self.writer} (writer) data: "
            f"{where}: {self.kind}: {self.message}"
        )


@dataclass(frozen=True)
class CompatibilityReport:
    """The verdict on a new schema against existing versions at one level."""

    level: CompatibilityLevel
    new: str
    checked_against: tuple[str, ...]
    problems: tuple[Incompatibility, ...]

    @property
    def compatible(self) -> bool:
        return not self.problems

    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]


class _FieldTracingChecker(ReaderWriterCompatibilityChecker):
    """Avro's checker, noting the verdict of each field it compares.

    Avro merges every problem into one result whose messages and locations are two
    unordered sets, which loses which message belongs to which field. The checker
    compares a record field by calling ``get_compatibility`` on the field's types, so
    noting those calls pairs each problem with its field; the verdict stays Avro's.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.field_results: list[tuple[list[str], Any]] = []

    def get_compatibility(
        self,
        reader: avro.schema.Schema,
        writer: avro.schema.Schema,
        reference_token: str = ReaderWriterCompatibilityChecker.ROOT_REFERENCE_TOKEN,
        location: list[str] | None = None,
    ) -> Any:
        result = super().get_compatibility(reader, writer, reference_token, location)
        if (
            location
            and len(location) >= 2
            and location[-2] == "fields"
            and result.compatibility is SchemaCompatibilityType.incompatible
        ):
            self.field_results.append((list(location), result))
        return result


def check_reader_writer(reader: LabelledSchema, writer: LabelledSchema) -> list[Incompatibility]:
    """Why ``reader`` cannot decode ``writer``'s data; empty when it can."""
    checker = _FieldTracingChecker()
    result = checker.get_compatibility(reader.schema, writer.schema)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []

    def problem(kinds: Any, location: str, message: str) -> Incompatibility:
        kind = ", ".join(sorted({k.name.upper() for k in kinds})) or "INCOMPATIBLE"
        return Incompatibility(
            reader=reader.label,
            writer=writer.label,
            kind=kind,
            location=location,
            field=_field_at(reader.schema, location),
            message=message,
        )

    problems: list[Incompatibility] = []
    explained: set[str] = set()
    # Innermost fields first: an outer record field's result repeats its inner ones.
    paths = ["/".join(loc).lstrip("/") for loc, _ in checker.field_results]
    for (_, field_result), path in zip(checker.field_results, paths, strict=True):
        if any(other != path and other.startswith(path + "/") for other in paths):
            continue
        explained |= field_result.messages
        messages = "; ".join(_explain(m) for m in sorted(field_result.messages))
        problems.append(problem(field_result.incompatibilities, "/" + path, messages))
    # What is left was found by the record comparison itself: a reader field that the
    # writer lacks and that has no default (the message is the field's name), or a
    # record name that differs.
    for message in sorted(result.messages - explained):
        if message.startswith("expected: "):
            problems.append(
                problem(
                    [SchemaIncompatibilityType.name_mismatch],
                    "/name",
                    f"record name differs from the writer's ({message})",
                )
            )
            continue
        location = _reader_field_location(reader.schema, message)
        problems.append(
            problem(
                [SchemaIncompatibilityType.reader_field_missing_default_value],
                location,
                f"reader field '{message}' has no default and the writer does not have it",
            )
        )
    return problems


def _explain(message: str) -> str:
    if message.startswith("{") and message.endswith("}"):
        return f"writer enum symbols {message} are missing from the reader enum (it has no default)"
    return message


def _reader_field_location(schema: avro.schema.Schema, name: str) -> str:
    if isinstance(schema, avro.schema.RecordSchema):
        for index, field in enumerate(schema.fields):
            if field.name == name:
                return f"/fields/{index}"
    return "/"


def check_compatibility(
    new: LabelledSchema,
    existing: Sequence[LabelledSchema],
    level: CompatibilityLevel,
) -> CompatibilityReport:
    """Judge ``new`` against ``existing`` (oldest first) the way the registry would."""
    targets = list(existing) if level.transitive else list(existing[-1:])
    problems: list[Incompatibility] = []
    for old in targets:
        for direction in level.directions:
            if direction is Direction.BACKWARD:
                problems += check_reader_writer(reader=new, writer=old)
            else:
                problems += check_reader_writer(reader=old, writer=new)
    return CompatibilityReport(
        level=level,
        new=new.label,
        checked_against=tuple(t.label for t in targets) if level.directions else (),
        problems=tuple(problems),
    )


def _field_at(schema: avro.schema.Schema, location: str) -> str | None:
    """Turn Avro's location (``/fields/3/type/symbols``) into a dotted field path."""
    parts = [p for p in location.strip("/").split("/") if p]
    names: list[str] = []
    node: Any = schema
    i = 0
    while i < len(parts):
        part = parts[i]
        if part == "fields" and i + 1 < len(parts) and isinstance(node, avro.schema.RecordSchema):
            index = int(parts[i + 1])
            if index >= len(node.fields):
                break
            field = node.fields[index]
            names.append(field.name)
            node = field.type
            i += 2
            continue
        if part == "type":
            i += 1
            continue
        if part.isdigit() and isinstance(node, avro.schema.UnionSchema):
            node = node.schemas[int(part)]
            i += 1
            continue
        if part == "items" and isinstance(node, avro.schema.ArraySchema):
            node = node.items
        elif part == "values" and isinstance(node, avro.schema.MapSchema):
            node = node.values
        i += 1
    return ".".join(names) or None
