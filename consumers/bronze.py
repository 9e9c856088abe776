"""Bronze: the topic's raw records in a Delta table, exactly once.

Every record lands as it came (topic, partition, offset, key, value bytes, the schema
id from the wire header, Kafka timestamp, ingest time), partitioned by ingest date.
The consumer offsets are committed *in the same Delta commit* as the rows: each
commit carries one application transaction per partition (``app_id`` names the
topic and partition, ``version`` is the last offset written). On start the consumer
reads those versions back and resumes right after them, so a crash at any point
neither loses nor duplicates a record: either the commit (rows and offsets) happened
or none of it did. Kafka's own group offsets are not used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.errors import PipelineError
from consumers.wire import schema_id_of

__all__ = ["BRONZE_SCHEMA", "BronzeIngest", "BronzeStats", "app_id"]

log = logging.getLogger(__name__)

BRONZE_SCHEMA = pa.schema(
    [
        pa.field("topic", pa.string()),
        pa.field("partition", pa.int32()),
        pa.field("offset", pa.int64()),
        pa.field("key", pa.binary()),
        pa.field("value", pa.binary()),
        pa.field("schema_id", pa.int32()),
        pa.field("kafka_timestamp", pa.timestamp("ms", tz="UTC")),
        pa.field("ingest_time", pa.timestamp("us", tz="UTC")),
        pa.field("ingest_date", pa.string()),
    ]
)


def app_id(job: str, topic: str, partition: int) -> str:
    """The Delta application-transaction id that carries a partition's offset for a job."""
    return f"flashsale-{job}:{topic}:{partition}"


def committed_offsets(path: Path, job: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """Last offset committed per partition by ``job`` into the table at ``path`` (-1: none)."""
    if not DeltaTable.is_deltatable(str(path)):
        return {p: -1 for p in partitions}
    table = DeltaTable(str(path))
    out = {}
    for p in partitions:
        version = table.transaction_version(app_id(job, topic, p))
        out[p] = -1 if version is None else int(version)
    return out


@dataclass
class BronzeStats:
    records: int = 0
    commits: int = 0
    elapsed: float = 0.0


class BronzeIngest:
    """Kafka -> Delta, resuming from the offsets stored in the table."""

    def __init__(
        self,
        kafka: dict[str, Any],
        topic: str,
        table: Path,
        batch_size: int = 5000,
        connect_timeout: float = 10.0,
        missing_ok: bool = False,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.table = table
        self.batch_size = batch_size
        self.connect_timeout = connect_timeout
        # A topic that does not exist is nothing to ingest (else a PipelineError).
        self.missing_ok = missing_ok

    def run(
        self,
        until_idle: bool = True,
        idle_seconds: float = 2.0,
        on_commit: Callable[[BronzeStats], None] | None = None,
        stop: threading.Event | None = None,
    ) -> BronzeStats:
        """Ingest until idle (or forever), or until ``stop`` is set: then after the
        batch in hand is committed, so nothing read is left out of Bronze."""
        consumer = Consumer(
            {
                **self.kafka,
                "group.id": f"flashsale-bronze-{self.topic}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )
        stats = BronzeStats()
        started = time.monotonic()
        try:
            partitions = self._partitions(consumer)
            if not partitions:
                return stats
            start = committed_offsets(self.table, "bronze", self.topic, partitions)
            consumer.assign([TopicPartition(self.topic, p, start[p] + 1) for p in partitions])
            at_end: set[int] = set()
            idle_since = time.monotonic()
            while stop is None or not stop.is_set():
                messages = consumer.consume(self.batch_size, 0.5)
                rows = []
                for m in messages:
                    error = m.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            partition = m.partition()
                            if partition is not None:
                                at_end.add(partition)
                            continue
                        raise PipelineError(f"bronze: consuming {self.topic}: {error.str()}")
                    at_end.discard(m.partition())
                    rows.append(m)
                if rows:
                    self._commit(rows)
                    stats.records += len(rows)
                    stats.commits += 1
                    idle_since = time.monotonic()
                    if on_commit is not None:
                        on_commit(stats)
                elif until_idle and (
                    at_end >= set(partitions) or time.monotonic() - idle_since >= idle_seconds
                ):
                    break  # caught up: every partition is at its end
        finally:
            consumer.close()
            stats.elapsed = time.monotonic() - started
        return stats

    def _partitions(self, consumer: Consumer) -> list[int]:
        try:
            metadata = consumer.list_topics(self.topic, timeout=self.connect_timeout)
        except KafkaException as exc:
            raise PipelineError(
                f"bronze: cannot reach Kafka within {self.connect_timeout:g}s "
                f"({exc.args[0].name()})"
            ) from exc
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            if self.missing_ok:
                return []
            raise PipelineError(f"bronze: topic {self.topic} does not exist")
        return sorted(found.partitions)

    def _commit(self, messages: list[Any]) -> None:
        now = datetime.now(UTC)
        columns: dict[str, list[Any]] = {name: [] for name in BRONZE_SCHEMA.names}
        last: dict[int, int] = {}
        for m in messages:
            value = m.value()
            columns["topic"].append(m.topic())
            columns["partition"].append(m.partition())
            columns["offset"].append(m.offset())
            columns["key"].append(m.key())
            columns["value"].append(value)
            columns["schema_id"].append(schema_id_of(value))
            kind, ts = m.timestamp()
            columns["kafka_timestamp"].append(ts if kind != 0 else None)
            columns["ingest_time"].append(now)
            columns["ingest_date"].append(now.date().isoformat())
            last[m.partition()] = max(last.get(m.partition(), -1), m.offset())
        batch = pa.table(columns, schema=BRONZE_SCHEMA)
        transactions = [
            Transaction(app_id("bronze", self.topic, p), offset)
            for p, offset in sorted(last.items())
        ]
        write_deltalake(
            str(self.table),
            batch,
            mode="append",
            partition_by=["ingest_date"],
            commit_properties=CommitProperties(app_transactions=transactions),
        )
