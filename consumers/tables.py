"""What Silver's tables share: the coordinates of a row's record, and the quarantine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from consumers.bronze import committed_offsets

__all__ = [
    "BRONZE_COLUMNS",
    "COORDINATES",
    "QUARANTINE_SCHEMA",
    "coordinates",
    "quarantined",
    "unprocessed",
]

# Where each row came from, and when: the Kafka timestamp and Bronze's ingest time
# measure lateness (null in rows written before Silver kept them).
COORDINATES = [
    pa.field("kafka_topic", pa.string()),
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
    pa.field("writer_schema_id", pa.int32()),
    pa.field("kafka_timestamp", pa.timestamp("ms", tz="UTC")),
    pa.field("ingest_time", pa.timestamp("us", tz="UTC")),
]
QUARANTINE_SCHEMA = pa.schema(
    [
        *COORDINATES,
        pa.field("raw_value", pa.binary()),
        pa.field("reason", pa.string()),
        pa.field("quarantined_at", pa.timestamp("us", tz="UTC")),
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
]


def coordinates(bronze_row: dict[str, Any]) -> dict[str, Any]:
    return {
        "kafka_topic": bronze_row["topic"],
        "kafka_partition": bronze_row["partition"],
        "kafka_offset": bronze_row["offset"],
        "writer_schema_id": bronze_row["schema_id"],
        "kafka_timestamp": bronze_row["kafka_timestamp"],
        "ingest_time": bronze_row["ingest_time"],
    }


def quarantined(coordinates: dict[str, Any], raw: bytes | None, reason: str) -> dict[str, Any]:
    return {**coordinates, "raw_value": raw, "reason": reason, "quarantined_at": datetime.now(UTC)}


def unprocessed(bronze: Path, target: Path, job: str, topic: str) -> pa.Table:
    """The Bronze rows of ``topic`` past the offsets ``job`` committed into the table at
    ``target``, in partition and offset order."""
    table = DeltaTable(str(bronze)).to_pyarrow_table(columns=BRONZE_COLUMNS)
    table = table.filter(pc.equal(table["topic"], topic))
    partitions = sorted(set(table["partition"].to_pylist()))
    done = committed_offsets(target, job, topic, partitions)
    if any(v >= 0 for v in done.values()):
        keep = None
        for p, offset in done.items():
            part = pc.and_(pc.equal(table["partition"], p), pc.greater(table["offset"], offset))
            keep = part if keep is None else pc.or_(keep, part)
        table = table.filter(keep)
    return table.sort_by([("partition", "ascending"), ("offset", "ascending")])
