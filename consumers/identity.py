"""Which copy of an event Silver keeps: decided by the records, not the order they came in.

Every record that decodes and passes the rules is a *copy* of the event its
``event_id`` names. Its content is what was written: the writer schema, by its
registry id, and the Avro body, fingerprinted as the prefix wire format frames them
(magic byte 0, the 4-byte id, the body), whichever format the record came in. So a
copy framed by a GUID in the ``__value_schema_id`` header and one framed by the
prefix, of one writer and one body, are the same content, and the fingerprints
stored before the header format existed stay valid. ``silver/copies`` keeps every
copy's id, fingerprint and coordinates, so that each decision below depends only on
the set of copies the topic holds, whatever batches they arrived in:

* all copies of an id have one content: Silver keeps one row, the copy at the lowest
  (topic epoch, partition, offset); the others are duplicates, dropped and counted;
* copies of an id have different contents: a **conflict**. No copy is trusted: every
  copy goes to quarantine with reason ``conflict``, a row already in Silver is
  withdrawn, and any later copy of that id follows them.

So a rebuild from the topic and any sequence of incremental runs give the same Silver
rows, the same quarantine (but for the time each row was quarantined) and the same
Gold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from consumers.evolve import add_missing_columns
from consumers.tables import rows_of_keys
from consumers.wire import Headers, as_prefixed

__all__ = [
    "COPIES_SCHEMA",
    "SAME_RECORD",
    "WHERE",
    "Coordinates",
    "Copy",
    "Decision",
    "Identity",
    "Recorded",
    "digest",
    "fingerprint",
    "insert_new",
    "last_per_record",
    "where_of",
]

# topic, epoch, partition, offset: the topic's epoch comes first, so the lowest
# coordinates of an event are in its oldest incarnation of the topic.
Coordinates = tuple[str, int, int, int]

# A record's coordinates as Silver's tables name them, in the order that ranks copies.
WHERE = ["kafka_topic", "kafka_topic_epoch", "kafka_partition", "kafka_offset"]

COPIES_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("fingerprint", pa.string()),
        pa.field("kafka_topic", pa.string()),
        pa.field("kafka_partition", pa.int32()),
        pa.field("kafka_offset", pa.int64()),
        pa.field("kafka_topic_epoch", pa.int32()),
    ]
)


def insert_new(path: Path, batch: pa.Table) -> None:
    """Append the rows of ``batch`` whose Kafka coordinates the table at ``path`` lacks,
    so that processing a batch again adds nothing."""
    if not DeltaTable.is_deltatable(str(path)):
        write_deltalake(str(path), batch, mode="append")
        return
    add_missing_columns(path, batch.schema)  # an older table: its rows are epoch 0
    (
        DeltaTable(str(path))
        .merge(batch, SAME_RECORD, source_alias="s", target_alias="t")
        .when_not_matched_insert_all()
        .execute()
    )


# One record, in a MERGE of tables keyed by Kafka coordinates (target t, source s).
SAME_RECORD = (
    "t.kafka_topic = s.kafka_topic AND t.kafka_topic_epoch = s.kafka_topic_epoch "
    "AND t.kafka_partition = s.kafka_partition AND t.kafka_offset = s.kafka_offset"
)


def where_of(row: dict[str, Any]) -> Coordinates:
    """The coordinates of a row of Silver's tables (``kafka_*`` columns)."""
    return (
        row["kafka_topic"],
        row.get("kafka_topic_epoch") or 0,
        row["kafka_partition"],
        row["kafka_offset"],
    )


def fingerprint(
    value: bytes,
    headers: Headers = None,
    schema_id_of: Callable[[str], int | None] | None = None,
) -> str:
    """The content of a record as written: its writer and its Avro body, framed as the
    prefix format frames them (a prefix-framed ``value`` is hashed as it is).
    ``headers``: the record's, when its writer is named in ``__value_schema_id``;
    ``schema_id_of``: a GUID's registry id, or None when it has none (that copy is
    then identified by its GUID, and matches only copies named by the same GUID)."""
    return digest(as_prefixed(value, headers, schema_id_of or _no_id))


def digest(prefixed: bytes) -> str:
    """The fingerprint of a record's bytes in the prefix format (see :func:`fingerprint`)."""
    return hashlib.sha256(prefixed).hexdigest()[:32]


def digests(values: Iterable[bytes | None]) -> list[str]:
    """:func:`digest` of each of ``values`` (None: no bytes), in one loop."""
    sha256 = hashlib.sha256
    return [sha256(v or b"").hexdigest()[:32] for v in values]


def _no_id(guid: str) -> None:
    return None


@dataclass(frozen=True)
class Copy:
    event_id: str
    fingerprint: str
    where: Coordinates


@dataclass(frozen=True)
class Recorded:
    """A batch's copies recorded and their ids decided, in columns."""

    every: pa.Table  # every copy known of the ids decided on (COPIES_SCHEMA)
    conflicting: frozenset[str]  # ids whose copies disagree
    keep: pa.Table  # event_id and the coordinates (WHERE) of the copy Silver keeps

    def copies_of(self, ids: frozenset[str]) -> dict[str, list[Copy]]:
        """The copies of ``ids``, by id."""
        wanted = pa.array(sorted(ids), pa.string())
        return _by_id(self.every.filter(pc.is_in(self.every["event_id"], value_set=wanted)))


