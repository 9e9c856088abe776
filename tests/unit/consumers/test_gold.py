"""Gold is the same on every engine: the same tables, schemas and values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from consumers.gold import compute_kpis

TIME = pa.timestamp("us", tz="UTC")


def test_both_engines_give_the_same_schemas_and_values(
    warehouse: tuple[Path, dict[str, Any]],
) -> None:
    path, _ = warehouse
    datafusion, duckdb = compute_kpis(path, "datafusion"), compute_kpis(path, "duckdb")
    assert set(datafusion) == set(duckdb)
    for name in datafusion:
        assert datafusion[name].schema == duckdb[name].schema, name
        assert datafusion[name].to_pylist() == duckdb[name].to_pylist(), name
        assert datafusion[name].num_rows > 0, name
    # The types are the contract's, not an engine's.
    assert datafusion["revenue_per_minute"].schema == pa.schema(
        [
            ("minute", TIME),
            ("events", pa.int64()),
            ("views", pa.int64()),
            ("carts", pa.int64()),
            ("purchases", pa.int64()),
            ("units", pa.int64()),
            ("revenue", pa.decimal128(18, 2)),
        ]
    )
    assert datafusion["spikes"].schema.field("is_spike").type == pa.int32()
    # The new tables for people who analyse a sale: its sessions and its sell-outs.
    (sessions,) = datafusion["session_funnel"].to_pylist()
    assert 0 < sessions["sessions_with_purchase"] < sessions["sessions_with_cart"]
    assert sessions["sessions_with_cart"] < sessions["sessions"]
    times = datafusion["sell_out_times"].to_pylist()
    sold_out = datafusion["sold_out"].to_pylist()
    assert [t["product_id"] for t in times] == [s["product_id"] for s in sold_out]
    for t in times:
        assert t["seconds_into_sale"] == round(
            (t["sold_out_at"] - t["sale_started_at"]).total_seconds(), 3
        )
        assert t["seconds_into_sale"] >= 0
    assert datafusion["sold_out"].schema == pa.schema(
        [("product_id", pa.string()), ("category", pa.string()), ("sold_out_at", TIME)]
    )


def test_silver_gains_its_new_columns_null_in_older_rows(tmp_path: Path) -> None:
    from deltalake import DeltaTable, write_deltalake

    from consumers.silver import COORDINATES, _add_missing_columns

    old = pa.schema([COORDINATES[0], COORDINATES[2]])  # a Silver of before
    path = tmp_path / "events"
    write_deltalake(
        str(path), pa.Table.from_pylist([{"kafka_topic": "t", "kafka_offset": 1}], schema=old)
    )
    added = _add_missing_columns(path, pa.schema(COORDINATES))
    assert [f.name for f in added] == [f.name for f in COORDINATES if f not in old]
    (row,) = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    assert (
        row["kafka_timestamp"] is None and row["ingest_time"] is None and row["kafka_offset"] == 1
    )
    assert _add_missing_columns(path, pa.schema(COORDINATES)) == []
