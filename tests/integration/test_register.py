"""`flashsale schemas register` against the real registry: ordered, idempotent, guarded."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import requests

from tests.conftest import field_of, schema_definition
from tests.integration.conftest import Endpoints, cli

pytestmark = pytest.mark.integration


def level_of(stack: Endpoints, subject: str) -> str | None:
    answer = requests.get(f"{stack.registry_url}/config/{subject}", timeout=5)
    return answer.json().get("compatibilityLevel") if answer.ok else None


def test_register_in_order_then_idempotently(stack: Endpoints, topic: str) -> None:
    dry = cli(stack, "schemas", "register", "--topic", topic, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"{topic}-key: would register flash_sale_key v1",
        f"{topic}-value: would register flash_sale_event v1",
        f"{topic}-value: would register flash_sale_event v2",
    ]
    assert level_of(stack, f"{topic}-value") is None  # a dry run changes nothing

    first = cli(stack, "schemas", "register", "--topic", topic, "--version", "1")
    assert first.returncode == 0, first.stderr
    assert level_of(stack, f"{topic}-value") == "FULL_TRANSITIVE"
    second = cli(stack, "schemas", "register", "--topic", topic, "--version", "2")
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert lines[1].startswith(f"{topic}-value: flash_sale_event v2 registered as id ")
    assert lines[1].endswith(", version 2")

    again = cli(stack, "schemas", "register", "--topic", topic, "--all")
    assert again.returncode == 0, again.stderr
    assert all(" already registered as id " in line for line in again.stdout.splitlines())
    versions = requests.get(f"{stack.registry_url}/subjects/{topic}-value/versions", timeout=5)
    assert versions.json() == [1, 2]


def test_an_incompatible_version_is_refused_with_reasons(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    assert cli(stack, "schemas", "register", "--topic", topic).returncode == 0
    folder = tmp_path / "pr"
    folder.mkdir()
    for name in ("flash_sale_event-v1.avsc", "flash_sale_event-v2.avsc", "flash_sale_key-v1.avsc"):
        (folder / name).write_text(
            (Path(__file__).resolve().parents[2] / "schemas" / name).read_text()
        )
    broken = copy.deepcopy(schema_definition(2))
    field_of(broken, "quantity")["type"] = "string"
    (folder / "flash_sale_event-v3.avsc").write_text(json.dumps(broken))
    result = cli(stack, "--schemas-dir", str(folder), "schemas", "register", "--topic", topic)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(
        f"Error: flash_sale_event-v3.avsc is incompatible with {topic}-value at FULL_TRANSITIVE: "
    )
    assert "field 'quantity': TYPE_MISMATCH" in result.stderr
    versions = requests.get(f"{stack.registry_url}/subjects/{topic}-value/versions", timeout=5)
    assert versions.json() == [1, 2]
