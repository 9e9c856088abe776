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


def test_categories_and_brands_come_from_the_catalog(tmp_path: Path) -> None:
    # Silver's events say one thing, the dimension another: Gold follows the catalog
    # for the products it lists, and the events for the ones it does not.
    from deltalake import DeltaTable, write_deltalake

    from tests.unit.consumers.conftest import silver_warehouse

    silver_warehouse(tmp_path, seconds=120)
    dimension = tmp_path / "silver" / "products"
    products = DeltaTable(str(dimension)).to_pyarrow_table().to_pylist()
    sold = {r["product_id"] for r in compute_kpis(tmp_path)["product_sales"].to_pylist()}
    listed, unlisted = sorted(sold)[:2]
    kept = [p for p in products if p["product_id"] != unlisted]
    for p in kept:
        if p["product_id"] == listed:
            p.update(category="garden", brand="Verdant")
    write_deltalake(str(dimension), pa.Table.from_pylist(kept), mode="overwrite")
    silver = DeltaTable(str(tmp_path / "silver" / "events")).to_pyarrow_table().to_pylist()
    as_sent = {r["product_id"]: (r["category"], r["brand"]) for r in silver}
    for engine in ("datafusion", "duckdb"):
        gold = compute_kpis(tmp_path, engine)
        for name in ("product_sales", "product_funnel"):
            rows = {r["product_id"]: r for r in gold[name].to_pylist()}
            assert (rows[listed]["category"], rows[listed]["brand"]) == ("garden", "Verdant")
            assert (rows[unlisted]["category"], rows[unlisted]["brand"]) == as_sent[unlisted]
