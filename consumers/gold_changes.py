"""The minutes a change of Silver touched: what Gold's per-minute tables compute again.

Between the Silver version Gold was computed from and the current one, Silver's Delta
log names the files each commit added and removed, and the Bronze offsets Silver
committed (its application transactions); the quarantine's log likewise. A minute's
rows of a per-minute table depend only on the rows of that minute, so the minutes to
compute again are those of the rows in the files added or removed (a file rewritten
by a MERGE or a DELETE names all of its rows, changed or not: a superset, never
less), and, for the data quality, the minutes of arrival of the Bronze records Silver
processed since. Files a commit moved without changing data (``dataChange`` false: a
compaction) hold the same rows before and after, and change no minute.

Whatever the log cannot answer for certain raises :class:`Unsure`, and Gold is then
computed whole: a commit file gone (log cleanup), a removed data file gone (vacuum), a
change of schema or protocol, deletion vectors, rows without a timestamp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable

from consumers.tables import bronze_files

__all__ = ["MINUTE_US", "Changed", "Unsure", "changed_minutes", "ranges"]

MINUTE_US = 60_000_000
_MINUTE = pa.timestamp("us", tz="UTC")
_SILVER_JOB = "flashsale-silver:"


class Unsure(Exception):
    """The log cannot say for certain what changed; the message says why."""


@dataclass(frozen=True)
class Changed:
    """Minutes as microseconds since the epoch (UTC)."""

    event_minutes: frozenset[int]  # of event time: revenue and funnel per minute
    arrival_minutes: frozenset[int]  # of the Kafka timestamp: the data quality
    # Silver's data files (paths inside the table) the change added and removed: the
    # rows in the added files that are not in the removed ones are what the change
    # brought, and the other way round what it took away (partial sums: gold.py).
    silver_added: frozenset[str] = frozenset()
    silver_removed: frozenset[str] = frozenset()


@dataclass
class _Log:
    added: set[str]
    removed: set[str]
    transactions: dict[str, int]


def changed_minutes(
    warehouse: Path, silver_from: int, silver_to: int, quarantine_from: int, quarantine_to: int
) -> Changed:
    """The minutes whose per-minute rows may differ between Silver at ``silver_from``
    (with the quarantine at ``quarantine_from``, -1: none) and at ``silver_to`` (and
    ``quarantine_to``); raises :class:`Unsure` when the logs cannot say."""
    silver_path = warehouse / "silver" / "events"
    quarantine_path = warehouse / "silver" / "quarantine"
    silver = _log(silver_path, silver_from, silver_to)
    quarantine = _log(quarantine_path, quarantine_from, quarantine_to)
    # The data quality finds a row's minute of arrival by its own Kafka timestamp:
    # rows without one (written before Silver kept it) could fall in any minute.
    _no_null_timestamps(silver_path, silver_to)
    if quarantine_to >= 0:
        _no_null_timestamps(quarantine_path, quarantine_to)
    silver_files = [*silver.added, *silver.removed]
    event, arrival = _minutes(silver_path, silver_files, ["event_time", "kafka_timestamp"])
    quarantine_files = [*quarantine.added, *quarantine.removed]
    (arrived,) = _minutes(quarantine_path, quarantine_files, ["kafka_timestamp"])
    arrival |= arrived
    arrival |= _processed_minutes(warehouse, silver_from, silver.transactions)
    return Changed(
        frozenset(event), frozenset(arrival), frozenset(silver.added), frozenset(silver.removed)
    )


def ranges(minutes: frozenset[int]) -> list[tuple[int, int]]:
    """``minutes`` as half-open ranges [start, end) of consecutive minutes."""
    out: list[tuple[int, int]] = []
    for at in sorted(minutes):
        if out and out[-1][1] == at:
            out[-1] = (out[-1][0], at + MINUTE_US)
        else:
            out.append((at, at + MINUTE_US))
    return out


def _log(path: Path, start: int, end: int) -> _Log:
    """The data files added and removed by the commits after version ``start`` up to
    ``end`` (net: a file added then removed between them is in neither), and the last
    offset of each application transaction they committed."""
    if end < start:
        raise Unsure(f"{path.name}: version {end} is older than Gold's {start}")
    out = _Log(set(), set(), {})
    for version in range(start + 1, end + 1):
        commit = path / "_delta_log" / f"{version:020d}.json"
        try:
            lines = commit.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise Unsure(f"{path.name}: commit {version} is not in the log ({exc})") from exc
        for line in lines:
            if not line.strip():
                continue
            action = json.loads(line)
            if "metaData" in action or "protocol" in action:
                if version > 0:
                    raise Unsure(f"{path.name}: commit {version} changed the schema or protocol")
                continue
            if "txn" in action:
                out.transactions[action["txn"]["appId"]] = int(action["txn"]["version"])
            elif "add" in action:
                add = action["add"]
                if add.get("deletionVector"):
                    raise Unsure(f"{path.name}: commit {version} writes a deletion vector")
                if add.get("dataChange", True):
                    out.added.add(_file(path, add["path"]))
            elif "remove" in action:
                remove = action["remove"]
                if remove.get("deletionVector"):
                    raise Unsure(f"{path.name}: commit {version} removes a deletion vector")
                if remove.get("dataChange", True):
                    name = _file(path, remove["path"])
                    if name in out.added:
                        out.added.discard(name)
                    else:
                        out.removed.add(name)
    gone = sorted(f for f in out.removed | out.added if not (path / f).is_file())
    if gone:
        raise Unsure(f"{path.name}: {len(gone)} data file(s) the log names are gone (vacuum)")
    return out


def _file(path: Path, name: str) -> str:
    if "://" in name or name.startswith("/"):
        raise Unsure(f"{path.name}: a data file outside the table ({name})")
    return unquote(name)


def _minutes(path: Path, files: list[str], columns: list[str]) -> list[set[int]]:
    """The minutes of each of ``columns`` over the rows of the data files ``files``."""
    out: list[set[int]] = [set() for _ in columns]
    for name in files:
        parquet = pq.ParquetFile(path / name)
        missing = [c for c in columns if c not in parquet.schema_arrow.names]
        if missing:
            raise Unsure(f"{path.name}: {name} has no column {', '.join(missing)}")
        values = parquet.read(columns=columns)
        for found, column in zip(out, columns, strict=True):
            found |= _floor(values[column], f"{path.name}: {name}")
    return out


def _floor(values: pa.ChunkedArray | pa.Array, where: str) -> set[int]:
    if values.null_count:
        raise Unsure(f"{where}: rows without a timestamp")
    minutes = pc.floor_temporal(values, unit="minute").cast(_MINUTE).cast(pa.int64())
    return {int(m) for m in pc.unique(minutes).to_pylist()}


def _no_null_timestamps(path: Path, version: int) -> None:
    actions = pa.table(DeltaTable(str(path), version=version).get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return
    counts = "null_count.kafka_timestamp"
    if counts not in actions.column_names or actions[counts].null_count:
        raise Unsure(f"{path.name}: files without statistics of kafka_timestamp")
    if pc.max(actions[counts]).as_py():
        raise Unsure(f"{path.name}: rows without a Kafka timestamp")


def _processed_minutes(warehouse: Path, silver_from: int, committed: dict[str, int]) -> set[int]:
    """The minutes of arrival of the Bronze records Silver processed after version
    ``silver_from``: those past the offsets it had committed then, up to those it
    committed since (``committed``: application id -> offset)."""
    ours = {k: v for k, v in committed.items() if k.startswith(_SILVER_JOB)}
    if not ours:
        return set()
    bronze_path = warehouse / "bronze" / "events"
    if not DeltaTable.is_deltatable(str(bronze_path)):
        return set()
    before = DeltaTable(str(warehouse / "silver" / "events"), version=silver_from)
    bronze = DeltaTable(str(bronze_path))
    has_epochs = "topic_epoch" in bronze.schema().to_arrow().names
    spans = []
    for app, offset in sorted(ours.items()):
        name, _, partition = app.removeprefix(_SILVER_JOB).rpartition(":")
        topic, _, epoch = name.partition("#")
        low = before.transaction_version(app)
        low = -1 if low is None else int(low)
        if offset < low:
            raise Unsure(f"silver: the offset of {app} went back from {low} to {offset}")
        if offset > low:
            spans.append((app, topic, int(epoch or 0), int(partition), low, offset))
    # Only the files that can hold the offsets processed are read.
    dataset = bronze_files(bronze, [(p, low + 1, high) for *_, p, low, high in spans])
    out: set[int] = set()
    for app, topic, number, at_partition, low, offset in spans:
        if has_epochs:
            same = ds.field("topic_epoch") == number
            of_epoch = same | ds.field("topic_epoch").is_null() if number == 0 else same
        else:
            of_epoch = ds.scalar(number == 0)
        rows = dataset.to_table(
            columns=["topic", "kafka_timestamp"],
            filter=of_epoch
            & (ds.field("partition") == at_partition)
            & (ds.field("offset") > low)
            & (ds.field("offset") <= offset),
        )
        rows = rows.filter(pc.equal(rows["topic"], topic))
        out |= _floor(rows["kafka_timestamp"], f"bronze: {app}")
    return out
