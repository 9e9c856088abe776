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
        f"{topic}-value: would register flash_sale_event v3",
        f"{topic}-products-value: would register flash_sale_product v1",
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

    rest = cli(stack, "schemas", "register", "--topic", topic, "--all")
    assert rest.returncode == 0, rest.stderr
    assert [" already registered as id " in line for line in rest.stdout.splitlines()] == [
        True, True, True, False, True,  # key, v1, v2, the product were there; v3 is new
    ]  # fmt: skip
    again = cli(stack, "schemas", "register", "--topic", topic, "--all")
    assert again.returncode == 0, again.stderr
    assert all(" already registered as id " in line for line in again.stdout.splitlines())
    versions = requests.get(f"{stack.registry_url}/subjects/{topic}-value/versions", timeout=5)
    assert versions.json() == [1, 2, 3]


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
    assert versions.json() == [1, 2, 3]


def test_check_against_registry_exit_codes(stack: Endpoints, topic: str, tmp_path: Path) -> None:
    fresh = cli(stack, "schemas", "check", "--against-registry", "--topic", topic)
    assert fresh.returncode == 0
    assert "has no versions yet" in fresh.stdout

    assert cli(stack, "schemas", "register", "--topic", topic, "--version", "1").returncode == 0
    ok = cli(stack, "schemas", "check", "--against-registry", "--topic", topic)
    assert (ok.returncode, ok.stdout) == (
        0,
        f"flash_sale_event-v3.avsc is compatible with {topic}-value at FULL_TRANSITIVE\n",
    )

    folder = tmp_path / "pr"
    folder.mkdir()
    broken = copy.deepcopy(schema_definition(2))
    field_of(broken, "quantity")["type"] = "string"
    (folder / "flash_sale_event-v1.avsc").write_text(json.dumps(schema_definition(1)))
    (folder / "flash_sale_event-v2.avsc").write_text(json.dumps(broken))
    bad = cli(
        stack,
        "--schemas-dir",
        str(folder),
        "schemas",
        "check",
        "--against-registry",
        "--topic",
        topic,
    )
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0] == (
        f"flash_sale_event-v2.avsc is NOT compatible with {topic}-value at FULL_TRANSITIVE:"
    )
    assert "field 'quantity': TYPE_MISMATCH" in bad.stdout

    down = cli(
        stack,
        "schemas",
        "check",
        "--against-registry",
        "--topic",
        topic,
        "--schema-registry-url",
        "http://127.0.0.1:9",
    )
    assert down.returncode == 3  # unreachable: try again later, not "incompatible"
    assert down.stderr.startswith("Error: could not check: cannot reach the Schema Registry at ")


def test_pull_round_trips_and_status(stack: Endpoints, topic: str, tmp_path: Path) -> None:
    assert cli(stack, "schemas", "register", "--topic", topic, "--version", "1").returncode == 0
    partial = cli(stack, "schemas", "status", "--topic", topic)
    assert partial.returncode == 1
    rows = partial.stdout.splitlines()[1:]
    assert [row.split()[:2] for row in rows] == [
        [f"{topic}-key", "v1"],
        [f"{topic}-value", "v1"],
        [f"{topic}-value", "v2"],
        [f"{topic}-value", "v3"],
        [f"{topic}-products-value", "v1"],
    ]
    assert rows[0].endswith("in sync") and rows[1].endswith("in sync")
    assert rows[4].endswith("in sync")  # the catalog's record goes with any version
    assert rows[2].split()[2:] == rows[3].split()[2:] == ["-", "not", "registered"]

    assert cli(stack, "schemas", "register", "--topic", topic).returncode == 0
    synced = cli(stack, "schemas", "status", "--topic", topic)
    assert synced.returncode == 0, synced.stdout

    out = tmp_path / "pulled"
    pulled = cli(stack, "schemas", "pull", "--topic", topic, "--out", str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "flash_sale_event-v1.avsc",
        "flash_sale_event-v2.avsc",
        "flash_sale_event-v3.avsc",
        "flash_sale_key-v1.avsc",
        "flash_sale_product-v1.avsc",
    ]
    from producer.contract.catalog import bundled_schemas_dir, load_catalog

    local, remote = load_catalog(bundled_schemas_dir()), load_catalog(out)
    assert [s.fingerprint for s in remote] == [s.fingerprint for s in local]
    # Docs are kept too, but on a primitive (the key) Java Avro, so Confluent, keeps none.
    assert [s.definition for s in remote if s.family != "flash_sale_key"] == [
        s.definition for s in local if s.family != "flash_sale_key"
    ]
    assert [s.definition for s in remote if s.family == "flash_sale_key"] == ["string"]


def test_compat_get_and_set(stack: Endpoints, subject: str) -> None:
    assert cli(stack, "schemas", "compat", "set", "forward", "--subject", subject).stdout == (
        f"{subject}: FORWARD\n"
    )
    got = cli(stack, "schemas", "compat", "get", "--subject", subject)
    assert (got.returncode, got.stdout) == (0, "FORWARD\n")
    bad = cli(stack, "schemas", "compat", "set", "SIDEWAYS", "--subject", subject)
    assert bad.returncode == 2
    assert "unknown compatibility level 'SIDEWAYS'" in bad.stderr


def test_contract_verify_against_the_registry(stack: Endpoints, topic: str) -> None:
    assert cli(stack, "schemas", "register", "--topic", topic).returncode == 0
    result = cli(stack, "contract", "verify", "--against", "registry", "--topic", topic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[:4] == [
        "writer \\ reader  legacy-dashboard  silver",
        "registry v1      ok                ok",
        "registry v2      ok                ok",
        "registry v3      ok                ok",
    ]
    # Each pair's data was framed both ways, naming the writer by the registry's own id
    # (prefix) and GUID (header).
    as_json = cli(stack, "contract", "verify", "--against", "registry", "--topic", topic,
                  "--format", "json")  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    versions = [
        requests.get(f"{stack.registry_url}/subjects/{topic}-value/versions/{v}", timeout=5).json()
        for v in (1, 2, 3)
    ]
    named = {
        (pair["writer"], f["framing"]): (f["writer_named_by"], f["ok"], f["records"])
        for pair in json.loads(as_json.stdout)["pairs"]
        for f in pair["framings"]
    }
    assert named == {
        (f"registry v{v['version']}", framing): (by, True, 400)
        for v in versions
        for framing, by in (
            ("prefix", f"schema id {v['id']}"),
            ("header", f"schema guid {v['guid']}"),
        )
    }
