"""Lateness percentiles per minute, computed column-wise, against a plain recount."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from consumers.quality import _events, _lateness

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
