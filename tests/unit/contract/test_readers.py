"""`flashsale contract verify`: the writer x reader matrix, with Avro's verdict and data."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from confluent_kafka.schema_registry.common.serde import SchemaId

import consumers.wire
from producer.cli import main
from producer.contract import readers
from producer.contract.catalog import SchemaCatalog
from producer.contract.readers import load_reader, local_guid, verify_contracts, writer_from_text
from tests.conftest import field_of, schema_definition

ROOT = Path(__file__).resolve().parents[3]


def reader_file(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    definition = copy.deepcopy(schema_definition(2))
    change(definition)
    path = tmp_path / f"{name}.avsc"
    path.write_text(json.dumps(definition))
    return path


def needs_session(d: dict[str, Any]) -> None:
    field = field_of(d, "session_id")
    field["type"] = "string"
    del field["default"]


def narrow_enum(d: dict[str, Any]) -> None:
    enum = field_of(d, "event_type")["type"]
    enum["symbols"] = ["unknown", "view", "cart"]
    del enum["default"]


def writers(catalog: SchemaCatalog) -> list[Any]:
    return [writer_from_text(s.label, s.text, s.path) for s in catalog.versions()]


def test_every_version_as_a_reader_passes_against_every_writer(catalog: SchemaCatalog) -> None:
    readers = [load_reader(s.path) for s in catalog.versions()]
    told: list[tuple[int, int, str]] = []  # the progress each pair reports
    report = verify_contracts(writers(catalog), readers, on_pair=lambda *p: told.append(p))
    assert report.ok
    assert told == [
        (n, 9, f"v{w} x flash_sale_event-v{r}")
        for n, (w, r) in enumerate(((w, r) for w in (1, 2, 3) for r in (1, 2, 3)), 1)
    ]
    assert [(v.writer, v.reader, v.ok, v.records) for v in report.verdicts] == [
        (f"v{w}", f"flash_sale_event-v{r}", True, 400) for w in (1, 2, 3) for r in (1, 2, 3)
    ]
    # every pair's data went through both wire formats, each record read back by the
    # consumers' wire reader
    assert {
        (f.framing, f.records, f.problems, f.skipped) for v in report.verdicts for f in v.framings
    } == {("prefix", 400, (), None), ("header", 400, (), None)}


def test_local_writers_are_named_as_a_fresh_local_registry_names_them(
    catalog: SchemaCatalog, tmp_path: Path
) -> None:
    from devstack.registry import RegistryStore

    store = RegistryStore(tmp_path / "registry.sqlite")
    registered = [store.register("t-value", {"schema": s.text}) for s in catalog.versions()]
    store.close()
    report = verify_contracts(writers(catalog), [load_reader(catalog.get(1).path)], samples=20)
    named = [tuple(f.named_by for f in v.framings) for v in report.verdicts]
    assert named == [(f"schema id {r.schema_id}", f"schema guid {r.guid}") for r in registered]


def test_a_consumer_that_ignores_the_header_fails_the_header_framing_only(
    catalog: SchemaCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The consumers' wire reader broken on purpose: it no longer looks for the GUID
    # header, so it takes a bare body for a prefix-framed value.
    monkeypatch.setattr(consumers.wire, "VALUE_SCHEMA_ID_HEADER", "__schema_id")
    report = verify_contracts(writers(catalog), [load_reader(catalog.get(2).path)])
    assert not report.ok
    for verdict in report.verdicts:
        prefix, header = verdict.framings
        assert (prefix.framing, prefix.ok, prefix.records) == ("prefix", True, 400)
        assert (header.framing, header.ok, header.records) == ("header", False, 0)
        assert verdict.records == 0
        (problem,) = verdict.problems
        assert re.fullmatch(
            r"data, header framing: cart, purchase, view records cannot be read: the "
            r"consumers' wire reader refuses the record: bad magic byte \d+ \(expected 0\) "
            r"\[400 of 400 records\]",
            problem,
        ), problem


def test_a_header_naming_another_writer_fails_naming_both(
    catalog: SchemaCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The header framing broken on purpose: every record names v1 by its GUID.
    v1 = local_guid(catalog.get(1).text)
    right = readers.FRAMINGS["header"]

    def always_v1(body: bytes, ctx: Any, schema_id: SchemaId) -> bytes:
        return right(body, ctx, SchemaId("AVRO", schema_id.id, v1))

    monkeypatch.setitem(readers.FRAMINGS, "header", always_v1)
    report = verify_contracts(writers(catalog), [load_reader(catalog.get(3).path)], samples=50)
    assert report.verdict("v1", "flash_sale_event-v3").ok
    for name in ("v2", "v3"):
        verdict = report.verdict(name, "flash_sale_event-v3")
        assert verdict.problems == (
            f"data, header framing: cart, purchase, view records cannot be read: the record "
            f"names schema guid {v1}, which is v1's [50 of 50 records]",
        )


def test_a_registered_writer_without_a_guid_is_checked_in_the_prefix_framing_only(
    catalog: SchemaCatalog,
) -> None:
    # A registry older than Confluent 8 gives schemas no GUID: nothing can name the
    # writer in the header, so that check is skipped, and the report says so.
    v2 = catalog.get(2)
    writer = writer_from_text("registry v1", v2.text, "old registry", schema_id=41)
    report = verify_contracts([writer], [load_reader(v2.path)], samples=20)
    (verdict,) = report.verdicts
    assert verdict.ok and verdict.records == 20
    assert [(f.framing, f.named_by, f.skipped) for f in verdict.framings] == [
        ("prefix", "schema id 41", None),
        ("header", "-", "the registry gives registry v1 no GUID to name it by"),
    ]
    assert report.notes == (
        "writer registry v1 x reader flash_sale_event-v2: header framing not checked: the "
        "registry gives registry v1 no GUID to name it by",
    )
    (pair,) = report.to_json()["pairs"]
    assert [(f["framing"], f["checked"], f.get("note")) for f in pair["framings"]] == [
        ("prefix", True, None),
        ("header", False, "the registry gives registry v1 no GUID to name it by"),
    ]


def test_the_shipped_consumer_contracts_pass(catalog: SchemaCatalog) -> None:
    paths = sorted((ROOT / "consumers" / "contracts").glob("*.avsc"))
    assert [p.name for p in paths] == ["legacy-dashboard.avsc", "silver.avsc"]
    assert verify_contracts(writers(catalog), [load_reader(p) for p in paths]).ok


def test_a_reader_requiring_a_field_v1_lacks_fails_naming_it(
    catalog: SchemaCatalog, tmp_path: Path
) -> None:
    report = verify_contracts(
        writers(catalog), [load_reader(reader_file(tmp_path, "needs-session", needs_session))]
    )
    verdict = report.verdict("v1", "needs-session")
    assert not verdict.ok and verdict.records == 0
    assert verdict.problems == (
        "Avro resolution: needs-session (reader) cannot read v1 (writer) data: field "
        "'session_id': READER_FIELD_MISSING_DEFAULT_VALUE: reader field 'session_id' has no "
        "default and the writer does not have it",
        "data: cart, purchase, view records cannot be read: No default value for field "
        "session_id in io.flashsale.events.FlashSaleEvent [400 of 400 records]",
    )


def test_a_narrowed_enum_fails_on_the_removed_symbol_and_is_reported(
    catalog: SchemaCatalog, tmp_path: Path
) -> None:
    report = verify_contracts(
        writers(catalog), [load_reader(reader_file(tmp_path, "narrow", narrow_enum))]
    )
    verdict = report.verdict("v2", "narrow")
    assert not verdict.ok
    assert verdict.problems[0].startswith(
        "Avro resolution: narrow (reader) cannot read v2 (writer) data: field 'event_type': "
        "MISSING_ENUM_SYMBOLS: writer enum symbols {'purchase'}"
    )
    purchases = verdict.problems[1]
    assert purchases.startswith("data: purchase records cannot be read: purchase not found")
    # every record but the purchases still decoded
    assert verdict.records == 400 - int(purchases.rsplit("[", 1)[1].split()[0])


def test_required_non_default_fields(catalog: SchemaCatalog, tmp_path: Path) -> None:
    path = reader_file(
        tmp_path, "sale-kpis", lambda d: d.update({"flashsale.requires": ["sale_id"]})
    )
    report = verify_contracts(writers(catalog), [load_reader(path)])
    assert report.verdict("v1", "sale-kpis").problems == (
        "data: field 'sale_id' is required but v1 data carries only its default (null) "
        "[400 of 400 records]",
    )
    # v2 data outside the sale window has no sale id either: that is reported too
    assert "is required but v2 data" in report.verdict("v2", "sale-kpis").problems[0]


def test_outputs_carry_the_same_verdicts(tmp_path: Path) -> None:
    narrow = reader_file(tmp_path, "narrow", narrow_enum)
    good = ROOT / "consumers" / "contracts" / "silver.avsc"
    args = ["contract", "verify", "--reader", str(good), "--reader", str(narrow)]
    table = CliRunner().invoke(main, args)
    as_json = CliRunner().invoke(main, [*args, "--format", "json"])
    junit_path = tmp_path / "contracts.xml"
    junit = CliRunner().invoke(main, [*args, "--format", "junit", "--out", str(junit_path)])
    assert table.exit_code == as_json.exit_code == junit.exit_code == 1

    lines = table.stdout.splitlines()  # (a slow run's progress lines are on stderr)
    assert lines[:4] == [
        "writer \\ reader  silver  narrow",
        "v1               ok      FAIL",
        "v2               ok      FAIL",
        "v3               ok      FAIL",
    ]
    assert lines[-1] == "contract verification FAILED (6 pairs)"
    from_table = {
        (row.split()[0], reader): status
        for row in lines[1:4]
        for reader, status in zip(("silver", "narrow"), row.split()[1:], strict=True)
    }
    from_json = {
        (p["writer"], p["reader"]): "ok" if p["ok"] else "FAIL"
        for p in json.loads(as_json.stdout)["pairs"]
    }
    assert {
        (p["writer"], p["reader"]): [f["framing"] for f in p["framings"] if f["checked"]]
        for p in json.loads(as_json.stdout)["pairs"]
    } == {pair: ["prefix", "header"] for pair in from_json}
    suite = ElementTree.parse(junit_path).getroot()
    from_junit = {
        (case.get("name", "").split()[-1], case.get("classname", "").split()[-1]): (
            "FAIL" if case.find("failure") is not None else "ok"
        )
        for case in suite.iter("testcase")
    }
    assert from_table == from_json == from_junit
    assert suite.get("failures") == "3" and suite.get("tests") == "6"
    assert junit.stdout == f"FAILED: report written to {junit_path}\n"


def test_a_bad_requires_list_is_one_line(tmp_path: Path) -> None:
    path = reader_file(tmp_path, "bad", lambda d: d.update({"flashsale.requires": ["nope"]}))
    result = CliRunner().invoke(main, ["contract", "verify", "--reader", str(path)])
    assert result.exit_code == 1
    assert (
        result.output == f"Error: {path}: flashsale.requires names 'nope', which the reader lacks\n"
    )


@pytest.mark.parametrize("fmt", ["json", "junit"])
def test_passing_reports_exit_zero(fmt: str) -> None:
    result = CliRunner().invoke(main, ["contract", "verify", "--format", fmt])
    assert result.exit_code == 0


def test_a_report_into_a_missing_folder_is_written_and_an_impossible_one_refused(
    tmp_path: Path,
) -> None:
    deep = tmp_path / "reports" / "today" / "contracts.xml"
    written = CliRunner().invoke(
        main, ["contract", "verify", "--format", "junit", "--out", str(deep)]
    )
    assert written.exit_code == 0, written.output
    assert written.stdout == f"ok: report written to {deep}\n"
    assert deep.read_text().startswith("<?xml")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    refused = CliRunner().invoke(main, ["contract", "verify", "--out", str(a_file / "r.xml")])
    assert refused.exit_code == 2
    assert refused.output == f"Error: --out {a_file / 'r.xml'}: cannot write: Not a directory\n"
