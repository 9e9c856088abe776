"""Adding a schema version is one step: a new .avsc file, no code.

A v4 that adds optional fields (none of which the simulator knows) is linted,
checked, simulated, registered, produced (dry run and for real) and read back, from
a copy of the schema folder, without a change to flashsale.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import fastavro
import pytest

from tests.conftest import V4_FIELDS, v4_definition
from tests.integration.conftest import Endpoints, cli

pytestmark = pytest.mark.integration

V4_DEFAULTS = {f["name"]: f["default"] for f in V4_FIELDS}


def avro_records(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        return [r for r in fastavro.reader(f) if isinstance(r, dict)]


def test_a_new_version_needs_only_its_avsc_file(
    stack: Endpoints, topic: str, tmp_path: Path, schema_variant_dir: Any
) -> None:
    folder = schema_variant_dir({"flash_sale_event-v4.avsc": v4_definition()})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = cli(stack, "--schemas-dir", str(folder), *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result

    run("schemas", "validate")
    check = run("schemas", "check").stdout
    assert "flash_sale_event v4 is FULL_TRANSITIVE compatible with v1, v2, v3" in check

    # Offline: v4's records are v3's records plus the new fields at their defaults.
    for version in ("3", "4"):
        for suffix in ("avro", "jsonl"):
            run("simulate", "--scenario", "flash-sale", "--schema-version", version,
                "--events", "500", "--seed", "5", "--run-id", "v3-and-v4",
                "--out", f"v{version}.{suffix}")  # fmt: skip
    v3, v4 = avro_records(tmp_path / "v3.avro"), avro_records(tmp_path / "v4.avro")
    assert len(v4) == 500
    assert v4 == [{**r, **V4_DEFAULTS} for r in v3]
    lines3 = (tmp_path / "v3.jsonl").read_text().splitlines()
    lines4 = (tmp_path / "v4.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines4] == [
        {**json.loads(line), **V4_DEFAULTS} for line in lines3
    ]

    # Against the registry: registered with the rest, then produced with and read back.
    registered = run("schemas", "register", "--topic", topic).stdout
    assert f"{topic}-value: flash_sale_event v4 registered" in registered
    dry = run("produce", "--schema-version", "4", "--dry-run", "--topic", topic).stdout
    samples = [json.loads(line) for line in dry.splitlines() if line.startswith("{")]
    assert len(samples) == 3
    assert all(s["channel"] == "app" and s["coupon_code"] is None for s in samples)
    run("produce", "--schema-version", "4", "--events", "40", "--max-rate", "--topic", topic,
        "--create-topic", "--quiet")  # fmt: skip
    reader = folder / "flash_sale_event-v4.avsc"
    back = run("consume", "--topic", topic, "--from-beginning", "--max", "40",
               "--reader-schema", str(reader), "--show-schema-id")  # fmt: skip
    rows = [json.loads(line) for line in back.stdout.splitlines()]
    assert len(rows) == 40
    assert all({k: r[k] for k in V4_DEFAULTS} == V4_DEFAULTS for r in rows)
    status = run("schemas", "status", "--topic", topic).stdout
    assert "v4" in status and "not registered" not in status
    v4_line = next(line for line in registered.splitlines() if " v4 registered as id " in line)
    v4_id = int(v4_line.split(" as id ")[1].split(",")[0])
    assert {r["_schema_id"] for r in rows} == {v4_id}
