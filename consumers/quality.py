"""The data-quality tally of a warehouse: what Bronze took in and where it went.

Every Bronze record ends in Silver, in quarantine (with its reason), or dropped as a
duplicate of a record already in Silver; so duplicates are what the other two leave.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

from consumers.bronze import app_id
from consumers.evolve import arrow, complete, read
from consumers.tables import files_within

__all__ = [
    "QUALITY_PER_MINUTE",
    "DataQuality",
    "data_quality",
    "fill_minutes",
    "quality_of_minutes",
    "quality_per_minute",
]


@dataclass(frozen=True)
class DataQuality:
    records: int  # in Bronze
    events: int  # in Silver
    duplicates: int
    quarantined: dict[str, int] = field(default_factory=dict)  # by reason
    pending: int = 0  # Bronze records past the offsets Silver committed

    def lines(self) -> list[str]:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.quarantined.items())) or "none"
        waiting = f", {self.pending} not yet read by Silver" if self.pending else ""
        return [
            f"data quality: {self.records} records in Bronze{waiting}, {self.events} events "
            f"in Silver, {self.duplicates} duplicates dropped, "
            f"{sum(self.quarantined.values())} quarantined ({reasons})"
        ]


def _rows(path: Path, column: str) -> list[object]:
    if not DeltaTable.is_deltatable(str(path)):
        return []
    values: list[object] = arrow(DeltaTable(str(path)), [column])[column].to_pylist()
    return values


def data_quality(warehouse: Path) -> DataQuality:
    """The warehouse's tally. Duplicates are the records Silver has read (those up to
    the offsets it committed) that are neither in Silver nor in quarantine; records
    it has not read yet are ``pending``, not duplicates."""
    bronze_path, events_path = warehouse / "bronze" / "events", warehouse / "silver" / "events"
    records = len(_rows(bronze_path, "offset"))
    events = len(_rows(events_path, "event_id"))
    reasons = Counter(
        str(r).split(":", 1)[0] for r in _rows(warehouse / "silver" / "quarantine", "reason")
    )
    quarantined = sum(reasons.values())
    read_by_silver = 0
    if records and DeltaTable.is_deltatable(str(events_path)):
        bronze = read(bronze_path, [*_KEYS])
        read_by_silver = _processed(bronze, DeltaTable(str(events_path))).num_rows
    pending = records - read_by_silver
    return DataQuality(
        records, events, read_by_silver - events - quarantined, dict(reasons), pending
    )


# --------------------------------------------------------------------------- per minute

QUALITY_PER_MINUTE = pa.schema(
    [
        pa.field("minute", pa.timestamp("us", tz="UTC")),
        pa.field("records", pa.int64()),
        pa.field("events", pa.int64()),
        pa.field("duplicates", pa.int64()),
        pa.field("conflicts", pa.int64()),
        pa.field("quarantined", pa.int64()),
        pa.field("lateness_p50_s", pa.float64()),
        pa.field("lateness_p99_s", pa.float64()),
    ]
)
_KEYS = ["topic", "topic_epoch", "partition", "offset"]
_MINUTE = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def quality_per_minute(warehouse: Path, version: int | None = None) -> pa.Table:
    """The data quality of each minute of arrival (the Kafka record timestamp's minute).

    Of the Bronze records Silver has processed (at Silver ``version``): ``events`` are
    in Silver, ``conflicts`` and ``quarantined`` (every other reason) are in
    quarantine, and ``duplicates`` are the rest, dropped. Lateness is the record's
    Kafka timestamp minus its event time, in seconds, over the events in Silver
    (nearest-rank percentiles; null in a minute without events). Minutes without
    records between the first and the last are zero rows.

    Computed here rather than in SQL: percentiles and a series of minutes are spelled
    differently by every engine, and this table must be the same on all of them."""
    events_path = warehouse / "silver" / "events"
    bronze_path = warehouse / "bronze" / "events"
    if not DeltaTable.is_deltatable(str(events_path)) or not DeltaTable.is_deltatable(
        str(bronze_path)
    ):
        return QUALITY_PER_MINUTE.empty_table()
    silver = read(events_path, [*_SILVER_COLUMNS], version)
    bronze = read(bronze_path, [*_KEYS, "kafka_timestamp"])
    quarantine = _quarantine(warehouse / "silver" / "quarantine")
    silver_table = DeltaTable(str(events_path), version=version)
    return fill_minutes(_per_minute(bronze, _renamed(silver), quarantine, silver_table))


def quality_of_minutes(warehouse: Path, version: int, spans: list[tuple[int, int]]) -> pa.Table:
    """The rows of :func:`quality_per_minute` (at Silver ``version``) of the minutes of
    arrival in ``spans`` (half-open ranges of microseconds since the epoch), and only
    those: no zero rows are filled in. Reads only the rows whose Kafka timestamp falls
    in them (a file's statistics rule out the others), in Bronze, Silver and the
    quarantine: each row's minute of arrival is its own Kafka timestamp's, the same in
    all three (Silver and the quarantine copy it from Bronze)."""
    events_path = warehouse / "silver" / "events"
    bronze_path = warehouse / "bronze" / "events"
    if not spans or not DeltaTable.is_deltatable(str(bronze_path)):
        return QUALITY_PER_MINUTE.empty_table()
    silver_table = DeltaTable(str(events_path), version=version)
    silver = _within(silver_table, [*_SILVER_COLUMNS], spans)
    bronze = _within(DeltaTable(str(bronze_path)), [*_KEYS, "kafka_timestamp"], spans)
    quarantine_path = warehouse / "silver" / "quarantine"
    if DeltaTable.is_deltatable(str(quarantine_path)):
        quarantine = _renamed(_within(DeltaTable(str(quarantine_path)), _QUARANTINE_COLUMNS, spans))
    else:
        quarantine = _quarantine(quarantine_path)
    return _per_minute(bronze, _renamed(silver), quarantine, silver_table)


_SILVER_COLUMNS = (
    "kafka_topic",
    "kafka_topic_epoch",
    "kafka_partition",
    "kafka_offset",
    "event_time",
)
_QUARANTINE_COLUMNS = [*_SILVER_COLUMNS[:-1], "reason"]


def _within(table: DeltaTable, columns: list[str], spans: list[tuple[int, int]]) -> pa.Table:
    """``columns`` of the rows of ``table`` whose ``kafka_timestamp`` is in ``spans``."""
    present = set(table.schema().to_arrow().names)
    stamp = ds.field("kafka_timestamp")
    wanted = reduce(
        lambda a, b: a | b,
        [(stamp >= pa.scalar(lo, _MINUTE)) & (stamp < pa.scalar(hi, _MINUTE)) for lo, hi in spans],
    )
    rows = files_within(table, "kafka_timestamp", spans).to_table(
        columns=[c for c in columns if c in present], filter=wanted
    )
    return complete(rows, columns)


def _per_minute(
    bronze: pa.Table, silver: pa.Table, quarantine: pa.Table, silver_table: DeltaTable
) -> pa.Table:
    """The rows of the minutes of arrival of ``bronze``'s records that ``silver_table``
    had processed, without zero rows."""
    bronze = _processed(bronze, silver_table)
    # Minutes as integers (microseconds): converting timestamps to Python objects row
    # by row is slow.
    minute = pc.floor_temporal(bronze["kafka_timestamp"], unit="minute")
    bronze = bronze.append_column("minute", minute.cast(_MINUTE).cast(pa.int64()))
    # The tables are joined on their coordinates with the topic as a number: a join
    # on a string key holds every row's text, which made this table the costliest of
    # Gold in memory (~500 bytes a record).
    topics = pc.unique(bronze["topic"])
    bronze, silver, quarantine = (_coded(t, topics) for t in (bronze, silver, quarantine))
    counts: dict[Any, list[int]] = {}

    def add(per_minute: pa.Table, slot: int) -> None:
        for minute, n in zip(
            per_minute["minute"].to_pylist(), per_minute["minute_count"].to_pylist(), strict=True
        ):
            counts.setdefault(minute, [0, 0, 0, 0])[slot] += n

    def tally(rows: pa.Table, slot: int) -> None:
        # Bronze probes the (few) quarantined rows: a hash table of them, not of Bronze.
        joined = bronze.select([*_KEYS, "minute"]).join(
            rows.select(_KEYS), keys=_KEYS, join_type="inner"
        )
        add(joined.group_by("minute").aggregate([("minute", "count")]), slot)

    add(bronze.group_by("minute").aggregate([("minute", "count")]), 0)
    # Silver's events with their Bronze record's minute and timestamp: counted, and
    # their lateness measured, from one join.
    events = _events(silver, bronze)
    add(events.group_by("minute").aggregate([("minute", "count")]), 1)
    conflict = pc.starts_with(quarantine["reason"], "conflict")
    tally(quarantine.filter(conflict), 2)
    tally(quarantine.filter(pc.invert(conflict)), 3)
    lateness = _lateness(events)
    rows = []
    for at in sorted(m for m in counts if m is not None):
        records, events, conflicts, quarantined = counts[at]
        p50, p99 = lateness.get(at, (None, None))
        rows.append(
            {
                "minute": _EPOCH + timedelta(microseconds=at),
                "records": records,
                "events": events,
                "duplicates": records - events - conflicts - quarantined,
                "conflicts": conflicts,
                "quarantined": quarantined,
                "lateness_p50_s": p50,
                "lateness_p99_s": p99,
            }
        )
    return pa.Table.from_pylist(rows, schema=QUALITY_PER_MINUTE)


_SHORT = {
    "kafka_topic": "topic",
    "kafka_topic_epoch": "topic_epoch",
    "kafka_partition": "partition",
    "kafka_offset": "offset",
}


def _renamed(table: pa.Table) -> pa.Table:
    return table.rename_columns([_SHORT.get(n, n) for n in table.column_names])


def _processed(bronze: pa.Table, silver: DeltaTable) -> pa.Table:
    """The Bronze rows at or before the offsets Silver had committed."""
    keep = None
    names = ["topic", "topic_epoch", "partition"]
    for pair in bronze.select(names).group_by(names).aggregate([]).to_pylist():
        topic, epoch, partition = pair["topic"], pair["topic_epoch"], pair["partition"]
        done = silver.transaction_version(app_id("silver", topic, partition, epoch))
        if done is None:
            continue
        part = pc.and_(
            pc.and_(
                pc.and_(pc.equal(bronze["topic"], topic), pc.equal(bronze["topic_epoch"], epoch)),
                pc.equal(bronze["partition"], partition),
            ),
            pc.less_equal(bronze["offset"], int(done)),
        )
        keep = part if keep is None else pc.or_(keep, part)
    if keep is None:
        return bronze.slice(0, 0)
    # Silver caught up (the usual case): every row, without a copy of them all.
    return bronze if pc.all(keep, skip_nulls=False).as_py() else bronze.filter(keep)


def _quarantine(path: Path) -> pa.Table:
    columns = ["kafka_topic", "kafka_topic_epoch", "kafka_partition", "kafka_offset", "reason"]
    if not DeltaTable.is_deltatable(str(path)):
        return _renamed(
            pa.table(
                {
                    "kafka_topic": pa.array([], pa.string()),
                    "kafka_topic_epoch": pa.array([], pa.int32()),
                    "kafka_partition": pa.array([], pa.int32()),
                    "kafka_offset": pa.array([], pa.int64()),
                    "reason": pa.array([], pa.string()),
                }
            )
        )
    return _renamed(read(path, columns))


def _coded(table: pa.Table, topics: pa.Array) -> pa.Table:
    """``table`` with its topic as the topic's index in ``topics`` (null for a topic
    not in it: such a row joins none of Bronze's)."""
    at = table.schema.get_field_index("topic")
    return table.set_column(at, "topic", pc.index_in(table["topic"], value_set=topics))


def _events(silver: pa.Table, bronze: pa.Table) -> pa.Table:
    """The event time of Silver's rows that have a Bronze record, with that record's
    minute of arrival and Kafka timestamp (in no particular order)."""
    taken = ["minute", "kafka_timestamp"]
    matched = _matches(silver, bronze)
    if matched is None:  # coordinates the sorted match does not take: a hash join
        joined = silver.join(bronze.select([*_KEYS, *taken]), keys=_KEYS, join_type="inner")
        return joined.select(["event_time", *taken])
    at_silver, at_bronze = matched
    return pa.table(
        {
            "event_time": silver["event_time"].take(at_silver),
            **{name: bronze[name].take(at_bronze) for name in taken},
        }
    )


# The widths of topic (its index), epoch and partition packed into one int64 by _group:
# 63 bits, so a packed value stays non-negative.
_TOPIC_BITS, _EPOCH_BITS, _PARTITION_BITS = 16, 16, 31


def _matches(
    rows: pa.Table, bronze: pa.Table
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """(indexes into ``rows``, indexes into ``bronze``) of the pairs with equal
    coordinates (:data:`_KEYS`, the topic coded), as an inner join gives them: found
    by sorting Bronze's offsets within each topic, epoch and partition and searching
    them, which holds a few arrays of numbers a row where a hash join of millions of
    rows held ~150 bytes a row. None when the coordinates are not all small
    non-negative numbers, or when Bronze holds a record twice (the join then pairs a
    row with each copy): the caller joins instead."""
    group_b = _group(bronze)
    group_r = _group(rows)
    if group_b is None or group_r is None:
        return None
    offset_b = bronze["offset"].to_numpy(zero_copy_only=False)
    offset_r = rows["offset"].to_numpy(zero_copy_only=False)
    order = np.lexsort((offset_b, group_b))
    group_b, offset_b = group_b[order], offset_b[order]
    same = (group_b[1:] == group_b[:-1]) & (offset_b[1:] == offset_b[:-1])
    if same.any():
        return None
    at_rows, at_bronze = [], []
    order_r = np.argsort(group_r, kind="stable")
    groups, starts = np.unique(group_r[order_r], return_index=True)
    ends = [*starts[1:].tolist(), len(order_r)][: len(starts)]
    for group, start, end in zip(groups.tolist(), starts.tolist(), ends, strict=True):
        lo, hi = np.searchsorted(group_b, [group, group + 1])
        if lo == hi:
            continue  # a partition Bronze holds nothing of
        mine = order_r[start:end]
        offsets = offset_b[lo:hi]
        found = np.searchsorted(offsets, offset_r[mine]).clip(0, hi - lo - 1)
        hit = offsets[found] == offset_r[mine]
        at_rows.append(mine[hit])
        at_bronze.append(order[lo:hi][found[hit]])
    if not at_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(at_rows), np.concatenate(at_bronze)


def _group(table: pa.Table) -> npt.NDArray[np.int64] | None:
    """Each row's topic (index), epoch and partition packed into one number, or None
    when one of them is not a number, is missing or is too large to pack."""
    parts = [table[c] for c in ("topic", "topic_epoch", "partition")]
    if any(not pa.types.is_integer(p.type) or p.null_count for p in parts):
        return None
    if table["offset"].null_count:
        return None
    packed = np.zeros(table.num_rows, np.int64)
    for part, bits in zip(parts, (_TOPIC_BITS, _EPOCH_BITS, _PARTITION_BITS), strict=True):
        values = part.to_numpy(zero_copy_only=False).astype(np.int64)
        if len(values) and (values.min() < 0 or values.max() >= 1 << bits):
            return None
        packed = (packed << bits) | values
    return packed


def _lateness(joined: pa.Table) -> dict[int, tuple[float, float]]:
    """Minute -> the nearest-rank p50 and p99 of its events' lateness (seconds), over
    the events in Silver (``joined``: as :func:`_events` gives them). Computed
    column-wise: the events sorted by minute and lateness, each minute's percentile is
    the value at its rank within its run."""
    millis = pa.timestamp("ms", tz="UTC")
    late_ms = pc.subtract(
        joined["kafka_timestamp"].cast(millis).cast(pa.int64()),
        joined["event_time"].cast(millis).cast(pa.int64()),
    )
    table = pa.table({"minute": joined["minute"], "late": late_ms}).filter(pc.is_valid(late_ms))
    table = table.sort_by([("minute", "ascending"), ("late", "ascending")])
    runs = table.group_by("minute", use_threads=False).aggregate([("minute", "count")])
    late = table["late"]
    out: dict[int, tuple[float, float]] = {}
    start = 0
    for at, n in zip(runs["minute"].to_pylist(), runs["minute_count"].to_pylist(), strict=True):
        out[at] = (
            late[start + _nearest_rank(n, 0.50)].as_py() / 1000.0,
            late[start + _nearest_rank(n, 0.99)].as_py() / 1000.0,
        )
        start += n
    return out


def _nearest_rank(count: int, q: float) -> int:
    """The index of the nearest-rank ``q`` percentile among ``count`` ordered values."""
    return max(0, math.ceil(q * count) - 1)


# At most this many minutes are filled in between a table's first and last minute; a
# wider span (a stray event time years away) is left with its gaps.
MAX_FILLED_MINUTES = 31 * 24 * 60


def fill_minutes(table: pa.Table) -> pa.Table:
    """``table`` (keyed by ``minute``) with a row for every minute from its first to its
    last: counts 0, money 0.00, rates and percentiles null where no row was."""
    minutes = [m for m in table["minute"].to_pylist() if m is not None]
    if not minutes:
        return table
    first, last = min(minutes), max(minutes)
    span = int((last - first).total_seconds() // 60) + 1
    if span > MAX_FILLED_MINUTES or span == len(set(minutes)):
        return table
    present = set(minutes)
    zero = {f.name: _zero(f.type) for f in table.schema if f.name != "minute"}
    step = timedelta(minutes=1)
    missing = [first + i * step for i in range(span) if first + i * step not in present]
    rows = table.to_pylist() + [{"minute": m, **zero} for m in missing]
    rows.sort(key=lambda r: (r["minute"] is None, r["minute"] or first))
    return pa.Table.from_pylist(rows, schema=table.schema)


def _zero(kind: pa.DataType) -> Any:
    if pa.types.is_integer(kind):
        return 0
    if pa.types.is_decimal(kind):
        return Decimal(0).scaleb(-kind.scale)
    return None
