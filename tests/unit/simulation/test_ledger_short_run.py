"""The ledger against a recount of the file, on a run short enough to be the mutation
command's test (``python -m bench mutation``); test_ledger.py recounts a longer one."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro

from producer.contract.catalog import SchemaCatalog
from producer.simulation.run import run_simulation
from producer.simulation.scenario_file import load_scenario
from tests.unit.simulation.test_ledger import recount


def test_a_short_run_ledger_equals_a_recount(tmp_path: Path, catalog: SchemaCatalog) -> None:
    out, ledger_path = tmp_path / "run.avro", tmp_path / "ledger.json"
    result = run_simulation(
        load_scenario("default"), 11, out, catalog, ledger_path=ledger_path, duration=150
    )
    with out.open("rb") as f:
        records = list(fastavro.reader(f))
    assert len(records) == result.events
    assert {r["event_type"] for r in records} == {"view", "cart", "purchase"}
    ledger = json.loads(ledger_path.read_text())
    expected = recount(records)
    assert ledger["total_events"] == expected["total_events"]
    assert ledger["total_revenue"] == expected["total_revenue"]
    for table in ("by_minute", "by_category", "by_product"):
        assert ledger[table] == expected[table], table
    assert ledger["complete"] is True
    assert ledger["by_event_type"]["purchase"]["revenue"] == expected["total_revenue"]
