"""The registry's SQLite store, directly (no HTTP): what survives a restart and an upgrade."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from devstack.registry.store import RegistryStore

# The layout the first devstack registry wrote (schema texts were UNIQUE then).
FIRST_LAYOUT = """
CREATE TABLE schemas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schema_text TEXT NOT NULL UNIQUE,
    normalized TEXT NOT NULL
);
CREATE TABLE versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE TABLE config (subject TEXT PRIMARY KEY, level TEXT NOT NULL);
CREATE TABLE mode (subject TEXT PRIMARY KEY, mode TEXT NOT NULL);
"""
TEXT = '{"type":"record","name":"R","fields":[{"name":"f","type":"string"}]}'


def test_a_file_of_the_first_layout_is_upgraded_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    old = sqlite3.connect(path)
    old.executescript(FIRST_LAYOUT)
    old.execute("INSERT INTO schemas VALUES (7, ?, ?)", (TEXT, TEXT))
    old.execute("INSERT INTO versions VALUES ('s', 1, 7, 0)")
    old.execute("INSERT INTO config VALUES ('s', 'FULL')")
    old.commit()
    old.close()

    store = RegistryStore(path)
    assert store.get_version("s", "1").schema_id == 7
    assert store.get_config("s") == {"compatibilityLevel": "FULL"}
    # What the first layout forbade: one text under two ids (IMPORT keeps the sender's).
    store.set_mode("IMPORT", "t")
    imported = store.register("t", {"schema": TEXT, "id": 9, "version": 1})
    assert (imported.schema_id, imported.schema) == (9, TEXT)
    store.close()

    reopened = RegistryStore(path)  # and a second opening changes nothing
    assert [v.schema_id for v in reopened.every_schema()] == [7, 9]
    assert json.loads(reopened.schema_by_id(9).schema) == json.loads(TEXT)
    reopened.close()
