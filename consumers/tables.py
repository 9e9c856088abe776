"""What Silver's tables share: the coordinates of a row's record, and the quarantine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

from consumers.bronze import committed_offsets, current_epoch, stored_partitions
from consumers.evolve import complete, local_files, read, read_matching

__all__ = [
    "BRONZE_COLUMNS",
    "COORDINATES",
    "QUARANTINE_SCHEMA",
    "TOPIC_EPOCH",
    "bronze_files",
    "coordinates",
    "files_within",
    "quarantined",
    "rows_of_keys",
    "unprocessed",
    "unprocessed_batches",
]

# Where each row came from, and when: the Kafka timestamp and Bronze's ingest time
# measure lateness (null in rows written before Silver kept them).
# The topic's epoch (its incarnation, see consumers.bronze) is part of a record's
# coordinates: a topic read again from its start repeats (partition, offset). It comes
# last in each table, as it was added after the others (0 in older rows).
TOPIC_EPOCH = pa.field("kafka_topic_epoch", pa.int32())
COORDINATES = [
    pa.field("kafka_topic", pa.string()),
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
    pa.field("writer_schema_id", pa.int32()),
    pa.field("kafka_timestamp", pa.timestamp("ms", tz="UTC")),
    pa.field("ingest_time", pa.timestamp("us", tz="UTC")),
    TOPIC_EPOCH,
]
QUARANTINE_SCHEMA = pa.schema(
    [
        *COORDINATES[:-1],
        pa.field("raw_value", pa.binary()),
        pa.field("reason", pa.string()),
        pa.field("quarantined_at", pa.timestamp("us", tz="UTC")),
        TOPIC_EPOCH,
    ]
)

# The Bronze columns Silver reads.
BRONZE_COLUMNS = [
    "topic",
    "partition",
    "offset",
    "key",
    "value",
    "schema_id",
    "kafka_timestamp",
    "ingest_time",
    "topic_epoch",
    "schema_id_in",
    "schema_guid",
]


def coordinates(bronze_row: dict[str, Any]) -> dict[str, Any]:
    return {
        "kafka_topic": bronze_row["topic"],
        "kafka_partition": bronze_row["partition"],
        "kafka_offset": bronze_row["offset"],
        "writer_schema_id": bronze_row["schema_id"],
        "kafka_timestamp": bronze_row["kafka_timestamp"],
        "ingest_time": bronze_row["ingest_time"],
        "kafka_topic_epoch": bronze_row.get("topic_epoch") or 0,
    }


def quarantined(coordinates: dict[str, Any], raw: bytes | None, reason: str) -> dict[str, Any]:
    return {**coordinates, "raw_value": raw, "reason": reason, "quarantined_at": datetime.now(UTC)}


def unprocessed(bronze: Path, target: Path, job: str, topic: str) -> pa.Table:
    """The Bronze rows of ``topic`` past the offsets ``job`` committed into the table at
    ``target`` (per epoch of the topic and partition), in epoch, partition and offset
    order."""
    table = read(bronze, BRONZE_COLUMNS)
    table = table.filter(pc.equal(table["topic"], topic))
    pairs = table.select(["topic_epoch", "partition"]).group_by(["topic_epoch", "partition"])
    keep = None
    for row in pairs.aggregate([]).to_pylist():
        epoch, p = row["topic_epoch"], row["partition"]
        offset = committed_offsets(target, job, topic, [p], epoch)[p]
        part = pc.and_(
            pc.and_(pc.equal(table["topic_epoch"], epoch), pc.equal(table["partition"], p)),
            pc.greater(table["offset"], offset),
        )
        keep = part if keep is None else pc.or_(keep, part)
    if keep is not None:
        table = table.filter(keep)
    return table.sort_by(
        [("topic_epoch", "ascending"), ("partition", "ascending"), ("offset", "ascending")]
    )


# Silver's batches: enough rows that a commit's fixed cost is small beside them, few
# enough that a batch's values and decoded rows stay well under the memory budget.
BATCH_ROWS = 50_000

_ORDER = [("topic_epoch", "ascending"), ("partition", "ascending"), ("offset", "ascending")]


def unprocessed_batches(
    bronze: Path,
    target: Path,
    job: str,
    topic: str,
    batch_rows: int = BATCH_ROWS,
    check_writers: Callable[[list[int]], None] | None = None,
) -> Iterator[pa.Table]:
    """The Bronze rows of ``topic`` past the offsets ``job`` committed into the table at
    ``target`` (what :func:`unprocessed` returns), in batches of at most ``batch_rows``.

    Each batch is in epoch, partition and offset order and holds, per (epoch,
    partition), the offsets that follow the previous batch's: committing a batch's
    last offsets never skips a row. Only files whose statistics can hold unprocessed
    rows are read (Bronze only grows, so older files are pruned), first for the rows'
    coordinates, then for one batch's values at a time.

    ``check_writers`` sees, before the first batch, every writer schema id the batches
    hold: raising there stops the run before any batch is processed."""
    if not DeltaTable.is_deltatable(str(bronze)):
        return
    table = DeltaTable(str(bronze))
    present = set(table.schema().to_arrow().names)
    committed = [
        (epoch, p, offset)
        for epoch in range(current_epoch(bronze, topic) + 1)
        for p, offset in committed_offsets(
            target, job, topic, stored_partitions(table), epoch
        ).items()
    ]
    pending = [_past(epoch, p, offset, "topic_epoch" in present) for epoch, p, offset in committed]
    if not pending:
        return
    dataset = bronze_files(table, [(p, offset + 1, None) for _, p, offset in committed])
    keys = _of_topic(dataset, ["topic", "schema_id", *_ORDER_NAMES], pending, topic, present)
    if check_writers is not None:
        check_writers([i for i in pc.unique(keys["schema_id"]).to_pylist() if i is not None])
    keys = keys.select(_ORDER_NAMES).sort_by(_ORDER)
    for start in range(0, keys.num_rows, batch_rows):
        chunk = keys.slice(start, batch_rows)
        spans = chunk.group_by(["topic_epoch", "partition"]).aggregate(
            [("offset", "min"), ("offset", "max")]
        )
        ranges = [
            _span(r["topic_epoch"], r["partition"], r["offset_min"], r["offset_max"], present)
            for r in spans.to_pylist()
        ]
        yield _of_topic(dataset, BRONZE_COLUMNS, ranges, topic, present).sort_by(_ORDER)


_ORDER_NAMES = ["topic_epoch", "partition", "offset"]


def _of_topic(
    dataset: ds.Dataset,
    columns: list[str],
    ranges: list[ds.Expression],
    topic: str,
    present: set[str],
) -> pa.Table:
    """``columns`` of the rows of ``topic`` in any of ``ranges``. The ranges, over
    number columns, are given to the scan, which skips the files whose statistics
    rule them out; the topic is compared after reading (a string comparison in the
    scan fails on the files a MERGE or OPTIMIZE wrote, whose strings are views)."""
    rows = dataset.to_table(
        columns=[c for c in columns if c in present], filter=reduce(lambda a, b: a | b, ranges)
    )
    rows = rows.filter(pc.equal(rows["topic"], topic))
    return complete(rows, columns)


def _epoch_is(epoch: int, has_epochs: bool) -> ds.Expression:
    """Rows of ``epoch`` (rows written before epochs existed, null or absent, are 0)."""
    if not has_epochs:
        return ds.scalar(epoch == 0)
    same = ds.field("topic_epoch") == epoch
    return same | ds.field("topic_epoch").is_null() if epoch == 0 else same


def _past(epoch: int, partition: int, offset: int, has_epochs: bool) -> ds.Expression:
    return (
        _epoch_is(epoch, has_epochs)
        & (ds.field("partition") == partition)
        & (ds.field("offset") > offset)
    )


def _span(epoch: int, partition: int, low: int, high: int, present: set[str]) -> ds.Expression:
    return (
        _epoch_is(epoch, "topic_epoch" in present)
        & (ds.field("partition") == partition)
        & (ds.field("offset") >= low)
        & (ds.field("offset") <= high)
    )


def rows_of_keys(
    path: Path, columns: list[str], key: str, values: pa.Array, version: int | None = None
) -> pa.Table:
    """The rows of the table at ``path`` whose ``key`` is one of ``values``: ``columns``
    of them, as :func:`consumers.evolve.read_matching` gives them, but reading only
    the data files whose statistics of ``key`` (the lowest and highest value the Delta
    log records for each file) can hold one of ``values``.

    So a lookup costs what the files it can match cost, not the whole table, when the
    keys are clustered in files: Silver and its copies are written a batch at a time,
    and the producer's event ids are a run's fixed prefix and a counter, so a file
    holds one narrow range of ids and a batch of new ids is outside the ranges of all
    the older files. Keys spread at random over every file prune nothing, and read
    every file, as before. Statistics are bounds even when delta-rs truncates a long
    string's (its minimum is a prefix, its maximum is rounded up); a file without
    them is read. A table the files alone cannot describe (partitioned, or with
    deletion vectors), or not on the local disk, is read whole as
    :func:`~consumers.evolve.read_matching` reads it. ``version``: the table as it
    was then (the files of that version, which must still exist)."""
    table = DeltaTable(str(path), version=version)
    filesystem = local_files(table)
    features = table.protocol().reader_features or []
    if filesystem is None or table.metadata().partition_columns or "deletionVectors" in features:
        if version is not None:
            raise ValueError(f"{path}: a lookup at a version needs a local, plain table")
        return read_matching(path, columns, key, values)
    schema = pa.schema(table.schema().to_arrow())
    wanted = [c for c in columns if c in schema.names]
    files = _files_holding(table, key, values)
    if not files:
        return complete(schema.empty_table().select(wanted), columns)
    scanner = ds.dataset(files, schema=schema, format="parquet", filesystem=filesystem).scanner(
        columns=wanted
    )
    kept = [
        batch.filter(pc.is_in(batch.column(key), value_set=values))
        for batch in scanner.to_batches()
    ]
    return complete(pa.Table.from_batches(kept, schema=scanner.projected_schema), columns)


def _files_holding(table: DeltaTable, key: str, values: pa.Array) -> list[str]:
    """The data files of ``table`` (paths inside it) whose statistics of the string
    column ``key`` do not rule out every one of ``values``."""
    actions = pa.table(table.get_add_actions(flatten=True))
    paths = [unquote(p) for p in actions["path"].to_pylist()]
    low, high = f"min.{key}", f"max.{key}"
    if low not in actions.column_names or high not in actions.column_names or values.null_count:
        return paths
    wanted = pc.unique(values).cast(pa.string())
    if not len(wanted):
        return []
    # Compared as Arrow compares strings: by their UTF-8 bytes, as the statistics are.
    least, most = pc.min_max(wanted).values()
    out = []
    for path, lowest, highest in zip(
        paths, actions[low].to_pylist(), actions[high].to_pylist(), strict=True
    ):
        if lowest is None or highest is None:
            out.append(path)
        elif lowest > most.as_py() or highest < least.as_py():
            continue  # outside the range of all the values: no need to look closer
        elif pc.any(
            pc.and_(pc.greater_equal(wanted, lowest), pc.less_equal(wanted, highest))
        ).as_py():
            out.append(path)
    return out


def bronze_files(table: DeltaTable, spans: list[tuple[int, int, int | None]]) -> ds.Dataset:
    """The data files of Bronze's ``table`` that can hold a row of one of ``spans``
    (partition, lowest offset, highest offset or None: no bound), as a dataset of its
    columns (not its partition columns, which its files do not hold).

    The files are chosen by the statistics the Delta log records for each (a file
    without them is kept), rather than by the dataset delta-rs builds, whose cost
    grows with every file Bronze ever wrote (it builds a statistics expression for
    each column of each file). A table the files alone cannot describe (deletion
    vectors), or not on the local disk, is the whole of delta-rs' dataset."""
    return _files_chosen(table, lambda actions, paths: _bronze_chosen(actions, paths, spans))


