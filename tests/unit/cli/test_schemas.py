"""`flashsale schemas ...` through click's runner: exact output, exit codes, one-line errors."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from producer.cli import main
from tests.conftest import field_of, schema_definition


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def all_commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*path, name))


@pytest.mark.parametrize(
    "path", [(), *(p for p, _ in all_commands(main))], ids=lambda p: " ".join(p) or "flashsale"
)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    example = result.output.split("Example:", 1)[1]
    assert re.search(r"^\s+flashsale \S", example, re.MULTILINE), example


def test_list_shows_versions_fingerprints_and_added_fields() -> None:
    result = run("schemas", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[2].split()[:4] == [
        "flash_sale_event",
        "v1",
        "37aaafe3a19a41bf",
        "flash_sale_event-v1.avsc",
    ]
    assert lines[3].split()[4:] == [
        "+session_id",
        "+sale_id",
        "+list_price",
        "+discount_pct",
        "+currency",
        "+device",
    ]


def test_check_reports_the_newest_full_transitive_compatible() -> None:
    result = run("schemas", "check")
    assert result.exit_code == 0
    assert "flash_sale_event v3 is FULL_TRANSITIVE compatible with v1, v2\n" in result.output


def incompatible_v3() -> dict[str, Any]:
    d = copy.deepcopy(schema_definition(2))
    field_of(d, "quantity")["type"] = "string"
    return d


def test_check_exits_1_with_reasons_on_an_incompatible_version(
    schema_variant_dir: Callable[..., Path],
) -> None:
    folder = schema_variant_dir({"flash_sale_event-v3.avsc": incompatible_v3()})
    result = run("--schemas-dir", str(folder), "schemas", "check", "--family", "flash_sale_event")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "flash_sale_event v3 is NOT FULL_TRANSITIVE compatible:",
        "  v3 (reader) cannot read v1 (writer) data: field 'quantity': TYPE_MISMATCH: "
        "reader type: string not compatible with writer type: int",
        "  v1 (reader) cannot read v3 (writer) data: field 'quantity': TYPE_MISMATCH: "
        "reader type: int not compatible with writer type: string",
        "  v3 (reader) cannot read v2 (writer) data: field 'quantity': TYPE_MISMATCH: "
        "reader type: string not compatible with writer type: int",
        "  v2 (reader) cannot read v3 (writer) data: field 'quantity': TYPE_MISMATCH: "
        "reader type: int not compatible with writer type: string",
    ]


def test_the_schemas_dir_comes_from_the_environment(
    schema_variant_dir: Callable[..., Path],
) -> None:
    folder = schema_variant_dir({"flash_sale_event-v3.avsc": incompatible_v3()})
    result = run("schemas", "check", env={"FLASHSALE_SCHEMAS_DIR": str(folder)})
    assert result.exit_code == 1
    # The verdict is on the folder's v3, not on the bundled schemas (which pass).
    assert "flash_sale_event v3 is NOT FULL_TRANSITIVE compatible:\n" in result.output
    assert "field 'quantity': TYPE_MISMATCH" in result.output


def test_diff_shows_changes_and_both_directions() -> None:
    result = run("schemas", "diff", "1", "2")
    assert result.exit_code == 0
    assert result.output.splitlines()[:3] == [
        "flash_sale_event v1 -> v2",
        '  + session_id: ["null","string"], default null',
        '  + sale_id: ["null","string"], default null',
    ]
    assert result.output.splitlines()[-3:] == [
        "backward: compatible (v2 reads v1 data)",
        "forward: compatible (v1 reads v2 data)",
        "full: compatible",
    ]


def test_validate_passes_on_the_bundled_contract() -> None:
    result = run("schemas", "validate")
    assert result.exit_code == 0


BAD_FILES = {
    "invalid JSON": (
        "flash_sale_event-v3.avsc",
        '{"type": "record",',
        "invalid JSON at line 1 column 19: Expecting property name enclosed in double quotes",
    ),
    "bad default": (
        "flash_sale_event-v3.avsc",
        {
            "type": "record",
            "name": "FlashSaleEvent",
            "namespace": "io.flashsale.events",
            "fields": [{"name": "quantity", "type": "int", "default": "one", "doc": "d"}],
        },
        "invalid Avro schema: Default value <one> must match schema type: int",
    ),
    "duplicate enum symbol": (
        "flash_sale_event-v3.avsc",
        {
            "type": "record",
            "name": "FlashSaleEvent",
            "namespace": "io.flashsale.events",
            "fields": [
                {
                    "name": "t",
                    "doc": "d",
                    "type": {"type": "enum", "name": "T", "symbols": ["a", "a"]},
                }
            ],
        },
        "invalid Avro schema: All symbols in an enum must be unique",
    ),
    "field without doc": (
        "flash_sale_event-v3.avsc",
        {
            "type": "record",
            "name": "FlashSaleEvent",
            "namespace": "io.flashsale.events",
            "fields": [{"name": "quantity", "type": "int"}],
        },
        "field 'quantity' has no doc",
    ),
    "renamed record": (
        "flash_sale_event-v3.avsc",
        {
            "type": "record",
            "name": "Other",
            "namespace": "io.flashsale.events",
            "fields": [{"name": "quantity", "type": "int", "doc": "d"}],
        },
        "record name 'io.flashsale.events.Other' differs from "
        "'io.flashsale.events.FlashSaleEvent' of flash_sale_event-v1.avsc; "
        "a family keeps one full name across versions",
    ),
    "badly named file": ("events.avsc", '"string"', "file name is not <family>-v<N>.avsc"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_validate_names_the_file_and_problem_in_one_line(
    schema_variant_dir: Callable[..., Path], case: str
) -> None:
    name, content, problem = BAD_FILES[case]
    folder = schema_variant_dir({name: content})
    result = run("--schemas-dir", str(folder), "schemas", "validate")
    assert result.exit_code == 1
    assert result.output == f"{folder / name}: {problem}\n"


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_other_commands_refuse_a_bad_folder_in_one_line(
    schema_variant_dir: Callable[..., Path], case: str
) -> None:
    name, content, problem = BAD_FILES[case]
    folder = schema_variant_dir({name: content})
    result = run("--schemas-dir", str(folder), "schemas", "check")
    assert result.exit_code == 1
    assert result.output == f"Error: {folder / name}: {problem}\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("--schemas-dir", "/no/such/dir", "schemas", "list"),
            1,
            "Error: /no/such/dir: no such schemas directory",
        ),
        (
            ("schemas", "diff", "1", "9"),
            1,
            "schemas: flash_sale_event has no version 9 (it has v1, v2, v3)",
        ),
        (
            ("schemas", "diff", "1", "two"),
            2,
            "Error: Invalid value for 'NEW': 'two' is not a valid integer.",
        ),
        (
            ("schemas", "check", "--level", "SIDEWAYS"),
            2,
            "Error: Invalid value for --level: unknown compatibility level 'SIDEWAYS'",
        ),
        (("schemas", "check", "--family", "nope"), 1, "schemas: no schema family 'nope'"),
    ],
)
def test_bad_input_gives_one_line_and_an_exit_code(
    args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(*args)
    assert result.exit_code == code
    assert len(result.output.splitlines()) == 1
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "flash_sale_event-v1.avsc").write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "producer.cli", "--schemas-dir", str(tmp_path), "schemas", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        f"Error: {tmp_path / 'flash_sale_event-v1.avsc'}: invalid JSON at line 1 column 2: "
        "Expecting property name enclosed in double quotes\n"
    )


def test_copy_names_the_side_without_a_registry_and_ignores_the_environment() -> None:
    env = {"FLASHSALE_SCHEMA_REGISTRY_URL": "http://127.0.0.1:1"}
    result = run("schemas", "copy", "--to", "http://127.0.0.1:2", env=env)
    assert result.exit_code == 2
    assert "--from: give the registry's URL (or schema.registry.url in --from-config)" in (
        result.output
    )
    same = run("schemas", "copy", "--from", "http://h:1", "--to", "http://h:1")
    assert same.exit_code == 2
    assert "--from and --to name the same registry" in same.output
