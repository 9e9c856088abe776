"""Schema Registry state in SQLite, with Confluent's semantics and error codes.

Ids are global and never reused; one schema text under two subjects shares one id.
Versions are per subject. Every operation runs under one lock inside one SQLite
transaction, so concurrent registrations never share an id or a version.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import avro.schema

from producer.contract.catalog import parse_schema_text
from producer.contract.compat import CompatibilityLevel, LabelledSchema, check_compatibility
from producer.errors import SchemaFileError

__all__ = ["MODES", "RegisteredVersion", "RegistryStore", "RestError"]

DEFAULT_LEVEL = CompatibilityLevel.BACKWARD
MODES = ("READWRITE", "READONLY", "IMPORT")
_GLOBAL = ""  # the config/mode row of the registry as a whole

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schemas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schema_text TEXT NOT NULL UNIQUE,
    normalized TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS config (subject TEXT PRIMARY KEY, level TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mode (subject TEXT PRIMARY KEY, mode TEXT NOT NULL);
"""


class RestError(Exception):
    """An error answer of the REST API: HTTP status, Confluent error code and message.

    Raised inside the server only; it becomes the JSON body Confluent answers with.
    (Clients of the registry see ``producer.errors.RegistryError`` instead.)
    """

    def __init__(self, http_status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message


def subject_not_found(subject: str) -> RestError:
    return RestError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(subject: str, version: object) -> RestError:
    return RestError(404, 40402, f"Version {version} not found for subject '{subject}'.")


def schema_not_found(detail: str = "Schema not found") -> RestError:
    return RestError(404, 40403, detail)


def invalid_level(level: object) -> RestError:
    return RestError(
        422,
        42203,
        f"Invalid compatibility level {level!r}. Valid values are "
        + ", ".join(x.value for x in CompatibilityLevel),
    )


@dataclass(frozen=True)
class RegisteredVersion:
    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "version": self.version,
            "id": self.schema_id,
            "schema": self.schema,
        }


@dataclass(frozen=True)
class CandidateSchema:
    """A schema sent by a client, parsed and in both identity forms."""

    text: str  # compact JSON, key order kept: identity without ?normalize
    normalized: str  # compact JSON, keys sorted: identity with ?normalize=true
    parsed: avro.schema.Schema

    @classmethod
    def from_request(cls, body: Any) -> CandidateSchema:
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise RestError(422, 42201, "Invalid schema: the body needs a 'schema' string")
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type != "AVRO":
            raise RestError(
                422, 42201, f"Invalid schema: only AVRO is supported here, not {schema_type}"
            )
        if body.get("references"):
            raise RestError(422, 42201, "Invalid schema: schema references are not supported here")
        try:
            definition, _, parsed = parse_schema_text(body["schema"], "schema")
        except SchemaFileError as exc:
            raise RestError(422, 42201, f"Invalid schema: {exc.problem}") from exc
        return cls(
            text=json.dumps(definition, separators=(",", ":")),
            normalized=json.dumps(definition, separators=(",", ":"), sort_keys=True),
            parsed=parsed,
        )

    def form(self, normalize: bool) -> str:
        return self.normalized if normalize else self.text


