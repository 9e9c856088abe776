"""The ledger equals an independent recount of what was emitted and confirmed."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from producer.contract.catalog import SchemaCatalog
from producer.errors import InvalidOption
from producer.simulation.engine import Simulation
from producer.simulation.ledger import Ledger, minute_of, read_ledger
from producer.simulation.run import run_simulation
from producer.simulation.scenario_file import load_scenario


def recount(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Tally decoded records the way a consumer would, independently of Ledger."""
    by: dict[str, dict[str, dict[str, Any]]] = {
        "by_minute": defaultdict(lambda: defaultdict(int)),
        "by_category": defaultdict(lambda: defaultdict(int)),
        "by_product": defaultdict(lambda: defaultdict(int)),
    }
    revenue = Decimal(0)
    for r in records:
        ts: datetime = r["timestamp"]
        minute = ts.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:00Z")
        for table, key in (
            ("by_minute", minute),
            ("by_category", r["category"]),
            ("by_product", r["product_id"]),
        ):
            slot = by[table][key]
            slot["events"] += 1
            slot[r["event_type"]] += 1
            if r["event_type"] == "purchase":
                slot["units"] += r["quantity"]
                slot["revenue"] = slot.get("revenue", Decimal(0)) + r["revenue"]
        if r["event_type"] == "purchase":
            revenue += r["revenue"]
    normalized = {
        table: {
            key: {
                "events": v["events"],
                "view": v["view"],
                "cart": v["cart"],
                "purchase": v["purchase"],
                "units": v["units"],
                "revenue": str(v.get("revenue", Decimal(0)).quantize(Decimal("0.01"))),
            }
            for key, v in sorted(rows.items())
        }
        for table, rows in by.items()
    }
    return {"total_events": len(records), "total_revenue": str(revenue), **normalized}


def test_the_ledger_equals_a_recount_of_the_file(tmp_path: Path, catalog: SchemaCatalog) -> None:
    out, ledger_path = tmp_path / "run.avro", tmp_path / "ledger.json"
    result = run_simulation(
        load_scenario("flash-sale"), 11, out, catalog, ledger_path=ledger_path, duration=300
    )
    with out.open("rb") as f:
        records = list(fastavro.reader(f))
    assert len(records) == result.events > 20_000
    ledger = json.loads(ledger_path.read_text())
    expected = recount(records)
    assert ledger["total_events"] == expected["total_events"]
    assert ledger["total_revenue"] == expected["total_revenue"]
    for table in ("by_minute", "by_category", "by_product"):
        assert ledger[table] == expected[table], table
    assert ledger["complete"] is True
    assert ledger["by_event_type"]["purchase"]["revenue"] == expected["total_revenue"]


def test_only_confirmed_events_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A produce run whose client fails one delivery in three (a real KafkaError through
    the run's own delivery callback): the ledger is the recount of the acknowledged
    records' bytes, not of everything sent."""
    from tests.unit.kafka.test_deliveries import run, timed_out

    result, ledger, acknowledged = run(tmp_path, monkeypatch, timed_out, events=600)
    assert result.failed == 200 and result.acked == len(acknowledged) == 400
    expected = recount(acknowledged)
    for key in ("total_events", "total_revenue", "by_minute", "by_category", "by_product"):
        assert ledger[key] == expected[key], key
    assert ledger["complete"] is False


def test_minutes_are_utc() -> None:
    moment = datetime(2026, 11, 27, 9, 1, 59, 999000, tzinfo=UTC)
    assert minute_of(int(moment.timestamp() * 1000)) == "2026-11-27T09:01:00Z"


def test_counting_in_batches_equals_counting_one_by_one() -> None:
    simulation = Simulation(load_scenario("flash-sale"), 4)
    events = list(simulation.events(max_seconds=400))
    assert simulation.sold_out_ids, "the scenario sells something out"
    one_by_one, batched = Ledger(), Ledger()
    for e in events:
        one_by_one.record(e, e.event_id in simulation.sold_out_ids)
    for start in range(0, len(events), 997):
        batched.record_many(events[start : start + 997], simulation.sold_out_ids)
    assert batched.to_json() == one_by_one.to_json()
    assert set(batched.sold_out) == set(simulation.sold_out)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1, 2]", "not a ledger: the file holds no JSON object"),
        (
            '{"total_events": 3}',
            "not a ledger: no total_revenue, by_minute, by_category, by_product",
        ),
        ("{oops", "cannot read: Expecting property name enclosed in double quotes"),
    ],
)
def test_a_file_that_is_not_a_ledger_is_one_line_naming_it(
    tmp_path: Path, text: str, problem: str
) -> None:
    from click.testing import CliRunner

    from producer.cli import main

    path = tmp_path / "ledger.json"
    path.write_text(text)
    with pytest.raises(InvalidOption) as err:
        read_ledger(path)
    assert str(err.value).startswith(f"ledger {path}: {problem}")
    args = ["kpis", "--warehouse", str(tmp_path), "--verify-ledger", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: --verify-ledger {path}: {problem}")
    assert len(result.output.splitlines()) == 1
