"""Schema Registry workflows: register the contract deliberately, check it, read it back.

Registering is always an explicit step (the producer never auto-registers): the
compatibility level first, then the key schema and every event version, oldest first,
then the shop's product record under its products topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from confluent_kafka.schema_registry.error import SchemaRegistryError

from producer.contract.catalog import (
    EVENT_FAMILY,
    KEY_FAMILY,
    PRODUCT_FAMILY,
    SchemaCatalog,
    SchemaFile,
    canonical_fingerprint,
)
from producer.contract.compat import CompatibilityLevel
from producer.contract.readers import Writer, writer_from_text
from producer.errors import (
    IncompatibleSchemaError,
    RegistryError,
    UsageError,
)
from producer.events import DEFAULT_TOPIC, products_topic
from producer.registry.client import Registry, key_subject, number, value_subject

__all__ = [
    "CopiedVersion",
    "RegisteredText",
    "Registration",
    "RegistryCheck",
    "RegistryIdCollision",
    "StatusRow",
    "check_against_registry",
    "copy_subjects",
    "pull",
    "register_contract",
    "registered_texts",
    "registered_writers",
    "schema_status",
]


@dataclass(frozen=True)
class Registration:
    subject: str
    family: str
    version: int  # local file version
    schema_id: int | None
    registry_version: int | None
    action: str  # "registered", "already registered", "would register"


def register_contract(
    registry: Registry,
    catalog: SchemaCatalog,
    *,
    topic: str = DEFAULT_TOPIC,
    version: int | None = None,
    value_subject_name: str | None = None,
    level: CompatibilityLevel = CompatibilityLevel.FULL_TRANSITIVE,
    dry_run: bool = False,
    on_step: Callable[[Registration], None] = lambda _: None,
) -> list[Registration]:
    """Register the key schema, the event versions in version order, and the product
    record under the products topic's subject.

    Sets each subject's compatibility level first, skips what is already registered,
    and stops at the first version the registry would refuse, with its reasons.
    """
    plan: list[tuple[str, SchemaFile]] = []
    for schema in catalog.versions(KEY_FAMILY) if KEY_FAMILY in catalog.families else []:
        plan.append((key_subject(topic), schema))
    events = catalog.versions(EVENT_FAMILY)
    if version is not None:
        events = [catalog.get(version)]
    for schema in events:
        plan.append((value_subject_name or value_subject(topic), schema))
    if PRODUCT_FAMILY in catalog.families:  # the shop's catalog, on its own topic
        for schema in catalog.versions(PRODUCT_FAMILY):
            plan.append((value_subject(products_topic(topic)), schema))

    done: list[Registration] = []
    levels_set: set[str] = set()
    for subject, schema in plan:
        found = registry.lookup(subject, schema.text)
        if found is not None:
            step = Registration(
                subject, schema.family, schema.version, *found, "already registered"
            )
        else:
            if subject not in levels_set and not dry_run:
                registry.set_level(subject, level)
                levels_set.add(subject)
            reasons = registry.incompatibilities(subject, schema.text)
            if reasons:
                raise IncompatibleSchemaError(
                    f"{schema.path.name} is incompatible with {subject} at "
                    f"{registry.level(subject).value if not dry_run else level.value}: "
                    + "; ".join(reasons),
                    reasons,
                )
            if dry_run:
                step = Registration(
                    subject, schema.family, schema.version, None, None, "would register"
                )
            else:
                schema_id, registry_version = registry.register(subject, schema.text)
                step = Registration(
                    subject,
                    schema.family,
                    schema.version,
                    schema_id,
                    registry_version,
                    "registered",
                )
        done.append(step)
        on_step(step)
    return done


@dataclass(frozen=True)
class RegisteredText:
    subject: str
    version: int
    schema_id: int
    text: str
    guid: str | None = None  # Confluent 8 gives every schema one


def registered_texts(registry: Registry, subject: str) -> list[RegisteredText]:
    """Every live version of ``subject`` with its schema text, oldest first."""
    out = []
    for version in registry.versions(subject):
        with registry.errors(f"reading {subject} version {version}"):
            found = registry.client.get_version(subject, version)
        text = found.schema.schema_str
        if text is None:
            raise RegistryError(f"{subject} version {version} came back without its schema")
        out.append(
            RegisteredText(subject, version, number(found.schema_id), text, found.guid or None)
        )
    return out


def registered_writers(registry: Registry, subject: str) -> list[Writer]:
    """Every live version of ``subject`` as a writer for the consumer-contract matrix,
    with the id and GUID the registry gives it (records name it by them)."""
    texts = registered_texts(registry, subject)
    if not texts:  # nothing to verify against is the caller's mistake, as before: exit 2
        raise UsageError(f"{subject} has no registered versions at {registry.url}")
    return [
        writer_from_text(
            f"registry v{t.version}", t.text, f"{t.subject} v{t.version}", t.schema_id, t.guid
        )
        for t in texts
    ]


@dataclass(frozen=True)
class RegistryCheck:
    subject: str
    local: str  # file name of the local newest version
    level: CompatibilityLevel
    subject_exists: bool
    reasons: tuple[str, ...]

    @property
    def compatible(self) -> bool:
        return not self.reasons


def check_against_registry(
    registry: Registry, catalog: SchemaCatalog, subject: str, family: str = EVENT_FAMILY
) -> RegistryCheck:
    """The local newest version against ``subject`` at the subject's level, with reasons."""
    newest = catalog.latest(family)
    exists = bool(registry.versions(subject))
    reasons = registry.incompatibilities(subject, newest.text) if exists else []
    return RegistryCheck(
        subject=subject,
        local=newest.path.name,
        level=registry.level(subject),
        subject_exists=exists,
        reasons=tuple(reasons),
    )


