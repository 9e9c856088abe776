"""What Silver's tables share: the coordinates of a row's record, and the quarantine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from consumers.bronze import committed_offsets
from consumers.evolve import read

__all__ = [
    "BRONZE_COLUMNS",
    "COORDINATES",
    "QUARANTINE_SCHEMA",
    "TOPIC_EPOCH",
    "coordinates",
    "quarantined",
    "unprocessed",
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
