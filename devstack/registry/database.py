"""The registry's SQLite file: its layout, its upgrade from older layouts, and one
lock and transaction per operation."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import avro.schema

__all__ = ["Database"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schemas (
    id INTEGER PRIMARY KEY,
    schema_text TEXT NOT NULL,
    normalized TEXT NOT NULL,
    refs TEXT NOT NULL DEFAULT '[]',
    metadata TEXT,
    rule_set TEXT
);
CREATE INDEX IF NOT EXISTS schemas_by_text ON schemas (schema_text);
CREATE TABLE IF NOT EXISTS versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS config (subject TEXT PRIMARY KEY, level TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS normalize (subject TEXT PRIMARY KEY, normalize INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mode (subject TEXT PRIMARY KEY, mode TEXT NOT NULL);
"""
_SCHEMA_VERSION = 2  # PRAGMA user_version of the layout above


class Database:
    """An open registry file (or memory); subclasses add the registry's rules."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate()
        self._parsed: dict[int, avro.schema.Schema] = {}

    def _migrate(self) -> None:
        """Bring a file written by an older devstack to today's layout, keeping its data."""
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        old = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schemas'"
        ).fetchone()
        if old is not None and version < _SCHEMA_VERSION:
            # The first layout had UNIQUE schema texts and no references or metadata.
            self._db.executescript(
                "BEGIN; ALTER TABLE schemas RENAME TO schemas_v1;"
                + _SCHEMA
                + "INSERT INTO schemas (id, schema_text, normalized)"
                " SELECT id, schema_text, normalized FROM schemas_v1;"
                " DROP TABLE schemas_v1; COMMIT;"
            )
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

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
