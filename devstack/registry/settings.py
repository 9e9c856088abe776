"""Compatibility levels and modes, global and per subject, as Confluent keeps them."""

from __future__ import annotations

import sqlite3
from typing import Any

from devstack.registry.database import Database
from devstack.registry.errors import (
    RestError,
    invalid_level,
    not_permitted,
    read_only,
    subject_not_found,
)
from producer.contract.compat import CompatibilityLevel

__all__ = ["DEFAULT_LEVEL", "DEFAULT_MODE", "IMPORTING", "MODES", "READ_ONLY", "Settings"]

DEFAULT_LEVEL = CompatibilityLevel.BACKWARD
DEFAULT_MODE = "READWRITE"
MODES = ("READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT", "FORWARD")
IMPORTING = ("IMPORT", "FORWARD")
READ_ONLY = ("READONLY", "READONLY_OVERRIDE")
_GLOBAL = ""  # the config/mode row of the registry as a whole


class Settings(Database):
    """Levels and modes over the registry's file."""

    def _level(self, db: sqlite3.Connection, subject: str) -> CompatibilityLevel:
        for key in (subject, _GLOBAL):
            row = db.execute("SELECT level FROM config WHERE subject = ?", (key,)).fetchone()
            if row is not None:
                return CompatibilityLevel(row[0])
        return DEFAULT_LEVEL

    def _own_config(self, db: sqlite3.Connection, key: str) -> dict[str, Any]:
        """What ``key`` (a subject, or the global row) has set itself, as Confluent names it."""
        own: dict[str, Any] = {}
        row = db.execute("SELECT level FROM config WHERE subject = ?", (key,)).fetchone()
        if row is not None:
            own["compatibilityLevel"] = str(row[0])
        flag = db.execute("SELECT normalize FROM normalize WHERE subject = ?", (key,)).fetchone()
        if flag is not None:
            own["normalize"] = bool(flag[0])
        return own

    def _global_config(self, db: sqlite3.Connection) -> dict[str, Any]:
        return {
            **self._own_config(db, _GLOBAL),
            "compatibilityLevel": self._level(db, _GLOBAL).value,
        }

    def normalizes(self, db: sqlite3.Connection, subject: str) -> bool:
        """Whether ``subject``'s config (else the global one) asks registrations normalized."""
        for key in (subject, _GLOBAL):
            flag = db.execute(
                "SELECT normalize FROM normalize WHERE subject = ?", (key,)
            ).fetchone()
            if flag is not None:
                return bool(flag[0])
        return False

    def get_config(
        self, subject: str | None = None, default_to_global: bool = False
    ) -> dict[str, Any]:
        """A config as Confluent answers it: ``compatibilityLevel`` and ``normalize`` when set."""
        with self._tx() as db:
            if subject is None:
                return self._global_config(db)
            own = self._own_config(db, subject)
            if own:
                return own
            if default_to_global:
                return self._global_config(db)
        raise RestError(
            404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
        )

    def set_config(self, body: Any, subject: str | None = None) -> dict[str, Any]:
        """Set what the body names (``compatibility``, ``normalize``); answer what was set."""
        if not isinstance(body, dict):
            raise invalid_level(body)
        answer: dict[str, Any] = {}
        if body.get("compatibility") is not None or body.get("normalize") is None:
            level = body.get("compatibility")
            if not isinstance(level, str):
                raise invalid_level(level)
            try:
                answer["compatibility"] = CompatibilityLevel.parse(level).value
            except ValueError:
                raise invalid_level(level) from None
        if body.get("normalize") is not None:
            if not isinstance(body["normalize"], bool):
                raise RestError(
                    422, 42203, f"Invalid normalize {body['normalize']!r}: not a boolean"
                )
            answer["normalize"] = body["normalize"]
        with self._tx() as db:
            if self._mode(db, subject or _GLOBAL) in READ_ONLY:
                raise read_only(subject)
            if "compatibility" in answer:
                db.execute(
                    "INSERT INTO config (subject, level) VALUES (?, ?) "
                    "ON CONFLICT(subject) DO UPDATE SET level = excluded.level",
                    (subject or _GLOBAL, answer["compatibility"]),
                )
            if "normalize" in answer:
                db.execute(
                    "INSERT INTO normalize (subject, normalize) VALUES (?, ?) "
                    "ON CONFLICT(subject) DO UPDATE SET normalize = excluded.normalize",
                    (subject or _GLOBAL, answer["normalize"]),
                )
        return answer

    def delete_config(self, subject: str | None = None) -> dict[str, Any]:
        """Remove a config: the global one answers what applied; a subject's, what it had."""
        with self._tx() as db:
            if self._mode(db, subject or _GLOBAL) in READ_ONLY:
                raise read_only(subject)
            if subject is None:
                previous = self._global_config(db)
            else:
                previous = self._own_config(db, subject)
                if not previous:
                    raise subject_not_found(subject)
            for table in ("config", "normalize"):
                db.execute(f"DELETE FROM {table} WHERE subject = ?", (subject or _GLOBAL,))
        return previous

    def _mode_row(self, db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT mode FROM mode WHERE subject = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _mode(self, db: sqlite3.Connection, subject: str) -> str:
        """The mode in force for ``subject``: READONLY_OVERRIDE globally beats its own."""
        global_mode = self._mode_row(db, _GLOBAL)
        if global_mode == "READONLY_OVERRIDE":
            return global_mode
        return self._mode_row(db, subject) or global_mode or DEFAULT_MODE

    def get_mode(self, subject: str | None = None, default_to_global: bool = False) -> str:
        with self._tx() as db:
            if subject is None:
                return self._mode_row(db, _GLOBAL) or DEFAULT_MODE
            own = self._mode_row(db, subject)
            if own is not None and self._mode_row(db, _GLOBAL) != "READONLY_OVERRIDE":
                return own
            if default_to_global or own is not None:
                return self._mode(db, subject)
        raise RestError(
            404, 40409, f"Subject '{subject}' does not have subject-level mode configured"
        )

    def set_mode(self, mode: Any, subject: str | None = None, force: bool = False) -> str | None:
        """Set (or, with ``None``, clear) a mode; IMPORT needs an empty registry or force."""
        if mode is None:
            self.delete_mode(subject, missing_ok=True)
            return None
        if not isinstance(mode, str) or mode.upper() not in MODES:
            raise RestError(
                422,
                42204,
                "Invalid mode. Valid values are READWRITE, READONLY, IMPORT and FORWARD.",
            )
        wanted = mode.upper()
        if wanted == "FORWARD" and subject is not None:
            raise RestError(422, 42204, "Forward mode only supported on global level")
        with self._tx() as db:
            key = subject or _GLOBAL
            if wanted == "IMPORT" and self._mode(db, key) != "IMPORT" and not force:
                clause, args = ("subject = ?", (subject,)) if subject else ("1", ())
                live = db.execute(
                    f"SELECT 1 FROM versions WHERE {clause} AND deleted = 0 LIMIT 1", args
                ).fetchone()
                if live is not None:
                    raise not_permitted("Cannot import since found existing subjects")
                db.execute(f"DELETE FROM versions WHERE {clause}", args)  # soft-deleted leftovers
            db.execute(
                "INSERT INTO mode (subject, mode) VALUES (?, ?) "
                "ON CONFLICT(subject) DO UPDATE SET mode = excluded.mode",
                (key, wanted),
            )
        return wanted

    def delete_mode(self, subject: str | None = None, missing_ok: bool = False) -> str:
        """Remove a mode and answer it; a subject without one is 40401, as in Confluent."""
        with self._tx() as db:
            key = subject or _GLOBAL
            previous = self._mode_row(db, key)
            if previous is None and subject is not None and not missing_ok:
                raise subject_not_found(subject)
            db.execute("DELETE FROM mode WHERE subject = ?", (key,))
        return previous or DEFAULT_MODE