class RegistryStore:
    """The registry's state and rules; the HTTP layer only translates."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._parsed: dict[int, avro.schema.Schema] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    # ------------------------------------------------------------------ schemas by id

    def schema_by_id(self, schema_id: int) -> str:
        with self._tx() as db:
            row = db.execute(
                "SELECT schema_text FROM schemas WHERE id = ?", (schema_id,)
            ).fetchone()
        if row is None:
            raise schema_not_found(f"Schema {schema_id} not found")
        return str(row[0])

    def versions_of_id(self, schema_id: int, deleted: bool = False) -> list[tuple[str, int]]:
        self.schema_by_id(schema_id)
        with self._tx() as db:
            rows = db.execute(
                "SELECT subject, version FROM versions WHERE schema_id = ? AND (deleted = 0 OR ?)"
                " ORDER BY subject, version",
                (schema_id, deleted),
            ).fetchall()
        return [(str(s), int(v)) for s, v in rows]

    # ------------------------------------------------------------------ subjects

    def subjects(self, deleted: bool = False, prefix: str = "") -> list[str]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT DISTINCT subject FROM versions WHERE (deleted = 0 OR ?) ORDER BY subject",
                (deleted,),
            ).fetchall()
        return [str(s) for (s,) in rows if str(s).startswith(prefix)]

    def _versions(
        self, db: sqlite3.Connection, subject: str, deleted: bool
    ) -> list[RegisteredVersion]:
        rows = db.execute(
            "SELECT v.version, v.schema_id, s.schema_text, v.deleted FROM versions v"
            " JOIN schemas s ON s.id = v.schema_id WHERE v.subject = ? AND (v.deleted = 0 OR ?)"
            " ORDER BY v.version",
            (subject, deleted),
        ).fetchall()
        return [RegisteredVersion(subject, int(v), int(i), str(t), bool(d)) for v, i, t, d in rows]

    def versions(self, subject: str, deleted: bool = False) -> list[int]:
        with self._tx() as db:
            found = self._versions(db, subject, deleted)
        if not found:
            raise subject_not_found(subject)
        return [v.version for v in found]

    def get_version(self, subject: str, version: str, deleted: bool = False) -> RegisteredVersion:
        with self._tx() as db:
            return self._get_version(db, subject, version, deleted)

    def _get_version(
        self, db: sqlite3.Connection, subject: str, version: str, deleted: bool
    ) -> RegisteredVersion:
        number = _parse_version(version)
        found = self._versions(db, subject, deleted)
        if not found:
            raise subject_not_found(subject)
        if number == -1:
            return found[-1]
        for v in found:
            if v.version == number:
                return v
        raise version_not_found(subject, number)

    # ------------------------------------------------------------------ register / lookup

    def register(self, subject: str, body: Any, normalize: bool = False) -> RegisteredVersion:
        candidate = CandidateSchema.from_request(body)
        with self._tx() as db:
            if self._mode(db, subject) == "READONLY":
                raise RestError(422, 42205, f"Subject {subject} is in read-only mode")
            live = self._versions(db, subject, deleted=False)
            for existing in live:
                if self._same(db, existing.schema_id, candidate, normalize):
                    return existing
            level = self._level(db, subject)
            problems = self._check(candidate, live, level)
            if problems:
                raise RestError(
                    409,
                    409,
                    "Schema being registered is incompatible with an earlier schema for "
                    f'subject "{subject}", details: [' + "; ".join(problems) + "]",
                )
            text = candidate.form(normalize)
            row = db.execute("SELECT id FROM schemas WHERE schema_text = ?", (text,)).fetchone()
            if row is None:
                cursor = db.execute(
                    "INSERT INTO schemas (schema_text, normalized) VALUES (?, ?)",
                    (text, candidate.normalized),
                )
                schema_id = int(cursor.lastrowid or 0)
            else:
                schema_id = int(row[0])
            (last,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM versions WHERE subject = ?", (subject,)
            ).fetchone()
            version = int(last) + 1
            db.execute(
                "INSERT INTO versions (subject, version, schema_id) VALUES (?, ?, ?)",
                (subject, version, schema_id),
            )
            self._parsed[schema_id] = candidate.parsed
            return RegisteredVersion(subject, version, schema_id, text)

    def lookup(
        self, subject: str, body: Any, normalize: bool = False, deleted: bool = False
    ) -> RegisteredVersion:
        candidate = CandidateSchema.from_request(body)
        with self._tx() as db:
            found = self._versions(db, subject, deleted)
            if not found:
                raise subject_not_found(subject)
            for v in found:
                if self._same(db, v.schema_id, candidate, normalize):
                    return v
        raise schema_not_found()

    def _same(
        self, db: sqlite3.Connection, schema_id: int, candidate: CandidateSchema, normalize: bool
    ) -> bool:
        text, normalized = db.execute(
            "SELECT schema_text, normalized FROM schemas WHERE id = ?", (schema_id,)
        ).fetchone()
        return bool(normalized == candidate.normalized if normalize else text == candidate.text)

    # ------------------------------------------------------------------ compatibility

    def test_compatibility(
        self, subject: str, body: Any, version: str | None, normalize: bool = False
    ) -> list[str]:
        """Reasons why the schema would be refused; empty when compatible."""
        del normalize  # identity does not matter to a compatibility verdict
        candidate = CandidateSchema.from_request(body)
        with self._tx() as db:
            level = self._level(db, subject)
            if version is None:
                live = self._versions(db, subject, deleted=False)
                return self._check(candidate, live, level)
            target = self._get_version(db, subject, version, deleted=False)
            return self._check(candidate, [target], level)

    def _check(
        self,
        candidate: CandidateSchema,
        live: list[RegisteredVersion],
        level: CompatibilityLevel,
    ) -> list[str]:
        """Judge ``candidate`` against ``live`` (oldest first) at ``level``."""
        existing = [LabelledSchema(f"version {v.version}", self._parsed_schema(v)) for v in live]
        report = check_compatibility(
            LabelledSchema("new schema", candidate.parsed), existing, level
        )
        return report.messages()

    def _parsed_schema(self, version: RegisteredVersion) -> avro.schema.Schema:
        parsed = self._parsed.get(version.schema_id)
        if parsed is None:
            parsed = avro.schema.parse(version.schema)
            self._parsed[version.schema_id] = parsed
        return parsed

    # ------------------------------------------------------------------ deletion

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        with self._tx() as db:
            every = self._versions(db, subject, deleted=True)
            if not every:
                raise subject_not_found(subject)
            live = [v for v in every if not v.deleted]
            if permanent:
                if live:
                    raise RestError(
                        404,
                        40405,
                        f"Subject '{subject}' was not deleted first before being permanently "
                        "deleted",
                    )
                db.execute("DELETE FROM versions WHERE subject = ?", (subject,))
                db.execute("DELETE FROM config WHERE subject = ?", (subject,))
                return [v.version for v in every]
            if not live:
                raise RestError(
                    404,
                    40404,
                    f"Subject '{subject}' was soft deleted. Set permanent=true to delete "
                    "permanently",
                )
            db.execute("UPDATE versions SET deleted = 1 WHERE subject = ?", (subject,))
            return [v.version for v in live]

    def delete_version(self, subject: str, version: str, permanent: bool = False) -> int:
        with self._tx() as db:
            target = self._get_version(db, subject, version, deleted=True)
            if version in ("latest", "-1"):
                live = self._versions(db, subject, deleted=False)
                if live and not permanent:
                    target = live[-1]
            if permanent:
                if not target.deleted:
                    raise RestError(
                        404,
                        40407,
                        f"Subject '{subject}' Version {target.version} was not deleted first "
                        "before being permanently deleted",
                    )
                db.execute(
                    "DELETE FROM versions WHERE subject = ? AND version = ?",
                    (subject, target.version),
                )
                return target.version
            if target.deleted:
                raise RestError(
                    404,
                    40406,
                    f"Subject '{subject}' Version {target.version} was soft deleted. "
                    "Set permanent=true to delete permanently",
                )
            db.execute(
                "UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?",
                (subject, target.version),
            )
            return target.version

    # ------------------------------------------------------------------ config and mode

    def _level(self, db: sqlite3.Connection, subject: str) -> CompatibilityLevel:
        for key in (subject, _GLOBAL):
            row = db.execute("SELECT level FROM config WHERE subject = ?", (key,)).fetchone()
            if row is not None:
                return CompatibilityLevel(row[0])
        return DEFAULT_LEVEL

    def get_config(self, subject: str | None = None, default_to_global: bool = False) -> str:
        with self._tx() as db:
            if subject is None:
                return self._level(db, _GLOBAL).value
            row = db.execute("SELECT level FROM config WHERE subject = ?", (subject,)).fetchone()
            if row is not None:
                return str(row[0])
            if default_to_global:
                return self._level(db, _GLOBAL).value
        raise RestError(
            404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
        )

    def set_config(self, level: Any, subject: str | None = None) -> str:
        if not isinstance(level, str):
            raise invalid_level(level)
        try:
            parsed = CompatibilityLevel.parse(level)
        except ValueError:
            raise invalid_level(level) from None
        with self._tx() as db:
            db.execute(
                "INSERT INTO config (subject, level) VALUES (?, ?) "
                "ON CONFLICT(subject) DO UPDATE SET level = excluded.level",
                (subject or _GLOBAL, parsed.value),
            )
        return parsed.value

    def delete_config(self, subject: str | None = None) -> str:
        previous = self.get_config(subject, default_to_global=subject is None)
        with self._tx() as db:
            db.execute("DELETE FROM config WHERE subject = ?", (subject or _GLOBAL,))
        return previous

    def _mode(self, db: sqlite3.Connection, subject: str) -> str:
        for key in (subject, _GLOBAL):
            row = db.execute("SELECT mode FROM mode WHERE subject = ?", (key,)).fetchone()
            if row is not None:
                return str(row[0])
        return "READWRITE"

    def get_mode(self, subject: str | None = None) -> str:
        with self._tx() as db:
            return self._mode(db, subject or _GLOBAL)

    def set_mode(self, mode: Any, subject: str | None = None) -> str:
        if not isinstance(mode, str) or mode.upper() not in MODES:
            raise RestError(
                422, 42204, f"Invalid mode {mode!r}. Valid values are " + ", ".join(MODES)
            )
        with self._tx() as db:
            db.execute(
                "INSERT INTO mode (subject, mode) VALUES (?, ?) "
                "ON CONFLICT(subject) DO UPDATE SET mode = excluded.mode",
                (subject or _GLOBAL, mode.upper()),
            )
        return mode.upper()


def _parse_version(version: str) -> int:
    if version in ("latest", "-1"):
        return -1
    try:
        number = int(version)
    except ValueError:
        number = 0
    if number < 1:
        raise RestError(
            422,
            42202,
            f"The specified version '{version}' is not a valid version id. Allowed values are "
            'between [1, 2^31-1] and the string "latest"',
        )
    return number