@dataclass(frozen=True)
class StatusRow:
    subject: str
    local: str | None  # "v2" (local file version)
    registered: str | None  # "version 2, id 3"
    state: str


def schema_status(registry: Registry, catalog: SchemaCatalog, topic: str) -> list[StatusRow]:
    """Local versions against registered ones, matched by canonical fingerprint."""
    rows: list[StatusRow] = []
    subjects = (
        (KEY_FAMILY, key_subject(topic)),
        (EVENT_FAMILY, value_subject(topic)),
        (PRODUCT_FAMILY, value_subject(products_topic(topic))),
    )
    for family, subject in subjects:
        if family not in catalog.families:
            continue
        local = {s.fingerprint: s for s in catalog.versions(family)}
        remote = registered_texts(registry, subject)
        matched: set[str] = set()
        for r in remote:
            fingerprint = canonical_fingerprint(r.text)
            where = f"version {r.version}, id {r.schema_id}"
            if fingerprint in local:
                matched.add(fingerprint)
                rows.append(StatusRow(subject, local[fingerprint].label, where, "in sync"))
            else:
                rows.append(StatusRow(subject, None, where, "registered, not local"))
        for fingerprint, schema in local.items():
            if fingerprint not in matched:
                rows.append(StatusRow(subject, schema.label, None, "not registered"))
    return rows


