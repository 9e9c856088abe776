"""Shared test helpers: the bundled contract and a way to write schema variants."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from producer.contract.catalog import SchemaCatalog, bundled_schemas_dir, load_catalog

# `pytest` (the README's command, and CI's) replays the same examples every run, so a
# red run is red again; HYPOTHESIS_PROFILE=explore draws new ones, and Hypothesis
# prints the seed of any failure.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


# A version 4 that only adds optional fields, none of which the event knows: what a
# team adds with nothing but a new .avsc file (the events table needs no entry).
V4_FIELDS = [
    {"name": "coupon_code", "type": ["null", "string"], "default": None, "doc": "Coupon used."},
    {"name": "channel", "type": "string", "default": "app", "doc": "Sales channel."},
    {"name": "items_in_cart", "type": "int", "default": 7, "doc": "Cart size."},
]
# A type the fast encoder leaves to fastavro.
ARRAY_FIELD = {"name": "tags", "type": {"type": "array", "items": "string"}, "default": [],
               "doc": "Tags."}  # fmt: skip


def v4_definition(extra: list[dict[str, Any]] = V4_FIELDS) -> dict[str, Any]:
    """The released v3 plus ``extra`` fields: FULL_TRANSITIVE compatible with v1..v3."""
    definition = schema_definition(3)
    definition["fields"] += extra
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