@dataclass(frozen=True)
class Decision:
    conflicting: frozenset[str]  # ids whose copies disagree
    keep: dict[str, Coordinates]  # id -> the copy Silver keeps
    copies: dict[str, list[Copy]]  # every copy known of each id decided on


class Identity:
    """The ``silver/copies`` table of one warehouse."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return DeltaTable.is_deltatable(str(self.path))

    def add(self, copies: list[Copy]) -> None:
        """Record ``copies`` (a copy seen before, by coordinates, is not added twice)."""
        if not copies:
            return
        insert_new(self.path, _batch(copies))

    def record(self, copies: list[Copy]) -> Decision:
        """:meth:`add` then :meth:`decide` for the ids of ``copies``: :meth:`record_table`
        of them, as a :class:`Decision`."""
        recorded = self.record_table(_batch(copies))
        keep = {r["event_id"]: where_of(r) for r in recorded.keep.to_pylist()}
        return Decision(recorded.conflicting, keep, _by_id(recorded.every))

    def record_table(self, batch: pa.Table) -> Recorded:
        """Record the copies of ``batch`` (:data:`COPIES_SCHEMA` columns) and decide their
        ids, reading the table once, for those ids only, and appending the copies it
        lacks (no MERGE, which would read the whole table). Decided in columns: only
        the copies of conflicting ids become Python objects."""
        batch = batch.select(COPIES_SCHEMA.names).cast(COPIES_SCHEMA)
        known = self._rows_of(pc.unique(batch["event_id"]))
        new = last_per_record(batch)
        if known.num_rows and new.num_rows:
            new = new.join(known.select(WHERE), keys=WHERE, join_type="left anti")
        if new.num_rows:
            if self.exists():
                add_missing_columns(self.path, COPIES_SCHEMA)  # an older table: epoch 0
            write_deltalake(str(self.path), new.select(COPIES_SCHEMA.names), mode="append")
        every = pa.concat_tables([known, new.select(COPIES_SCHEMA.names)])
        contents = every.group_by("event_id").aggregate([("fingerprint", "count_distinct")])
        disagree = contents.filter(pc.greater(contents["fingerprint_count_distinct"], 1))
        conflicting = frozenset(disagree["event_id"].to_pylist())
        disputed = pc.is_in(every["event_id"], value_set=disagree["event_id"])
        agreed = every.filter(pc.invert(disputed))
        lowest = agreed.sort_by([(c, "ascending") for c in ["event_id", *WHERE]])
        firsts = lowest.group_by("event_id", use_threads=False).aggregate(
            [(c, "first") for c in WHERE]
        )
        keep = pa.table(
            {"event_id": firsts["event_id"], **{c: firsts[f"{c}_first"] for c in WHERE}}
        )
        return Recorded(every, conflicting, keep)

    def decide(self, ids: set[str]) -> Decision:
        """For each id: conflicting, or the copy to keep (the lowest coordinates)."""
        return _decide(self._copies_of(ids))

    def _copies_of(self, ids: set[str]) -> dict[str, list[Copy]]:
        """Every copy recorded of ``ids``, by id."""
        if not ids:
            return {}
        return _by_id(self._rows_of(pa.array(sorted(ids), pa.string())))

    def _rows_of(self, ids: pa.Array) -> pa.Table:
        """The recorded copies of ``ids``, as :data:`COPIES_SCHEMA` rows."""
        if not len(ids) or not self.exists():  # a batch that was all quarantined
            return COPIES_SCHEMA.empty_table()
        table = rows_of_keys(self.path, COPIES_SCHEMA.names, "event_id", ids)
        return table.cast(COPIES_SCHEMA)


def _by_id(table: pa.Table) -> dict[str, list[Copy]]:
    """The copies of ``table`` (:data:`COPIES_SCHEMA` rows), by id, in its order."""
    copies: dict[str, list[Copy]] = {}
    for row in table.to_pylist():
        copies.setdefault(row["event_id"], []).append(
            Copy(row["event_id"], row["fingerprint"], where_of(row))
        )
    return copies


def last_per_record(batch: pa.Table) -> pa.Table:
    """``batch`` with one row per coordinates, the last (a record is one copy)."""
    if batch.group_by(WHERE).aggregate([]).num_rows == batch.num_rows:
        return batch
    last = {where_of(r): i for i, r in enumerate(batch.select(WHERE).to_pylist())}
    return batch.take(sorted(last.values()))


def _batch(copies: list[Copy]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "event_id": c.event_id,
                "fingerprint": c.fingerprint,
                "kafka_topic": c.where[0],
                "kafka_topic_epoch": c.where[1],
                "kafka_partition": c.where[2],
                "kafka_offset": c.where[3],
            }
            for c in copies
        ],
        schema=COPIES_SCHEMA,
    )


def _decide(copies: dict[str, list[Copy]]) -> Decision:
    """For each id of ``copies``: conflicting, or the copy to keep."""
    conflicting = frozenset(i for i, cs in copies.items() if len({c.fingerprint for c in cs}) > 1)
    keep = {i: min(c.where for c in cs) for i, cs in copies.items() if i not in conflicting}
    return Decision(conflicting, keep, copies)