def pull(registry: Registry, subject: str, family: str, out: Path) -> list[Path]:
    """Every registered version of ``subject`` as ``<family>-v<N>.avsc`` files in ``out``."""
    texts = registered_texts(registry, subject)
    if not texts:
        raise RegistryError(f"{subject} has no registered versions at {registry.url}", 404, 40401)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in texts:
        path = out / f"{family}-v{r.version}.avsc"
        path.write_text(json.dumps(json.loads(r.text), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


# --------------------------------------------------------------------------- migration


class RegistryIdCollision(UsageError):
    """The destination of a copy holds other schemas under the ids (or versions) to
    copy: the input cannot be used, and nothing was written (exit 2)."""

    def __init__(self, message: str, collisions: list[str]) -> None:
        super().__init__(message)
        self.collisions = collisions


@dataclass(frozen=True)
class CopiedVersion:
    subject: str
    version: int
    schema_id: int
    action: str  # "copied", "already there"


@dataclass(frozen=True)
class _SourceVersion:
    subject: str
    version: int
    schema_id: int
    body: dict[str, Any]  # the registration body: schema, type, references, metadata, rules

    def same_schema(self, other: dict[str, Any]) -> bool:
        """``other`` (an answer for an id) holds this very schema: text, references,
        metadata and rules as stored, which is what IMPORT compares."""
        return all(
            (other.get(key) or None) == (self.body.get(key) or None)
            for key in ("schema", "references", "metadata", "ruleSet")
        ) and (other.get("schemaType") or "AVRO") == (self.body.get("schemaType") or "AVRO")


def _not_found(exc: SchemaRegistryError) -> bool:
    return exc.http_status_code == 404


def _source_versions(source: Registry, subjects: list[str]) -> list[_SourceVersion]:
    """Every live version of ``subjects`` and of the subjects they reference, referenced
    ones first, each with the body that registers it again."""
    ordered: list[_SourceVersion] = []
    seen: set[tuple[str, int]] = set()
    visiting: set[tuple[str, int]] = set()

    def add(subject: str, version: int) -> None:
        if (subject, version) in seen or (subject, version) in visiting:
            return
        visiting.add((subject, version))
        with source.errors(f"reading {subject} version {version}"):
            found = source.rest("GET", f"subjects/{quote(subject, safe='')}/versions/{version}")
        for ref in found.get("references") or []:
            add(str(ref["subject"]), int(ref["version"]))
        body = {
            key: found[key]
            for key in ("schema", "schemaType", "references", "metadata", "ruleSet")
            if found.get(key) is not None
        }
        body["schemaType"] = body.get("schemaType", "AVRO")
        ordered.append(_SourceVersion(subject, version, int(found["id"]), body))
        seen.add((subject, version))

    for subject in subjects:
        versions = source.versions(subject)
        if not versions:
            raise UsageError(f"{subject} has no registered versions at {source.url}")
        for version in versions:
            add(subject, version)
    return ordered


def _collisions(destination: Registry, plan: list[_SourceVersion]) -> list[str]:
    """What the destination holds that the copy would contradict: an id of another
    schema, or a version of a subject that is another id."""
    found: list[str] = []
    checked: set[int] = set()
    for item in plan:
        if item.schema_id in checked:
            continue
        checked.add(item.schema_id)
        with destination.errors(f"reading schema id {item.schema_id}"):
            try:
                there = destination.rest("GET", f"schemas/ids/{item.schema_id}")
            except SchemaRegistryError as exc:
                if not _not_found(exc):
                    raise
                continue
        if not item.same_schema(there):
            found.append(f"id {item.schema_id} is another schema")
    for item in plan:
        there_version = _destination_version(destination, item.subject, item.version)
        if there_version is not None and int(there_version["id"]) != item.schema_id:
            found.append(
                f"{item.subject} version {item.version} is id {there_version['id']}, "
                f"not {item.schema_id}"
            )
    return found


def _destination_version(registry: Registry, subject: str, version: int) -> dict[str, Any] | None:
    with registry.errors(f"reading {subject} version {version}"):
        try:
            answer = registry.rest("GET", f"subjects/{quote(subject, safe='')}/versions/{version}")
        except SchemaRegistryError as exc:
            if _not_found(exc):
                return None
            raise
    return answer if isinstance(answer, dict) else None


def _own(registry: Registry, path: str, key: str) -> str | None:
    """A subject's own setting (``mode`` or ``compatibilityLevel``), None if it has none."""
    with registry.errors(f"reading {path}"):
        try:
            answer = registry.rest("GET", path)
        except SchemaRegistryError as exc:
            if _not_found(exc):
                return None
            raise
    value = answer.get(key) if isinstance(answer, dict) else None
    return str(value) if value is not None else None


@contextmanager
def _importing(registry: Registry, subject: str) -> Iterator[None]:
    """The subject in IMPORT mode at ``registry`` for the block, its own mode (or none)
    restored afterwards, as Confluent's migration guide does it. ``force``: the
    destination's versions of the subject were checked against the copy beforehand."""
    path = f"mode/{quote(subject, safe='')}"
    before = _own(registry, path, "mode")
    with registry.errors(f"setting IMPORT mode on {subject}"):
        registry.rest("PUT", path, {"mode": "IMPORT"}, {"force": "true"})
    try:
        yield
    finally:
        with registry.errors(f"restoring the mode of {subject}"):
            if before is None:
                registry.rest("DELETE", path)
            else:
                registry.rest("PUT", path, {"mode": before}, {"force": "true"})


def copy_subjects(
    source: Registry,
    destination: Registry,
    subjects: list[str] | None = None,
    *,
    on_step: Callable[[CopiedVersion], None] = lambda _: None,
) -> list[CopiedVersion]:
    """Copy ``subjects`` (default: every subject) from ``source`` to ``destination``
    with their ids, versions, references (referenced subjects first), metadata, rules
    and own compatibility levels, in IMPORT mode, so that records framed with a source
    id (or GUID) decode through the destination.

    Nothing is written when the destination holds an id of another schema or a
    version of another id (:class:`RegistryIdCollision`, naming each). Running it again
    finds everything there and writes nothing new.
    """
    if subjects is None:
        with source.errors("listing subjects"):
            subjects = [str(s) for s in source.client.get_subjects()]
    plan = _source_versions(source, subjects)
    collisions = _collisions(destination, plan)
    if collisions:
        raise RegistryIdCollision(
            f"{destination.url} already holds other schemas under the ids or versions to "
            f"copy: {'; '.join(collisions)}; nothing was copied",
            collisions,
        )
    done: list[CopiedVersion] = []
    by_subject: dict[str, list[_SourceVersion]] = {}
    for item in plan:
        by_subject.setdefault(item.subject, []).append(item)
    for item in plan:
        there = _destination_version(destination, item.subject, item.version)
        if there is not None:  # checked above: the same id
            step = CopiedVersion(item.subject, item.version, item.schema_id, "already there")
        else:
            with _importing(destination, item.subject):
                body = {**item.body, "id": item.schema_id, "version": item.version}
                subject_path = f"subjects/{quote(item.subject, safe='')}/versions"
                with destination.errors(f"importing {item.subject} version {item.version}"):
                    destination.rest("POST", subject_path, body)
            step = CopiedVersion(item.subject, item.version, item.schema_id, "copied")
        done.append(step)
        on_step(step)
    for subject in by_subject:
        path = f"config/{quote(subject, safe='')}"
        level = _own(source, path, "compatibilityLevel")
        if level is not None and _own(destination, path, "compatibilityLevel") != level:
            destination.set_level(subject, CompatibilityLevel(level))
    return done
