"""Schema Registry workflows: register the contract deliberately, check it, read it back.

Registering is always an explicit step (the producer never auto-registers): the
compatibility level first, then the key schema and every event version, oldest first,
then the shop's product record under its products topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
from producer.errors import IncompatibleSchemaError, RegistryError, UsageError
from producer.events import DEFAULT_TOPIC, products_topic
from producer.registry.client import Registry, key_subject, number, value_subject

__all__ = [
    "RegisteredText",
    "Registration",
    "RegistryCheck",
    "StatusRow",
    "check_against_registry",
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


def registered_texts(registry: Registry, subject: str) -> list[RegisteredText]:
    """Every live version of ``subject`` with its schema text, oldest first."""
    out = []
    for version in registry.versions(subject):
        with registry.errors(f"reading {subject} version {version}"):
            found = registry.client.get_version(subject, version)
        text = found.schema.schema_str
        if text is None:
            raise RegistryError(f"{subject} version {version} came back without its schema")
        out.append(RegisteredText(subject, version, number(found.schema_id), text))
    return out


def registered_writers(registry: Registry, subject: str) -> list[Writer]:
    """Every live version of ``subject`` as a writer for the consumer-contract matrix."""
    texts = registered_texts(registry, subject)
    if not texts:  # nothing to verify against is the caller's mistake, as before: exit 2
        raise UsageError(f"{subject} has no registered versions at {registry.url}")
    return [
        writer_from_text(f"registry v{t.version}", t.text, f"{t.subject} v{t.version}")
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
