"""Lateness percentiles per minute, computed column-wise, against a plain recount."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from consumers.quality import _events, _lateness, _matches

START = datetime(2026, 11, 26, 12, tzinfo=UTC)
KEYS = {"topic": pa.string(), "topic_epoch": pa.int32(), "partition": pa.int32()}


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_minute_gets_the_nearest_rank_of_its_own_events(seed: int) -> None:
    rng = random.Random(seed)
    silver, bronze, expected = [], [], {}
    for offset in range(rng.randint(1000, 3000)):
        minute = rng.randrange(5)
        sent = START + timedelta(minutes=minute, seconds=rng.randrange(60))
        late_ms = rng.choice([0, 1, 250, 1500, 61_000, rng.randrange(120_000)])
        at = int((START + timedelta(minutes=minute) - START).total_seconds() * 1e6)
        expected.setdefault(at, []).append(late_ms / 1000)
        where = {"topic": "t", "topic_epoch": 0, "partition": offset % 3, "offset": offset}
        silver.append({**where, "event_time": sent - timedelta(milliseconds=late_ms)})
        bronze.append({**where, "minute": at, "kafka_timestamp": sent})
    # A Bronze record Silver does not hold (a duplicate) counts for no minute's lateness.
    bronze.append({"topic": "t", "topic_epoch": 0, "partition": 9, "offset": 0,
                   "minute": 0, "kafka_timestamp": START + timedelta(hours=5)})  # fmt: skip
    rng.shuffle(silver)
    stamp = pa.timestamp("ms", tz="UTC")
    where_types = {**KEYS, "offset": pa.int64()}
    silver_table = pa.Table.from_pylist(
        silver, schema=pa.schema({**where_types, "event_time": pa.timestamp("us", tz="UTC")})
    )
    bronze_table = pa.Table.from_pylist(
        bronze, schema=pa.schema({**where_types, "minute": pa.int64(), "kafka_timestamp": stamp})
    )

    got = _lateness(_events(silver_table, bronze_table))

    assert got == {
        at: (nearest_rank(values, 0.50), nearest_rank(values, 0.99))
        for at, values in expected.items()
    }


def coordinates(rows: list[tuple[int, int, int, int]]) -> pa.Table:
    """Rows of coordinates, the topic coded as a number (as Gold's data quality has it),
    each with its position as ``row``."""
    names = ["topic", "topic_epoch", "partition", "offset"]
    columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    types = [pa.int32(), pa.int32(), pa.int32(), pa.int64()]
    table = pa.table({n: pa.array(columns[n], t) for n, t in zip(names, types, strict=True)})
    return table.append_column("row", pa.array(range(len(rows)), pa.int64()))


def joined_pairs(rows: pa.Table, bronze: pa.Table) -> list[tuple[int, int]]:
    """The (row, Bronze row) pairs of the inner join on the coordinates."""
    keys = ["topic", "topic_epoch", "partition", "offset"]
    joined = rows.join(bronze.rename_columns([*keys, "bronze_row"]), keys=keys, join_type="inner")
    return sorted(zip(joined["row"].to_pylist(), joined["bronze_row"].to_pylist(), strict=True))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_sorted_match_pairs_the_rows_the_join_pairs(seed: int) -> None:
    rng = random.Random(seed)
    # Several topics, epochs and partitions (one far past the others), offsets in any
    # order; rows without a Bronze record, in partitions Bronze lacks, and twice over.
    places = [(t, e, p) for t in range(2) for e in range(2) for p in (0, 1, 7, 2**31 - 1)]
    bronze_rows = [(*rng.choice(places), o) for o in rng.sample(range(10**6), 2000)]
    bronze_rows = list(dict.fromkeys(bronze_rows))  # Bronze holds each record once
    rows = [rng.choice(bronze_rows) for _ in range(1500)]
    rows += [(*rng.choice(places), rng.randrange(10**6, 2 * 10**6)) for _ in range(300)]
    held = {o for *_, o in bronze_rows}
    rows += [(*rng.choice(places), o) for o in rng.sample(range(10**6), 300) if o not in held]
    rows += [(1, 3, 5, 1), (2**16 - 1, 2**16 - 1, 0, 0)]
    rng.shuffle(rows)
    rows_table, bronze = coordinates(rows), coordinates(bronze_rows)
    matched = _matches(rows_table, bronze)
    assert matched is not None
    got = sorted(zip(matched[0].tolist(), matched[1].tolist(), strict=True))
    assert got == joined_pairs(rows_table, bronze)
    assert len(got) >= 1500


@pytest.mark.parametrize(
    "bronze_rows",
    [
        [(0, 0, 0, 5), (0, 0, 0, 5), (0, 0, 1, 5)],  # a record twice: the join pairs both
        [(0, 2**16, 0, 5)],  # an epoch too large to pack
        [(0, 0, -1, 5)],  # a negative partition
    ],
)
def test_what_the_sorted_match_cannot_pair_is_left_to_the_join(
    bronze_rows: list[tuple[int, int, int, int]],
) -> None:
    rows, bronze = coordinates([(0, 0, 0, 5), (0, 0, 1, 5)]), coordinates(bronze_rows)
    assert _matches(rows, bronze) is None
    # ...and the events are the join's all the same.
    stamp = pa.timestamp("ms", tz="UTC")
    silver = rows.append_column("event_time", pa.array([START, START], pa.timestamp("us", "UTC")))
    bronze = bronze.append_column("minute", pa.array([0] * len(bronze_rows), pa.int64()))
    bronze = bronze.append_column("kafka_timestamp", pa.array([START] * len(bronze_rows), stamp))
    events = _events(silver.drop_columns(["row"]), bronze.drop_columns(["row"]))
    expected = len(joined_pairs(rows, coordinates(bronze_rows)))
    assert events.num_rows == expected and events.column_names == [
        "event_time",
        "minute",
        "kafka_timestamp",
    ]


def test_no_rows_or_no_bronze_pair_nothing() -> None:
    some, none = coordinates([(0, 0, 0, 5)]), coordinates([])
    for rows, bronze in ((none, some), (some, none), (none, none)):
        matched = _matches(rows, bronze)
        assert matched is not None and [len(m) for m in matched] == [0, 0]


def test_a_topic_not_coded_as_a_number_is_left_to_the_join() -> None:
    table = pa.table({"topic": ["t"], "topic_epoch": pa.array([0], pa.int32()),
                      "partition": pa.array([0], pa.int32()), "offset": [1]})  # fmt: skip
    assert _matches(table, table) is None
