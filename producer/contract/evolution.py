"""Workflows over the schema folder: what the ``flashsale schemas`` commands compute."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from producer.contract.catalog import SchemaCatalog, SchemaFile
from producer.contract.compat import (
    CompatibilityLevel,
    CompatibilityReport,
    Incompatibility,
    LabelledSchema,
    check_compatibility,
    check_reader_writer,
)

__all__ = [
    "FieldChange",
    "SchemaDiff",
    "VersionSummary",
    "check_latest",
    "diff_versions",
    "summarize",
]


@dataclass(frozen=True)
class VersionSummary:
    family: str
    version: int
    file: str
    fingerprint: str
    fields_added: tuple[str, ...]
    fields_removed: tuple[str, ...]


def summarize(catalog: SchemaCatalog) -> list[VersionSummary]:
    """Every version of every family, with the fields it added or removed."""
    rows = []
    for family in sorted(catalog.families):
        previous: list[str] = []
        for schema in catalog.versions(family):
            names = schema.field_names
            rows.append(
                VersionSummary(
                    family=family,
                    version=schema.version,
                    file=schema.path.name,
                    fingerprint=schema.fingerprint,
                    fields_added=tuple(n for n in names if n not in previous),
                    fields_removed=tuple(n for n in previous if n not in names),
                )
            )
            previous = names
    return rows


def labelled(schema: SchemaFile) -> LabelledSchema:
    return LabelledSchema(label=schema.label, schema=schema.avro)


def check_latest(
    catalog: SchemaCatalog, family: str, level: CompatibilityLevel
) -> CompatibilityReport:
    """The family's newest version against the earlier ones, at ``level``."""
    versions = catalog.versions(family)
    return check_compatibility(labelled(versions[-1]), [labelled(v) for v in versions[:-1]], level)


@dataclass(frozen=True)
class FieldChange:
    name: str
    change: str  # "added", "removed" or "changed"
    detail: str


@dataclass(frozen=True)
class SchemaDiff:
    old: str
    new: str
    changes: tuple[FieldChange, ...]
    backward: tuple[Incompatibility, ...]  # new reads old data
    forward: tuple[Incompatibility, ...]  # old reads new data

    @property
    def full(self) -> bool:
        return not self.backward and not self.forward


_NO_DEFAULT = object()


def _describe(field: dict[str, Any]) -> str:
    default = field.get("default", _NO_DEFAULT)
    shown = "no default" if default is _NO_DEFAULT else f"default {_json(default)}"
    return f"{_json(_without_docs(field['type']))}, {shown}"


def _without_docs(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_docs(v) for k, v in value.items() if k != "doc"}
    if isinstance(value, list):
        return [_without_docs(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def diff_versions(old: SchemaFile, new: SchemaFile) -> SchemaDiff:
    """Fields added, removed and changed from ``old`` to ``new``, and the verdicts both ways."""
    old_fields = _fields(old)
    new_fields = _fields(new)
    changes = []
    for name, f in new_fields.items():
        if name not in old_fields:
            changes.append(FieldChange(name, "added", _describe(f)))
        else:
            before, after = _describe(old_fields[name]), _describe(f)
            if before != after:
                changes.append(FieldChange(name, "changed", f"{before} -> {after}"))
    for name, f in old_fields.items():
        if name not in new_fields:
            changes.append(FieldChange(name, "removed", _describe(f)))
    return SchemaDiff(
        old=old.label,
        new=new.label,
        changes=tuple(changes),
        backward=tuple(check_reader_writer(reader=labelled(new), writer=labelled(old))),
        forward=tuple(check_reader_writer(reader=labelled(old), writer=labelled(new))),
    )


def _fields(schema: SchemaFile) -> dict[str, dict[str, Any]]:
    definition = schema.definition
    if isinstance(definition, dict) and definition.get("type") == "record":
        return {f["name"]: f for f in definition.get("fields", [])}
    return {}
