"""Looking rows up by key (the event ids of Silver and its copies) reads only the files
whose statistics can hold a key, and finds exactly what a scan of the whole table
finds: real Delta tables, written a batch at a time as Silver writes them."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable, write_deltalake

from consumers.evolve import read_matching
from consumers.tables import files_within, rows_of_keys

SCHEMA = pa.schema([pa.field("event_id", pa.string()), pa.field("kafka_offset", pa.int64())])


def batches(path: Path, ids: list[list[str]]) -> None:
    """One commit, so one data file, per list of ids; offsets count on."""
    offset = 0
    for batch in ids:
        rows = [{"event_id": i, "kafka_offset": offset + n} for n, i in enumerate(batch)]
        offset += len(batch)
        write_deltalake(str(path), pa.Table.from_pylist(rows, schema=SCHEMA), mode="append")


def ordered(table: pa.Table) -> list[tuple[str, int]]:
    return sorted(
        zip(table["event_id"].to_pylist(), table["kafka_offset"].to_pylist(), strict=True)
    )


def files(path: Path) -> dict[str, tuple[str, str]]:
    """Each data file of the table and its (lowest, highest) event id statistics."""
    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pylist()
    return {a["path"]: (a["min.event_id"], a["max.event_id"]) for a in actions}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_lookup_finds_what_a_whole_scan_finds(tmp_path: Path, seed: int) -> None:
    # Ids clustered by file (a run's prefix and a counter), spread at random, repeated
    # across files; looked up with ids present, absent, between and beyond the files.
    rng = random.Random(seed)
    runs = [f"{rng.getrandbits(32):08x}-run-" for _ in range(3)]
    written = []
    for _ in range(6):
        if rng.random() < 0.6:
            prefix, start = rng.choice(runs), rng.randrange(0, 500)
            count = rng.randrange(1, 40)
            written.append([f"{prefix}{n:012x}" for n in range(start, start + count)])
        else:
            written.append([f"{rng.getrandbits(40):010x}" for _ in range(rng.randrange(1, 20))])
    path = tmp_path / "table"
    batches(path, written)
    every = [i for batch in written for i in batch]
    for _ in range(20):
        wanted = rng.sample(every, rng.randrange(0, 10))
        wanted += [f"{rng.choice(runs)}{rng.randrange(0, 600):012x}" for _ in range(3)]
        wanted += [f"{rng.getrandbits(40):010x}", "", "~beyond"]
        values = pa.array(rng.sample(wanted, len(wanted)), pa.string())
        found = rows_of_keys(path, ["event_id", "kafka_offset"], "event_id", values)
        whole = read_matching(path, ["event_id", "kafka_offset"], "event_id", values)
        assert ordered(found) == ordered(whole)


def test_a_file_whose_statistics_rule_the_keys_out_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "table"
    batches(path, [[f"a-{n:04d}" for n in range(10)], [f"b-{n:04d}" for n in range(10)]])
    (older,) = [f for f, (low, _) in files(path).items() if low.startswith("a-")]
    (path / older).write_bytes(b"not a parquet file")  # any read of it fails
    values = pa.array(["b-0003", "c-0001"], pa.string())
    found = rows_of_keys(path, ["event_id", "kafka_offset"], "event_id", values)
    assert ordered(found) == [("b-0003", 13)]
    # Keys at a file's bounds: its lowest and its highest id.
    for key, offset in (("b-0000", 10), ("b-0009", 19)):
        at_bound = rows_of_keys(path, ["event_id", "kafka_offset"], "event_id", pa.array([key]))
        assert ordered(at_bound) == [(key, offset)]
    with pytest.raises(pa.ArrowInvalid):
        read_matching(path, ["event_id", "kafka_offset"], "event_id", values)
    # No file can hold the key: nothing is read, the columns are there.
    nothing = rows_of_keys(path, ["event_id", "kafka_offset"], "event_id", pa.array(["c-1"]))
    assert nothing.num_rows == 0 and nothing.column_names == ["event_id", "kafka_offset"]


def test_keys_longer_than_their_truncated_statistics_are_found(tmp_path: Path) -> None:
    # delta-rs truncates a long string's statistics (to 32 characters): the minimum a prefix, the
    # maximum rounded up. Ids that differ only after them are still bounded.
    shared = "x" * 80
    path = tmp_path / "table"
    batches(path, [[f"{shared}{n:03d}" for n in range(5)], ["y-1"]])
    low, high = next(s for s in files(path).values() if s[0].startswith("x"))
    assert low <= f"{shared}000"
    assert len(high) < len(f"{shared}004")  # truncated, as the test means
    for n in range(5):
        values = pa.array([f"{shared}{n:03d}"], pa.string())
        found = rows_of_keys(path, ["event_id", "kafka_offset"], "event_id", values)
        assert ordered(found) == [(f"{shared}{n:03d}", n)]


def test_a_lookup_reads_columns_an_older_table_lacks_as_read_gives_them(tmp_path: Path) -> None:
    # The topic epoch, absent from an older table, reads as 0 (consumers.evolve.read).
    path = tmp_path / "table"
    batches(path, [["e-1", "e-2"]])
    found = rows_of_keys(path, ["event_id", "kafka_topic_epoch"], "event_id", pa.array(["e-2"]))
    assert found.to_pylist() == [{"event_id": "e-2", "kafka_topic_epoch": 0}]


def test_a_lookup_at_a_version_finds_the_rows_of_that_version(tmp_path: Path) -> None:
    path = tmp_path / "table"
    batches(path, [[f"a-{n}" for n in range(5)], [f"b-{n}" for n in range(5)]])
    before = DeltaTable(str(path)).version()
    DeltaTable(str(path)).delete("event_id = 'a-2' OR event_id = 'b-1'")  # files rewritten
    values = pa.array(["a-2", "a-3", "b-1"], pa.string())
    then = rows_of_keys(path, ["event_id", "kafka_offset"], "event_id", values, before)
    now = rows_of_keys(path, ["event_id", "kafka_offset"], "event_id", values)
    assert ordered(then) == [("a-2", 2), ("a-3", 3), ("b-1", 6)]
    assert ordered(now) == [("a-3", 3)]


STAMPED = pa.schema(
    [
        pa.field("kafka_timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("kafka_offset", pa.int64()),
        pa.field("ingest_date", pa.string()),
    ]
)
NOON = 1_798_804_800_000_000  # 2027-01-01 12:00 UTC, in microseconds


def test_files_within_reads_the_files_a_span_of_time_can_touch(tmp_path: Path) -> None:
    """One file per commit; a file is chosen when its timestamps may meet a span, its
    highest one up to a millisecond past what the log records (Delta keeps them to the
    millisecond, truncated); the rows a span holds are those a whole scan finds."""
    path = tmp_path / "bronze"
    minute = 60_000_000
    commits = [
        [0, 30_000_000],  # the first minute's first half
        [59_999_500],  # its last half millisecond: recorded as 59.999 s
        [minute, minute + 1],
        [3 * minute],
    ]
    offset = 0
    for stamps in commits:
        rows = [
            {"kafka_timestamp": NOON + s, "kafka_offset": offset + n, "ingest_date": "d"}
            for n, s in enumerate(stamps)
        ]
        offset += len(stamps)
        table = pa.Table.from_pylist(rows, schema=STAMPED)
        write_deltalake(str(path), table, mode="append", partition_by=["ingest_date"])
    table = DeltaTable(str(path))

    def chosen(spans: list[tuple[int, int]]) -> list[int]:
        found = files_within(table, "kafka_timestamp", [(NOON + a, NOON + b) for a, b in spans])
        return sorted(pc.min(f.to_table()["kafka_offset"]).as_py() for f in found.get_fragments())

    assert chosen([(0, minute)]) == [0, 2]
    assert chosen([(59_999_200, minute)]) == [2]  # its recorded maximum is below the span
    assert chosen([(minute, 2 * minute)]) == [2, 3]  # (a millisecond's doubt: read)
    assert chosen([(2 * minute, 3 * minute)]) == []
    assert chosen([(30_000_001, 59_999_000), (3 * minute, 4 * minute)]) == [0, 5]
    assert chosen([]) == []
    stamp = ds.field("kafka_timestamp")
    kind = STAMPED.field("kafka_timestamp").type
    wanted = (stamp >= pa.scalar(NOON, kind)) & (stamp < pa.scalar(NOON + minute, kind))
    dataset = files_within(table, "kafka_timestamp", [(NOON, NOON + minute)])
    assert "ingest_date" not in dataset.schema.names  # the files do not hold it
    got = dataset.to_table(filter=wanted)["kafka_offset"].to_pylist()
    whole = table.to_pyarrow_dataset().to_table(filter=wanted)["kafka_offset"].to_pylist()
    assert sorted(got) == sorted(whole) == [0, 1, 2]
