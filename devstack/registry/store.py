"""Schema Registry state in SQLite, with Confluent's semantics and error codes.

Ids are global and never reused; one schema under two subjects shares one id. A
schema's identity is Confluent's: its canonical Avro text (``canonical.py``) with its
references, metadata and rule set. Versions are per subject. Every operation runs
under one lock inside one SQLite transaction, so concurrent registrations never share
an id or a version.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import avro.schema

from devstack.registry.canonical import canonical_text, named_types
from devstack.registry.errors import (
    CONTEXT,
    RestError,
    invalid_schema,
    not_permitted,
    read_only,
    schema_not_found,
    subject_not_found,
    version_not_found,
)
from devstack.registry.schemas import (
    CandidateSchema,
    Reference,
    RegisteredVersion,
    Resolver,
    guid_of,
    parse_version,
    parse_with,
)
from devstack.registry.settings import IMPORTING, MODES, READ_ONLY, Settings
from producer.contract.compat import CompatibilityLevel, LabelledSchema, check_compatibility

__all__ = ["MODES", "RegistryStore"]


class RegistryStore(Settings):
    """The registry's state and rules; the HTTP layer only translates."""

    # ------------------------------------------------------------------ schemas by id

    def schema_by_id(self, schema_id: int, subject: str | None = None) -> RegisteredVersion:
        """The schema of ``schema_id``; with ``subject``, the subject-version that uses it
        (that subject's if it does, else any), as Confluent answers ``?subject=``."""
        with self._tx() as db:
            row = db.execute(
                "SELECT schema_text, refs, metadata, rule_set FROM schemas WHERE id = ?",
                (schema_id,),
            ).fetchone()
            if row is None:
                raise schema_not_found(f"Schema {schema_id} not found")
            pairs = db.execute(
                "SELECT subject, version, deleted FROM versions WHERE schema_id = ?"
                " ORDER BY subject = ? DESC, version DESC",
                (schema_id, subject or ""),
            ).fetchall()
        text, refs, metadata, rule_set = row
        where = ("", 0, 0) if subject is None or not pairs else pairs[0]
        return RegisteredVersion(
            str(where[0]),
            int(where[1]),
            schema_id,
            str(text),
            bool(where[2]),
            str(refs),
            metadata,
            rule_set,
        )

    def schema_by_guid(self, guid: str) -> RegisteredVersion:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, schema_text, refs, metadata, rule_set FROM schemas ORDER BY id"
            ).fetchall()
        for schema_id, text, refs, metadata, rule_set in rows:
            if guid_of(text, refs, metadata, rule_set) == guid.lower():
                return RegisteredVersion(
                    "", 0, int(schema_id), text, False, refs, metadata, rule_set
                )
        raise schema_not_found(f"Schema {guid} not found")

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

    def subjects(
        self, deleted: bool = False, prefix: str = "", deleted_only: bool = False
    ) -> list[str]:
        """Subject names: live ones, every one (``deleted``), or the fully soft-deleted ones."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT subject, MIN(deleted) FROM versions GROUP BY subject ORDER BY subject"
            ).fetchall()
        wanted = [
            str(s)
            for s, all_deleted in rows
            if (all_deleted if deleted_only else deleted or not all_deleted)
        ]
        return [s for s in wanted if s.startswith(prefix)]

    def _versions(
        self, db: sqlite3.Connection, subject: str, deleted: bool
    ) -> list[RegisteredVersion]:
        rows = db.execute(
            "SELECT v.version, v.schema_id, s.schema_text, v.deleted, s.refs, s.metadata,"
            " s.rule_set FROM versions v JOIN schemas s ON s.id = v.schema_id"
            " WHERE v.subject = ? AND (v.deleted = 0 OR ?) ORDER BY v.version",
            (subject, deleted),
        ).fetchall()
        return [
            RegisteredVersion(subject, int(v), int(i), str(t), bool(d), str(r), m, rs)
            for v, i, t, d, r, m, rs in rows
        ]

    def versions(
        self, subject: str, deleted: bool = False, deleted_only: bool = False
    ) -> list[int]:
        with self._tx() as db:
            found = self._versions(db, subject, deleted or deleted_only)
        if not found:
            raise subject_not_found(subject)
        return [v.version for v in found if v.deleted or not deleted_only]

    def get_version(self, subject: str, version: str, deleted: bool = False) -> RegisteredVersion:
        with self._tx() as db:
            return self._get_version(db, subject, version, deleted)

    def _get_version(
        self, db: sqlite3.Connection, subject: str, version: str, deleted: bool
    ) -> RegisteredVersion:
        number = parse_version(version)
        found = self._versions(db, subject, deleted)
        if not found:
            raise subject_not_found(subject)
        if number == -1:  # latest is always a live version, as in Confluent
            live = [v for v in found if not v.deleted]
            if not live:
                raise version_not_found(subject, version)
            return live[-1]
        for v in found:
            if v.version == number:
                return v
        raise version_not_found(subject, number)

    def latest_with_metadata(
        self, subject: str, wanted: dict[str, str], deleted: bool = False
    ) -> RegisteredVersion:
        """The newest version whose metadata properties include every ``wanted`` pair."""
        with self._tx() as db:
            found = self._versions(db, subject, deleted)
        if not found:
            raise subject_not_found(subject)
        for v in reversed(found):
            if v.metadata is None:
                continue
            properties = json.loads(v.metadata).get("properties") or {}
            if all(properties.get(k) == value for k, value in wanted.items()):
                return v
        raise schema_not_found()

    def every_schema(
        self, prefix: str = "", deleted: bool = False, latest_only: bool = False
    ) -> list[RegisteredVersion]:
        """Every subject-version whose subject starts with ``prefix``, by subject and version."""
        with self._tx() as db:
            subjects = db.execute(
                "SELECT DISTINCT subject FROM versions ORDER BY subject"
            ).fetchall()
            answer: list[RegisteredVersion] = []
            for (subject,) in subjects:
                if str(subject).startswith(prefix):
                    found = self._versions(db, str(subject), deleted)
                    answer += found[-1:] if latest_only else found
        return answer

    def referenced_by(self, subject: str, version: str) -> list[int]:
        """Ids of the schemas whose live versions reference this subject-version."""
        with self._tx() as db:
            target = self._get_version(db, subject, version, deleted=False)
            return self._referrers(db, subject, target.version, deleted=False)

    # ------------------------------------------------------------------ register / lookup

    def register(self, subject: str, body: Any, normalize: bool = False) -> RegisteredVersion:
        with self._tx() as db:
            candidate = CandidateSchema.from_request(body, self._resolver(db))
            every = self._versions(db, subject, deleted=True)
            live = [v for v in every if not v.deleted]
            mode = self._mode(db, subject)
            # IMPORT stores what it is sent, verbatim; otherwise the config may normalize.
            normalize = mode not in IMPORTING and (normalize or self.normalizes(db, subject))
            if mode not in IMPORTING:
                candidate = self._inherit(candidate, live)
            wanted_id = candidate.explicit_id
            if candidate.explicit_version is None:
                for existing in reversed(live):  # an equal live version answers for itself
                    if self._same(db, existing, candidate, normalize) and wanted_id in (
                        None,
                        existing.schema_id,
                    ):
                        return existing
            if mode in READ_ONLY:
                raise read_only(subject)
            if wanted_id is not None and mode not in IMPORTING:
                raise not_permitted(f"Subject {subject} in context {CONTEXT} is not in import mode")
            if wanted_id is None and mode != "READWRITE":
                raise not_permitted(
                    f"Subject {subject} in context {CONTEXT} is not in read-write mode"
                )
            text = candidate.form(normalize)
            next_version = max((v.version for v in every), default=0) + 1
            if mode in IMPORTING:
                version = candidate.explicit_version or next_version
                schema_id = self._import_id(db, candidate, text, wanted_id)
                for existing in every:  # an imported version replaces what it names
                    if existing.version == version:
                        if existing.schema_id == schema_id and not existing.deleted:
                            return existing
                        db.execute(
                            "DELETE FROM versions WHERE subject = ? AND version = ?",
                            (subject, version),
                        )
            else:
                if candidate.explicit_version not in (None, next_version):
                    raise invalid_schema("Version is not one more than previous version")
                level = self._level(db, subject)
                problems = self._check(db, candidate, live, level)
                if problems:
                    raise RestError(
                        409,
                        40901,
                        "Schema being registered is incompatible with an earlier schema for "
                        f'subject "{subject}", details: [' + ", ".join(problems) + "]",
                    )
                version = next_version
                schema_id = self._id_for(db, candidate, text)
                # Confluent tombstones the soft-deleted versions of this very schema.
                db.execute(
                    "DELETE FROM versions WHERE subject = ? AND schema_id = ? AND deleted = 1",
                    (subject, schema_id),
                )
            db.execute(
                "INSERT INTO versions (subject, version, schema_id) VALUES (?, ?, ?)",
                (subject, version, schema_id),
            )
            self._parsed[schema_id] = candidate.parsed
            return RegisteredVersion(
                subject,
                version,
                schema_id,
                text,
                False,
                candidate.refs,
                candidate.metadata,
                candidate.rule_set,
            )

    @staticmethod
    def _inherit(candidate: CandidateSchema, live: list[RegisteredVersion]) -> CandidateSchema:
        """Metadata and rules not sent carry over from the latest version, as in Confluent."""
        if not live:
            return candidate
        latest = live[-1]
        changes: dict[str, Any] = {}
        if "metadata" not in candidate.sent and latest.metadata is not None:
            changes["metadata"] = latest.metadata
        if "ruleSet" not in candidate.sent and latest.rule_set is not None:
            changes["rule_set"] = latest.rule_set
        if not changes:
            return candidate
        fields = {**candidate.__dict__, **changes}
        return CandidateSchema(**fields)

    def _rows_like(
        self, db: sqlite3.Connection, candidate: CandidateSchema, text: str
    ) -> list[int]:
        rows = db.execute(
            "SELECT id FROM schemas WHERE schema_text = ? AND refs = ? AND metadata IS ?"
            " AND rule_set IS ? ORDER BY id",
            (text, candidate.refs, candidate.metadata, candidate.rule_set),
        ).fetchall()
        return [int(i) for (i,) in rows]

    def _id_for(self, db: sqlite3.Connection, candidate: CandidateSchema, text: str) -> int:
        """The id this schema already has, or the next one."""
        known = self._rows_like(db, candidate, text)
        if known:
            return known[0]
        (highest,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM schemas").fetchone()
        return self._insert(db, int(highest) + 1, candidate, text)

    def _import_id(
        self, db: sqlite3.Connection, candidate: CandidateSchema, text: str, wanted: int | None
    ) -> int:
        """IMPORT keeps the sender's id; an id taken by another schema is refused."""
        if wanted is None:
            return self._id_for(db, candidate, text)
        row = db.execute(
            "SELECT schema_text, refs, metadata, rule_set FROM schemas WHERE id = ?", (wanted,)
        ).fetchone()
        if row is None:
            return self._insert(db, wanted, candidate, text)
        if tuple(row) != (text, candidate.refs, candidate.metadata, candidate.rule_set):
            raise not_permitted(
                f"Overwrite new schema with id {wanted} in context {CONTEXT} is not permitted."
            )
        return wanted

    @staticmethod
    def _insert(
        db: sqlite3.Connection, schema_id: int, candidate: CandidateSchema, text: str
    ) -> int:
        db.execute(
            "INSERT INTO schemas (id, schema_text, normalized, refs, metadata, rule_set)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                schema_id,
                text,
                candidate.normalized,
                candidate.refs,
                candidate.metadata,
                candidate.rule_set,
            ),
        )
        return schema_id

    def lookup(
        self, subject: str, body: Any, normalize: bool = False, deleted: bool = False
    ) -> RegisteredVersion:
        with self._tx() as db:
            candidate = CandidateSchema.from_request(body, self._resolver(db))
            normalize = normalize or self.normalizes(db, subject)
            found = self._versions(db, subject, deleted)
            if not found:
                raise subject_not_found(subject)
            candidate = self._inherit(candidate, [v for v in found if not v.deleted])
            for v in reversed(found):
                if self._same(db, v, candidate, normalize):
                    return v
        raise schema_not_found()

    def _same(
        self,
        db: sqlite3.Connection,
        existing: RegisteredVersion,
        candidate: CandidateSchema,
        normalize: bool,
    ) -> bool:
        if (existing.metadata, existing.rule_set) != (candidate.metadata, candidate.rule_set):
            return False
        inline: dict[str, Any] = {}
        if candidate.refs == "[]" and existing.refs != "[]":
            # Confluent's deep equality: the schema sent with its references written out.
            for text in self._resolver(db)(json.loads(existing.refs))[1]:
                inline.update(named_types(json.loads(text)))
        elif existing.refs != candidate.refs and not (
            normalize and _sorted_refs(existing.refs) == _sorted_refs(candidate.refs)
        ):
            return False
        if not inline and existing.schema == candidate.text:
            return True
        stored = json.loads(existing.schema)
        if inline and canonical_text(stored, inline=inline) == candidate.text:
            return True
        return normalize and (
            canonical_text(stored, normalize=True, inline=inline) == candidate.normalized
        )

    # ------------------------------------------------------------------ compatibility

    def test_compatibility(
        self, subject: str, body: Any, version: str | None, normalize: bool = False
    ) -> list[str]:
        """Reasons why the schema would be refused; empty when compatible."""
        del normalize  # identity does not matter to a compatibility verdict
        with self._tx() as db:
            candidate = CandidateSchema.from_request(body, self._resolver(db))
            level = self._level(db, subject)
            live = self._versions(db, subject, deleted=False)
            if version is None:
                return self._check(db, candidate, live, level)
            number = parse_version(version)
            if number == -1:
                if not live:  # nothing to be incompatible with
                    return []
                return self._check(db, candidate, live[-1:], level)
            for v in live:
                if v.version == number:
                    return self._check(db, candidate, [v], level)
            raise version_not_found(subject, number)

    def _check(
        self,
        db: sqlite3.Connection,
        candidate: CandidateSchema,
        live: list[RegisteredVersion],
        level: CompatibilityLevel,
    ) -> list[str]:
        """Confluent's verdict on ``candidate`` against ``live`` (oldest first) at ``level``:
        the reasons against the newest version that refuses it, that version's number and
        text, and the level; empty when compatible. Soft-deleted versions are never here."""
        targets = live if level.transitive else live[-1:]
        new = LabelledSchema("new schema", candidate.parsed)
        for old in reversed(targets):
            existing = LabelledSchema(f"version {old.version}", self._parsed_schema(db, old))
            report = check_compatibility(new, [existing], level)
            if report.problems:
                # Confluent's order: the old schema reading new data first (FULL checks both).
                reasons = sorted(report.problems, key=lambda p: p.reader == new.label)
                return [
                    *(str(p) for p in reasons),
                    f"{{oldSchemaVersion: {old.version}}}",
                    f"{{oldSchema: '{old.schema}'}}",
                    f"{{validateFields: 'false', compatibility: '{level.value}'}}",
                ]
        return []

    def _parsed_schema(
        self, db: sqlite3.Connection, version: RegisteredVersion
    ) -> avro.schema.Schema:
        parsed = self._parsed.get(version.schema_id)
        if parsed is None:
            dependencies: list[str] = []
            if version.refs != "[]":
                _, dependencies = self._resolver(db)(json.loads(version.refs))
            _, parsed = parse_with(version.schema, dependencies)
            self._parsed[version.schema_id] = parsed
        return parsed

    # ------------------------------------------------------------------ references

    def _resolver(self, db: sqlite3.Connection) -> Resolver:
        """Resolve references inside ``db``'s transaction: each to its subject-version
        (``-1`` to the latest), and every schema they name, dependencies first."""

        def resolve(refs: list[Reference]) -> tuple[list[Reference], list[str]]:
            fixed: list[Reference] = []
            texts: list[str] = []
            seen: set[tuple[str, int]] = set()

            def visit(ref: Reference, depth: int) -> Reference:
                if depth > 32:
                    raise invalid_schema("references nest deeper than 32 levels, or in a cycle")
                try:
                    target = self._get_version(db, ref["subject"], str(ref["version"]), True)
                except RestError:
                    raise invalid_schema(
                        f"reference '{ref['name']}' names subject '{ref['subject']}' version "
                        f"{ref['version']}, which does not exist"
                    ) from None
                if (target.subject, target.version) not in seen:
                    seen.add((target.subject, target.version))
                    for inner in json.loads(target.refs):
                        visit(inner, depth + 1)
                    texts.append(target.schema)
                return {**ref, "version": target.version}

            for ref in refs:
                fixed.append(visit(ref, 0))
            return fixed, texts

        return resolve

    def _referrers(
        self, db: sqlite3.Connection, subject: str, version: int, deleted: bool
    ) -> list[int]:
        """Ids of schemas with a live (or, with ``deleted``, any) version that reference
        ``subject`` ``version``."""
        rows = db.execute(
            "SELECT DISTINCT s.id, s.refs FROM schemas s JOIN versions v ON v.schema_id = s.id"
            " WHERE s.refs != '[]' AND (v.deleted = 0 OR ?) ORDER BY s.id",
            (deleted,),
        ).fetchall()
        return [
            int(schema_id)
            for schema_id, refs in rows
            if any(r["subject"] == subject and r["version"] == version for r in json.loads(refs))
        ]

    def _refuse_if_referenced(
        self, db: sqlite3.Connection, targets: list[RegisteredVersion], permanent: bool
    ) -> None:
        for target in targets:
            if self._referrers(db, target.subject, target.version, deleted=permanent):
                raise RestError(
                    422,
                    42206,
                    "One or more references exist to the schema {magic=1,keytype=SCHEMA,"
                    f"subject={target.subject},version={target.version}}}.",
                )

    # ------------------------------------------------------------------ deletion

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        with self._tx() as db:
            every = self._versions(db, subject, deleted=True)
            if not every:
                raise subject_not_found(subject)
            if self._mode(db, subject) in READ_ONLY:
                raise read_only(subject)
            live = [v for v in every if not v.deleted]
            self._refuse_if_referenced(db, every if permanent else live, permanent)
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
                db.execute("DELETE FROM mode WHERE subject = ?", (subject,))
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
        number = parse_version(version)
        with self._tx() as db:
            every = self._versions(db, subject, deleted=True)
            if not every:
                raise subject_not_found(subject)
            if self._mode(db, subject) in READ_ONLY:
                raise read_only(subject)
            if number == -1:  # the latest live one; permanently, the latest of all
                candidates = every if permanent else [v for v in every if not v.deleted]
            else:
                candidates = [v for v in every if v.version == number]
            if not candidates:
                raise version_not_found(subject, version if number == -1 else number)
            target = candidates[-1]
            if permanent and not target.deleted:
                raise RestError(
                    404,
                    40407,
                    f"Subject '{subject}' Version {target.version} was not deleted first "
                    "before being permanently deleted",
                )
            if not permanent and target.deleted:
                raise RestError(
                    404,
                    40406,
                    f"Subject '{subject}' Version {target.version} was soft deleted. "
                    "Set permanent=true to delete permanently",
                )
            self._refuse_if_referenced(db, [target], permanent)
            if permanent:
                db.execute(
                    "DELETE FROM versions WHERE subject = ? AND version = ?",
                    (subject, target.version),
                )
            else:
                db.execute(
                    "UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?",
                    (subject, target.version),
                )
            return target.version


def _sorted_refs(refs: str) -> list[tuple[str, str, int]]:
    return sorted((r["name"], r["subject"], r["version"]) for r in json.loads(refs))
