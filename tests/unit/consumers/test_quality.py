"""Gold's data quality per minute, and minutes without events as zero rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.bronze import app_id
from consumers.gold import compute_kpis, read_gold, silver_version, write_gold
from consumers.quality import quality_per_minute
from consumers.reconcile import merge_ledgers, reconcile
from consumers.tables import QUARANTINE_SCHEMA
from tests.unit.consumers.conftest import LATE, RAW, silver_warehouse

QUIET = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # the third minute of the sale


def gold_of(path: Path) -> dict[str, pa.Table]:
    version = silver_version(path)
    write_gold(path, compute_kpis(path, "datafusion", version), version)
    return read_gold(path)[0]


def by_minute(table: pa.Table) -> dict[datetime, dict[str, Any]]:
    return {r["minute"]: r for r in table.to_pylist()}


def test_a_minute_without_events_is_a_zero_row_that_reconciles(tmp_path: Path) -> None:
    ledger = silver_warehouse(tmp_path, seconds=240, quiet=(2,))
    assert "2026-11-27T09:00:00Z" not in ledger["by_minute"]
    gold = gold_of(tmp_path)
    for engine in ("datafusion", "duckdb"):
        kpis = compute_kpis(tmp_path, engine)
        revenue, funnel = (
            by_minute(kpis["revenue_per_minute"]),
            by_minute(kpis["funnel_per_minute"]),
        )
        assert sorted(revenue) == [QUIET + timedelta(minutes=m) for m in (-2, -1, 0, 1)]
        assert revenue[QUIET] == {
            "minute": QUIET, "events": 0, "views": 0, "carts": 0, "purchases": 0, "units": 0,
            "revenue": Decimal("0.00"),
        }  # fmt: skip
        assert funnel[QUIET] == {
            "minute": QUIET, "views": 0, "carts": 0, "purchases": 0,
            "view_to_cart": None, "cart_to_purchase": None,
        }  # fmt: skip
    assert reconcile(merge_ledgers([ledger]), gold) == []
    # A zero row is held to zero like any other.
    rows = gold["revenue_per_minute"].to_pylist()
    for row in rows:
        if row["minute"] == QUIET:
            row["views"] = 3
    gold["revenue_per_minute"] = pa.Table.from_pylist(
        rows, schema=gold["revenue_per_minute"].schema
    )
    assert reconcile(merge_ledgers([ledger]), gold) == [
        "revenue_per_minute: 2026-11-27T09:00:00Z views: ledger 0, Gold 3"
    ]


def test_data_quality_per_minute_accounts_for_every_processed_record(tmp_path: Path) -> None:
    # No events in 09:00 and 09:01: records arrive 1.5 s after their event, so the
    # arrival minute 09:01 has none.
    silver_warehouse(tmp_path, seconds=300, quiet=(2, 3))
    bronze = DeltaTable(str(tmp_path / "bronze" / "events")).to_pyarrow_table().to_pylist()
    last = max(r["offset"] for r in bronze)
    first_minute = bronze[0]["kafka_timestamp"].replace(second=0, microsecond=0)
    # Four more records of the first minute: a duplicate dropped, one quarantined, one
    # conflict, and one that Silver has not reached yet.
    extra = [
        {**bronze[0], "offset": last + 1},
        {**bronze[1], "offset": last + 2},
        {**bronze[2], "offset": last + 3},
        {**bronze[3], "offset": last + 4},
    ]
    write_deltalake(str(tmp_path / "bronze" / "events"), pa.Table.from_pylist(extra, RAW),
                    mode="append")  # fmt: skip
    where = {"kafka_topic": "t", "kafka_partition": 0}
    quarantine = [
        {**where, "kafka_offset": last + 2, "reason": "bad header: x"},
        {**where, "kafka_offset": last + 3, "reason": "conflict: e"},
    ]
    write_deltalake(
        str(tmp_path / "silver" / "quarantine"),
        pa.Table.from_pylist(quarantine, QUARANTINE_SCHEMA),
    )
    # Silver's next run processed all but the last.
    silver = DeltaTable(str(tmp_path / "silver" / "events"))
    write_deltalake(
        str(tmp_path / "silver" / "events"),
        silver.schema().to_arrow().empty_table(),
        mode="append",
        commit_properties=CommitProperties(
            app_transactions=[Transaction(app_id("silver", "t", 0), last + 3)]
        ),
    )
    table = quality_per_minute(tmp_path)
    rows = by_minute(table)
    assert sorted(rows) == [QUIET + timedelta(minutes=m) for m in (-2, -1, 0, 1, 2, 3)]
    events = {m: r["events"] for m, r in rows.items()}
    assert rows[first_minute] == {
        "minute": first_minute, "records": events[first_minute] + 3,
        "events": events[first_minute], "duplicates": 1, "conflicts": 1, "quarantined": 1,
        "lateness_p50_s": LATE.total_seconds(), "lateness_p99_s": LATE.total_seconds(),
    }  # fmt: skip
    empty = QUIET + timedelta(minutes=1)
    assert rows[empty] == {
        "minute": empty, "records": 0, "events": 0, "duplicates": 0, "conflicts": 0,
        "quarantined": 0, "lateness_p50_s": None, "lateness_p99_s": None,
    }  # fmt: skip
    for minute, row in rows.items():
        if minute != first_minute:
            assert row["records"] == row["events"], minute
        if row["events"]:
            assert row["lateness_p50_s"] == row["lateness_p99_s"] == LATE.total_seconds()
    silver_rows = silver.to_pyarrow_table(columns=["kafka_offset"]).num_rows
    assert sum(r["events"] for r in rows.values()) == silver_rows
    assert sum(r["records"] for r in rows.values()) == silver_rows + 3