def _bronze_chosen(
    actions: pa.Table, paths: list[str], spans: list[tuple[int, int, int | None]]
) -> list[str]:
    """The ``paths`` whose partition and offset statistics can hold one of ``spans``."""

    def stat(name: str) -> list[Any]:
        return actions[name].to_pylist() if name in actions.column_names else [None] * len(paths)

    bounds = zip(
        paths,
        stat("min.partition"),
        stat("max.partition"),
        stat("min.offset"),
        stat("max.offset"),
        strict=True,
    )
    chosen = [
        path
        for path, p_low, p_high, o_low, o_high in bounds
        if any(
            (p_low is None or p_low <= p)
            and (p_high is None or p <= p_high)
            and (o_high is None or low <= o_high)
            and (high is None or o_low is None or o_low <= high)
            for p, low, high in spans
        )
    ]
    return chosen


# Delta's statistics keep a timestamp to the millisecond, truncated: a file's highest
# value may lie up to a millisecond past its recorded maximum.
_STAT_PRECISION_US = 1_000


def files_within(table: DeltaTable, column: str, spans: list[tuple[int, int]]) -> ds.Dataset:
    """The data files of ``table`` that can hold a row whose timestamp ``column`` is in
    one of ``spans`` (half-open ranges of microseconds since the epoch), as a dataset
    of its columns (not its partition columns), chosen by the statistics the Delta log
    records for each file as :func:`bronze_files` chooses them (a file without them is
    kept; a table the files alone cannot describe is the whole of delta-rs' dataset).
    The caller still filters the rows: a file chosen may hold others too."""
    return _files_chosen(
        table, lambda actions, paths: _stamped_within(actions, paths, column, spans)
    )


