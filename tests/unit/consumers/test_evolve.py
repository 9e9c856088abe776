"""A warehouse written before topic epochs and the header wire format: its rows are
epoch 0 and prefix-framed, read and resumed alike."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.bronze import BRONZE_FILL, BRONZE_SCHEMA, app_id
from consumers.evolve import add_missing_columns, read
from consumers.tables import unprocessed

# Bronze as it was written before the topic epoch and the header wire format existed.
ADDED = ["topic_epoch", "schema_id_in", "schema_guid"]
OLD_BRONZE = pa.schema([f for f in BRONZE_SCHEMA if f.name not in ADDED])


def old_bronze(path: Path, offsets: range) -> None:
    rows = [
        {
            "topic": "t",
            "partition": 0,
            "offset": o,
            "key": b"k",
            "value": b"v",
            "schema_id": 1,
            "kafka_timestamp": None,
            "ingest_time": None,
            "ingest_date": "2026-01-01",
        }
        for o in offsets
    ]
    write_deltalake(str(path), pa.Table.from_pylist(rows, schema=OLD_BRONZE),
                    partition_by=["ingest_date"])  # fmt: skip


def test_an_old_table_reads_as_epoch_0_and_gains_the_column_filled(tmp_path: Path) -> None:
    bronze = tmp_path / "bronze"
    old_bronze(bronze, range(3))
    assert read(bronze, ["offset", "topic_epoch"]).to_pylist() == [
        {"offset": o, "topic_epoch": 0} for o in range(3)
    ]
    added = add_missing_columns(bronze, BRONZE_SCHEMA, BRONZE_FILL, partition_by=["ingest_date"])
    assert [f.name for f in added] == ADDED
    table = DeltaTable(str(bronze)).to_pyarrow_table(columns=ADDED)
    assert (
        table.to_pylist() == [{"topic_epoch": 0, "schema_id_in": "prefix", "schema_guid": None}] * 3
    )  # the old rows were all framed by the prefix
    assert add_missing_columns(bronze, BRONZE_SCHEMA) == []


def test_silver_resumes_an_old_warehouse_from_its_epoch_0_offsets(tmp_path: Path) -> None:
    bronze, silver = tmp_path / "bronze", tmp_path / "silver"
    old_bronze(bronze, range(5))
    done = CommitProperties(app_transactions=[Transaction(app_id("silver", "t", 0), 2)])
    write_deltalake(str(silver), pa.table({"x": pa.array([], pa.int32())}),
                    commit_properties=done)  # fmt: skip
    rows = unprocessed(bronze, silver, "silver", "t")
    assert rows["offset"].to_pylist() == [3, 4]
    assert rows["topic_epoch"].to_pylist() == [0, 0]


def test_a_new_epoch_repeats_offsets_and_is_read_as_its_own(tmp_path: Path) -> None:
    bronze, silver = tmp_path / "bronze", tmp_path / "silver"
    old_bronze(bronze, range(3))
    add_missing_columns(bronze, BRONZE_SCHEMA, partition_by=["ingest_date"])
    again = [
        {
            "topic": "t",
            "partition": 0,
            "offset": o,
            "key": b"k",
            "value": b"w",
            "schema_id": 1,
            "kafka_timestamp": None,
            "ingest_time": None,
            "ingest_date": "2026-01-02",
            "topic_epoch": 1,
        }
        for o in range(2)
    ]
    write_deltalake(str(bronze), pa.Table.from_pylist(again, schema=BRONZE_SCHEMA),
                    mode="append", partition_by=["ingest_date"])  # fmt: skip
    done = CommitProperties(app_transactions=[Transaction(app_id("silver", "t", 0), 2)])
    write_deltalake(str(silver), pa.table({"x": pa.array([], pa.int32())}),
                    commit_properties=done)  # fmt: skip
    rows = unprocessed(bronze, silver, "silver", "t")
    assert list(zip(rows["topic_epoch"].to_pylist(), rows["offset"].to_pylist(), strict=True)) == [
        (1, 0),
        (1, 1),
    ]
    assert app_id("silver", "t", 0, 1) == "flashsale-silver:t#1:0"
