"""Schema Registry workflows: register the contract deliberately, check it, and look it up.

Registering is always an explicit step (the producer never auto-registers). The
official ``SchemaRegistryClient`` does the registry calls; compatibility tests go
through plain HTTP with ``?verbose=true`` because the official client drops the
registry's reasons.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from producer.compat import CompatibilityLevel
from producer.config import ClientConfig
from producer.errors import FlashsaleError
from producer.schemas import EVENT_FAMILY, KEY_FAMILY, SchemaCatalog, SchemaFile

__all__ = [
    "IncompatibleSchemaError",
    "RegisteredText",
    "Registration",
    "Registry",
    "RegistryCheck",
    "RegistryError",
    "RegistryUnavailable",
    "SchemaNotRegistered",
    "StatusRow",
    "check_against_registry",
    "key_subject",
    "pull",
    "register_contract",
    "registered_texts",
    "schema_status",
    "value_subject",
]

log = logging.getLogger(__name__)

DEFAULT_TOPIC = "flash_sale_events"


def value_subject(topic: str) -> str:
    return f"{topic}-value"


def key_subject(topic: str) -> str:
    return f"{topic}-key"


class RegistryError(FlashsaleError):
    """The registry answered with an error; carries its HTTP status and error code."""

    def __init__(self, message: str, http_status: int | None = None, error_code: int | None = None):
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code


class RegistryUnavailable(RegistryError):
    """The registry cannot be reached (or answered nothing usable) in time."""

    exit_code = 2


class IncompatibleSchemaError(RegistryError):
    """The registry would refuse the schema; ``reasons`` are its verbose messages."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message, 409, 409)
        self.reasons = reasons


class SchemaNotRegistered(RegistryError):
    """The schema the producer needs is not registered under its subject."""


@dataclass(frozen=True)
class Registration:
    subject: str
    family: str
    version: int  # local file version
    schema_id: int | None
    registry_version: int | None
    action: str  # "registered", "already registered", "would register"


def _number(value: int | None) -> int:
    if value is None:
        raise RegistryError("the Schema Registry answered without an id or version")
    return int(value)


def _is_transport_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0].startswith("httpx")


class Registry:
    """A Schema Registry reached with the client configuration; errors are typed, one line."""

    def __init__(self, config: ClientConfig, timeout: float = 10.0) -> None:
        self.url = config.registry_url
        self.timeout = timeout
        conf: dict[str, Any] = {**config.registry(), "timeout": timeout, "max.retries": 1}
        self.client = SchemaRegistryClient(conf)
        self._http = requests.Session()
        auth = config.registry_auth()
        if auth is not None:
            self._http.auth = auth

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Registry failures inside the block, as typed one-line errors naming ``what``."""
        try:
            yield
        except SchemaRegistryError as exc:
            raise RegistryError(
                f"Schema Registry at {self.url}: {what}: {exc.error_message} "
                f"(HTTP {exc.http_status_code}, error {exc.error_code})",
                exc.http_status_code,
                exc.error_code,
            ) from exc
        except requests.RequestException as exc:
            raise RegistryUnavailable(
                f"cannot reach the Schema Registry at {self.url}: {type(exc).__name__}"
            ) from exc
        except Exception as exc:
            if _is_transport_error(exc):
                raise RegistryUnavailable(
                    f"cannot reach the Schema Registry at {self.url}: {type(exc).__name__}"
                ) from exc
            raise

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(
            self.url + path,
            json=body,
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            timeout=self.timeout,
        )
        payload: dict[str, Any] = response.json() if response.content else {}
        if response.status_code >= 400:
            raise SchemaRegistryError(
                response.status_code, payload.get("error_code", -1), payload.get("message", "")
            )
        return payload

    # ------------------------------------------------------------------ questions

    def versions(self, subject: str) -> list[int]:
        """The subject's versions; empty when the subject does not exist."""
        with self.errors(f"listing versions of {subject}"):
            try:
                return list(self.client.get_versions(subject))
            except SchemaRegistryError as exc:
                if exc.error_code == 40401:
                    return []
                raise

    def lookup(self, subject: str, text: str) -> tuple[int, int] | None:
        """(schema id, version) of ``text`` under ``subject``, or None if not registered."""
        with self.errors(f"looking up a schema under {subject}"):
            try:
                found = self.client.lookup_schema(subject, Schema(text, "AVRO"))
            except SchemaRegistryError as exc:
                if exc.error_code in (40401, 40403):
                    return None
                raise
        return _number(found.schema_id), _number(found.version)

    def global_level(self) -> CompatibilityLevel:
        with self.errors("reading the global compatibility"):
            return CompatibilityLevel(self.client.get_compatibility())

    def ping(self) -> None:
        """Fail in one line unless the registry answers."""
        with self.errors("listing subjects"):
            self.client.get_subjects()

    def level(self, subject: str) -> CompatibilityLevel:
        """The subject's compatibility level, or the global one when it has none."""
        with self.errors(f"reading the compatibility of {subject}"):
            try:
                return CompatibilityLevel(self.client.get_compatibility(subject))
            except SchemaRegistryError as exc:
                if exc.error_code not in (40401, 40408):
                    raise
            return CompatibilityLevel(self.client.get_compatibility())

    def set_level(self, subject: str | None, level: CompatibilityLevel) -> None:
        with self.errors(f"setting compatibility {level.value}"):
            self.client.set_compatibility(subject, level.value)

    def incompatibilities(self, subject: str, text: str) -> list[str]:
        """The registry's reasons to refuse ``text`` under ``subject`` (empty: compatible)."""
        with self.errors(f"testing compatibility under {subject}"):
            try:
                answer = self._post(
                    f"/compatibility/subjects/{subject}/versions?verbose=true",
                    {"schema": text, "schemaType": "AVRO"},
                )
            except SchemaRegistryError as exc:
                if exc.error_code == 40401:
                    return []
                raise
        if answer.get("is_compatible", False):
            return []
        return [str(m) for m in answer.get("messages") or ["incompatible (no reason given)"]]

    def register(self, subject: str, text: str) -> tuple[int, int]:
        """Register ``text`` under ``subject``: (schema id, version)."""
        with self.errors(f"registering under {subject}"):
            try:
                registered = self.client.register_schema_full_response(
                    subject, Schema(text, "AVRO")
                )
            except SchemaRegistryError as exc:
                if exc.http_status_code == 409:
                    raise IncompatibleSchemaError(
                        f"{subject}: the registry refused the schema as incompatible",
                        [exc.error_message],
                    ) from exc
                raise
        version = registered.version
        if version is None:  # older registries answer only the id
            found = self.lookup(subject, text)
            version = found[1] if found else -1
        return _number(registered.schema_id), int(version)


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
    """Register the key schema and the event versions, in version order.

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


# --------------------------------------------------------------------------- workflows


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
        out.append(RegisteredText(subject, version, _number(found.schema_id), text))
    return out


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
    from producer.schemas import canonical_fingerprint

    rows: list[StatusRow] = []
    for family, subject in ((KEY_FAMILY, key_subject(topic)), (EVENT_FAMILY, value_subject(topic))):
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
