"""Shared test helpers: the bundled contract and a way to write schema variants."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from producer.contract.catalog import SchemaCatalog, bundled_schemas_dir, load_catalog


@pytest.fixture(scope="session")
def catalog() -> SchemaCatalog:
    return load_catalog(bundled_schemas_dir())


def schema_definition(version: int) -> dict[str, Any]:
    path = bundled_schemas_dir() / f"flash_sale_event-v{version}.avsc"
    return json.loads(path.read_text())


def changed_definition(version: int, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The released ``version``'s definition after ``change`` (which edits it in place)."""
    definition = schema_definition(version)
    change(definition)
    return definition


def field_of(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in definition["fields"] if f["name"] == name)


@pytest.fixture
def schema_variant_dir(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the released schemas plus extra files ``{file name: definition or text}``."""

    def make(extra: dict[str, Any]) -> Path:
        folder = tmp_path / "schemas"
        folder.mkdir(exist_ok=True)
        for path in bundled_schemas_dir().glob("*.avsc"):
            shutil.copy(path, folder / path.name)
        for name, content in extra.items():
            text = content if isinstance(content, str) else json.dumps(content, indent=2)
            (folder / name).write_text(text)
        return folder

    return make
