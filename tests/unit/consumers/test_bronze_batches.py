"""Silver reads Bronze in batches: every unprocessed row exactly once, in order, and a
batch's last offsets never skip a row of a later batch."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.bronze import BRONZE_SCHEMA, _epoch_id, app_id
from consumers.tables import bronze_files, unprocessed, unprocessed_batches

ORDER = ["partition", "offset"]

WHEN = datetime(2026, 11, 26, tzinfo=UTC)


def bronze_row(topic: str, epoch: int | None, partition: int, offset: int) -> dict[str, Any]:
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": b"k",
        "value": f"{topic}/{epoch}/{partition}/{offset}".encode(),
        "schema_id": 1,
        "kafka_timestamp": WHEN,
        "ingest_time": WHEN,
        "ingest_date": "2026-11-26",
        "topic_epoch": epoch,
        "schema_id_in": "prefix",
        "schema_guid": None,
    }


def build_bronze(path: Path, seed: int) -> None:
    """Many commits, each with records of every partition (as Bronze's are), of two
    topics and two epochs; the first epoch's rows null in the epoch column (written
    before epochs existed)."""
    rng = random.Random(seed)
    next_offset: dict[tuple[str, int, int], int] = {}
    for commit in range(12):
        epoch = 0 if commit < 8 else 1
        rows = []
        for topic in ("t", "other"):
            for partition in range(3):
                key = (topic, epoch, partition)
                for _ in range(rng.randint(0, 9)):
                    offset = next_offset.get(key, 0)
                    next_offset[key] = offset + rng.choice((1, 1, 1, 3))  # compacted gaps
                    rows.append(bronze_row(topic, None if epoch == 0 else 1, partition, offset))
        markers = [Transaction(_epoch_id("t"), 1)] if commit == 8 else []
        write_deltalake(
            str(path),
            pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA),
            mode="append",
            partition_by=["ingest_date"],
            commit_properties=CommitProperties(app_transactions=markers),
        )


def commit_progress(target: Path, offsets: dict[tuple[int, int], int]) -> None:
    txns = [Transaction(app_id("silver", "t", p, e), o) for (e, p), o in offsets.items()]
    write_deltalake(
        str(target),
        pa.table({"x": pa.array([], pa.int32())}),
        mode="append",
        commit_properties=CommitProperties(app_transactions=txns),
    )


def coordinates(table: pa.Table) -> list[tuple[int, int, int]]:
    return list(
        zip(
            table["topic_epoch"].to_pylist(),
            table["partition"].to_pylist(),
            table["offset"].to_pylist(),
            strict=True,
        )
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("batch_rows", [1, 7, 1000])
def test_batches_hold_exactly_the_unprocessed_rows_in_order(
    tmp_path: Path, seed: int, batch_rows: int
) -> None:
    bronze, target = tmp_path / "bronze", tmp_path / "silver"
    build_bronze(bronze, seed)
    commit_progress(target, {(0, 0): 10, (0, 2): 3, (1, 1): 0})
    whole = unprocessed(bronze, target, "silver", "t")
    batches = list(unprocessed_batches(bronze, target, "silver", "t", batch_rows))

    assert all(0 < b.num_rows <= batch_rows for b in batches)
    assert pa.concat_tables(batches).equals(whole)  # the same rows, columns and order
    assert whole.num_rows > 0
    assert {v.split(b"/")[0] for v in whole["value"].to_pylist()} == {b"t"}
    # Committing after each batch never skips a row: a batch starts, per (epoch,
    # partition), right after the last offset seen before it.
    seen: dict[tuple[int, int], list[int]] = {}
    for batch in batches:
        for epoch, partition, offset in coordinates(batch):
            before = seen.setdefault((epoch, partition), [])
            assert not before or offset > before[-1]
            before.append(offset)
    stored = {k: v for k, v in seen.items() if v}
    for (epoch, partition), offsets in stored.items():
        done = {(0, 0): 10, (0, 2): 3, (1, 1): 0}.get((epoch, partition), -1)
        assert offsets[0] > done


def test_rows_are_read_again_only_past_the_committed_offsets(tmp_path: Path) -> None:
    bronze, target = tmp_path / "bronze", tmp_path / "silver"
    build_bronze(bronze, 4)
    first = next(iter(unprocessed_batches(bronze, target, "silver", "t", 25)))
    last: dict[tuple[int, int], int] = {}
    for epoch, partition, offset in coordinates(first):
        last[(epoch, partition)] = offset
    commit_progress(target, last)
    rest = pa.concat_tables(list(unprocessed_batches(bronze, target, "silver", "t", 25)))
    everything = unprocessed(bronze, tmp_path / "nothing", "silver", "t")
    assert coordinates(first) + coordinates(rest) == coordinates(everything)


def test_no_bronze_no_batches(tmp_path: Path) -> None:
    assert list(unprocessed_batches(tmp_path / "none", tmp_path / "s", "silver", "t")) == []


def test_every_writer_is_checked_before_the_first_batch(tmp_path: Path) -> None:
    bronze, target = tmp_path / "bronze", tmp_path / "silver"
    rows = [bronze_row("t", 0, 0, offset) for offset in range(30)]
    rows[-1]["schema_id"] = 7  # a writer only the last batch holds
    rows.append({**bronze_row("other", 0, 0, 30), "schema_id": 9})  # another topic's
    write_deltalake(str(bronze), pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA))
    seen: list[list[int]] = []

    def refuse(writers: list[int]) -> None:
        seen.append(sorted(writers))
        if 7 in writers:
            raise ValueError("unreadable writer 7")

    batches = unprocessed_batches(bronze, target, "silver", "t", 10, refuse)
    with pytest.raises(ValueError, match="unreadable writer 7"):
        next(batches)
    assert seen == [[1, 7]]


def test_files_that_hold_only_processed_rows_are_not_read(tmp_path: Path) -> None:
    # Three commits of one partition: the first two processed. Their files are made
    # unreadable; the batches, which read only files that can hold unprocessed
    # offsets (by the Delta log's statistics), still give every row past them.
    bronze, target = tmp_path / "bronze", tmp_path / "silver"
    for start in (0, 10, 20):
        rows = [bronze_row("t", 0, 0, offset) for offset in range(start, start + 10)]
        write_deltalake(
            str(bronze),
            pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA),
            mode="append",
            partition_by=["ingest_date"],
        )
    whole = unprocessed(bronze, target, "silver", "t")
    commit_progress(target, {(0, 0): 19})
    actions = pa.table(DeltaTable(str(bronze)).get_add_actions(flatten=True)).to_pylist()
    for action in actions:
        if action["max.offset"] <= 19:
            (bronze / unquote(action["path"])).write_bytes(b"not a parquet file")
    batches = list(unprocessed_batches(bronze, target, "silver", "t", 4))
    assert coordinates(pa.concat_tables(batches)) == [(0, 0, o) for o in range(20, 30)]
    assert coordinates(whole) == [(0, 0, o) for o in range(30)]
    # Progress inside a file: its later offsets only.
    commit_progress(target, {(0, 0): 25})
    assert [
        o for b in unprocessed_batches(bronze, target, "silver", "t") for _, _, o in coordinates(b)
    ] == list(range(26, 30))


def test_bronze_files_are_those_whose_offsets_and_partitions_meet_a_span(
    tmp_path: Path,
) -> None:
    bronze = tmp_path / "bronze"
    for partition, offsets in ((0, [5]), (0, [6, 7, 8]), (1, [5, 9])):
        rows = [bronze_row("t", 0, partition, o) for o in offsets]
        write_deltalake(
            str(bronze),
            pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA),
            mode="append",
            partition_by=["ingest_date"],
        )
    table = DeltaTable(str(bronze))

    def read(spans: list[tuple[int, int, int | None]]) -> list[tuple[int, int, int]]:
        found = bronze_files(table, spans).to_table(columns=["topic_epoch", *ORDER])
        return sorted(coordinates(found.select(["topic_epoch", *ORDER])))

    assert read([(0, 5, 5)]) == [(0, 0, 5)]  # a file of one offset, the span's bounds
    assert read([(0, 8, None)]) == [(0, 0, 6), (0, 0, 7), (0, 0, 8)]
    assert read([(1, 6, 8)]) == [(0, 1, 5), (0, 1, 9)]  # within the file's range
    assert read([(0, 9, None), (2, 0, None)]) == []
    assert read([(0, 0, 4), (1, 10, None)]) == []