def _stamped_within(
    actions: pa.Table, paths: list[str], column: str, spans: list[tuple[int, int]]
) -> list[str]:
    """The ``paths`` whose statistics of the timestamp ``column`` can meet ``spans``."""
    low, high = f"min.{column}", f"max.{column}"
    if low not in actions.column_names or high not in actions.column_names:
        return paths

    def micros(name: str) -> list[int | None]:
        stamps = actions[name].cast(pa.timestamp("us", tz="UTC"))
        return list(stamps.cast(pa.int64()).to_pylist())

    chosen = [
        path
        for path, least, most in zip(paths, micros(low), micros(high), strict=True)
        if least is None
        or most is None
        or any(least < end and start <= most + _STAT_PRECISION_US for start, end in spans)
    ]
    return chosen


def _files_chosen(
    table: DeltaTable, choose: Callable[[pa.Table, list[str]], list[str]]
) -> ds.Dataset:
    """The data files of ``table`` that ``choose`` keeps, given the log's add actions
    with their statistics and the files' paths, as a dataset of its columns (not its
    partition columns, which its files do not hold); a table the files alone cannot
    describe (deletion vectors), or not on the local disk, is the whole of delta-rs'
    dataset."""
    filesystem = local_files(table)
    if filesystem is None or "deletionVectors" in (table.protocol().reader_features or []):
        return table.to_pyarrow_dataset(filesystem=filesystem)
    partitioned = set(table.metadata().partition_columns)
    schema = pa.schema(
        [f for f in pa.schema(table.schema().to_arrow()) if f.name not in partitioned]
    )
    actions = pa.table(table.get_add_actions(flatten=True))
    paths = [unquote(p) for p in actions["path"].to_pylist()]
    return ds.dataset(
        choose(actions, paths), schema=schema, format="parquet", filesystem=filesystem
    )
