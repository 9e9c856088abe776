"""Bronze: the topic's raw records in a Delta table, exactly once.

Every record lands as it came (topic, partition, offset, key, value bytes, the writer
it names in either Confluent wire format, Kafka timestamp, ingest time), partitioned
by ingest date. The writer is the schema id of the 5-byte prefix, or what the
``__value_schema_id`` header carries (a GUID, or an id), with ``schema_id_in`` saying
which (``prefix``, ``header``; older rows read ``prefix``).
The consumer offsets are committed *in the same Delta commit* as the rows: each
commit carries one application transaction per partition (``app_id`` names the
topic and partition, ``version`` is the last offset written). On start the consumer
reads those versions back and resumes right after them, so a crash at any point
neither loses nor duplicates a record: either the commit (rows and offsets) happened
or none of it did. Kafka's own group offsets are not used.

**A topic that is not the log the offsets point into.** A broker that keeps topics in
memory (the local Tansu) comes back empty after a restart; on any cluster a topic can
be deleted and created again, or truncated. Resuming from the stored offsets would
then read nothing (the offsets lie past the new log's end) or, worse, skip the new
topic's first records. So before reading, Bronze compares what it stored with the
topic as it is now, and raises :class:`TopicReset` (nothing is read) when:

* a partition it stored an offset for no longer exists;
* a partition's stored last offset + 1 is greater than the partition's log end (the
  high watermark): records Bronze has are not in the log any more;
* the topic's id (Kafka's topic UUID, ``describe_topics``) is not the one Bronze
  recorded: the topic was recreated, even with as many records as before or more,
  where offsets alone cannot tell. Bronze records the id, with the offsets, in its
  commits (application transactions ``flashsale-bronze:TOPIC:topic-id:ID``). A
  broker that gives no topic id (an old Kafka) leaves only the offset checks; so does
  a warehouse written before ids were recorded, until its first run here. Tansu and
  Kafka in KRaft mode give one.

The log end is the high watermark that ``ListOffsets`` reports; when it says the
stored offset lies beyond it, a fetch at the stored offset confirms (Tansu answers
``ListOffsets`` with the base offset of the last record batch + 1, short of the real
end, while its fetch responses carry the real one).

``on_reset="replay"`` (``pipeline run --on-reset replay``) reads the new topic from its
start instead, as a new *epoch* of the topic: Bronze's rows carry ``topic_epoch`` (0
for the first incarnation and for rows written before epochs existed), the offsets of
each epoch are their own application transactions (``flashsale-bronze:TOPIC:P`` for
epoch 0, ``flashsale-bronze:TOPIC#E:P`` after), and the current epoch is
``flashsale-bronze:TOPIC:epoch``. The old rows stay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.errors import PipelineError, ServiceUnreachable
from consumers.evolve import add_missing_columns, arrow
from consumers.wire import WireFormatError, WriterRef, header_ref, schema_id_of

__all__ = [
    "BRONZE_SCHEMA",
    "ON_RESET",
    "BronzeIngest",
    "BronzeStats",
    "OnReset",
    "TopicReset",
    "app_id",
    "committed_offsets",
    "current_epoch",
]

log = logging.getLogger(__name__)
# librdkafka's own lines (retries, reconnects, purged queues) go to logging, not stderr:
# the CLI shows them with -v.
librdkafka_log = logging.getLogger("flashsale.librdkafka")

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
        # Which incarnation of the topic the record came from: 0 for the first (and for
        # rows written before epochs existed), one more on each --on-reset replay.
        pa.field("topic_epoch", pa.int32()),
        # Where the writer was named: "prefix" (magic 0 + id before the body) or "header"
        # (the __value_schema_id header; the value is the bare body), and the schema
        # GUID when the header named it by GUID.
        pa.field("schema_id_in", pa.string()),
        pa.field("schema_guid", pa.string()),
    ]
)
# What rows written before a column existed hold in it.
BRONZE_FILL = {"schema_id_in": "prefix"}


OnReset = Literal["fail", "replay"]
ON_RESET: tuple[OnReset, ...] = ("fail", "replay")
# How long a fetch may take to confirm that a stored offset lies beyond the log.
_CONFIRM_SECONDS = 5.0


class TopicReset(PipelineError):
    """The topic is not the log Bronze's stored offsets point into (recreated, reset or
    truncated); nothing was read."""

    def __init__(self, topic: str, partition: int, stored: int, log_end: int | None, why: str,
                 others: int = 0) -> None:  # fmt: skip
        self.topic, self.partition, self.stored, self.log_end = topic, partition, stored, log_end
        end = "none (the partition is gone)" if log_end is None else str(log_end)
        more = f" (and {others} more partition{'s' if others > 1 else ''})" if others else ""
        super().__init__(
            f"bronze: topic {topic} partition {partition}: stored offset {stored}, log end "
            f"{end}{more}: {why}; nothing was read"
        )


def app_id(job: str, topic: str, partition: int, epoch: int = 0) -> str:
    """The Delta application-transaction id that carries a partition's offset for a job
    (in the topic's ``epoch``: 0 is the first incarnation of the topic)."""
    name = topic if epoch == 0 else f"{topic}#{epoch}"
    return f"flashsale-{job}:{name}:{partition}"


def _epoch_id(topic: str) -> str:
    return f"flashsale-bronze:{topic}:epoch"


def _topic_id_key(topic: str, topic_id: str) -> str:
    return f"flashsale-bronze:{topic}:topic-id:{topic_id}"


def _identified_id(topic: str) -> str:
    return f"flashsale-bronze:{topic}:identified"


def current_epoch(path: Path, topic: str) -> int:
    """The epoch of ``topic`` that Bronze at ``path`` reads now (0 until a replay)."""
    if not DeltaTable.is_deltatable(str(path)):
        return 0
    return DeltaTable(str(path)).transaction_version(_epoch_id(topic)) or 0


def committed_offsets(
    path: Path, job: str, topic: str, partitions: list[int], epoch: int = 0
) -> dict[int, int]:
    """Last offset committed per partition by ``job`` into the table at ``path`` (-1: none)."""
    if not DeltaTable.is_deltatable(str(path)):
        return {p: -1 for p in partitions}
    table = DeltaTable(str(path))
    out = {}
    for p in partitions:
        version = table.transaction_version(app_id(job, topic, p, epoch))
        out[p] = -1 if version is None else int(version)
    return out


def stored_partitions(table: DeltaTable) -> list[int]:
    """Every partition number Bronze holds rows of (from the files' statistics)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return []
    if "max.partition" in actions.column_names:
        highest = pc.max(actions["max.partition"]).as_py()
    else:
        highest = pc.max(arrow(table, ["partition"])["partition"]).as_py()
    return list(range(int(highest) + 1)) if highest is not None else []


@dataclass
class BronzeStats:
    records: int = 0
    commits: int = 0
    elapsed: float = 0.0
    # Records in the log and not yet in Bronze, by partition, as of the newest commit
    # (from the high watermarks the fetches brought back: no extra request).
    lag: dict[int, int] = field(default_factory=dict)


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
        on_reset: OnReset = "fail",
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.table = table
        self.batch_size = batch_size
        self.connect_timeout = connect_timeout
        # A topic that does not exist is nothing to ingest (else a PipelineError).
        self.missing_ok = missing_ok
        # A topic that is not the log the stored offsets point into: fail, or read the
        # new topic from its start as a new epoch.
        self.on_reset = on_reset
        self.epoch = 0
        self._markers: list[Transaction] = []

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
                "logger": librdkafka_log,
                "group.id": f"flashsale-bronze-{self.topic}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                # Never jump silently: an offset out of range is an error (the stored
                # offsets are checked against the log before reading).
                "auto.offset.reset": "error",
            }
        )
        stats = BronzeStats()
        started = time.monotonic()
        try:
            partitions = self._partitions(consumer)
            if not partitions:
                return stats
            start = self._check_log(consumer, partitions)
            consumer.assign(
                [
                    TopicPartition(
                        self.topic, p, start[p] + 1 if start[p] >= 0 else OFFSET_BEGINNING
                    )
                    for p in partitions
                ]
            )
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
                                stats.lag[partition] = 0
                            continue
                        raise PipelineError(f"bronze: consuming {self.topic}: {error.str()}")
                    at_end.discard(m.partition())
                    rows.append(m)
                if rows:
                    self._commit(rows)
                    stats.records += len(rows)
                    stats.commits += 1
                    self._lag(consumer, rows, stats.lag)
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

    def _check_log(self, consumer: Consumer, partitions: list[int]) -> dict[int, int]:
        """The stored offsets to resume from, once the topic is known to be the log they
        point into (else :class:`TopicReset`, or a new epoch with ``on_reset="replay"``)."""
        exists = DeltaTable.is_deltatable(str(self.table))
        if exists:  # a Bronze written before epochs: its rows are epoch 0
            add_missing_columns(
                self.table, BRONZE_SCHEMA, BRONZE_FILL, partition_by=["ingest_date"]
            )
        table = DeltaTable(str(self.table)) if exists else None
        self.epoch = 0 if table is None else table.transaction_version(_epoch_id(self.topic)) or 0
        topic_id = self._topic_id()
        held = [] if table is None else stored_partitions(table)
        stored = committed_offsets(
            self.table, "bronze", self.topic, sorted({*partitions, *held}), self.epoch
        )
        problems: list[tuple[int, int, int | None, str]] = []  # partition, stored, end, why
        recorded = None if table is None else table.transaction_version(_identified_id(self.topic))
        if topic_id is not None and recorded == self.epoch and table is not None:
            seen = table.transaction_version(_topic_id_key(self.topic, topic_id))
            if seen != self.epoch:
                why = f"the topic was recreated (its topic id {topic_id} is not the one read)"
                problems = [  # the log end as a fetch sees it (ListOffsets may fall short)
                    (p, offset, self._fetched_end(p, offset, self._end(consumer, p)), why)
                    for p, offset in sorted(stored.items())
                    if offset >= 0 and p in partitions
                ] or [(min(partitions), -1, self._end(consumer, min(partitions)), why)]
        if not problems:
            for p, offset in sorted(stored.items()):
                if offset < 0:
                    continue
                if p not in partitions:
                    problems.append((p, offset, None, "the partition no longer exists"))
                    continue
                end = self._end(consumer, p, offset)
                if offset + 1 > end:
                    why = "the log ends before it (the topic was recreated, reset or truncated)"
                    problems.append((p, offset, end, why))
        self._markers = []
        if problems and self.on_reset == "fail":
            first = problems[0]
            raise TopicReset(self.topic, *first[:3], first[3], len(problems) - 1)
        if problems:  # replay: the new topic, from its start, as the next epoch
            self.epoch += 1
            log.warning(
                "bronze: %s: reading the topic again from its start as epoch %d",
                self.topic,
                self.epoch,
            )
            self._markers.append(Transaction(_epoch_id(self.topic), self.epoch))
            stored = {p: -1 for p in partitions}
        if topic_id is not None and (problems or recorded != self.epoch):
            self._markers += [
                Transaction(_topic_id_key(self.topic, topic_id), self.epoch),
                Transaction(_identified_id(self.topic), self.epoch),
            ]
        if self._markers and table is not None:
            # Recorded now, with no rows: a run that finds nothing new still keeps them.
            self._write(BRONZE_SCHEMA.empty_table(), self._markers)
            self._markers = []
        return {p: stored[p] for p in partitions}

    def _lag(self, consumer: Consumer, rows: list[Any], lag: dict[int, int]) -> None:
        """The lag of the partitions in ``rows`` once they are committed."""
        last = {m.partition(): m.offset() for m in rows}
        for partition, offset in last.items():
            tp = TopicPartition(self.topic, partition)
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                lag[partition] = max(0, int(high) - offset - 1)

    def _end(self, consumer: Consumer, partition: int, stored: int | None = None) -> int:
        """The partition's log end (high watermark), confirmed by a fetch when it says
        ``stored`` lies beyond it."""
        tp = TopicPartition(self.topic, partition)
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=self.connect_timeout)
        except KafkaException as exc:
            raise ServiceUnreachable(
                f"bronze: {self.topic} partition {partition}: no log end ({exc.args[0].str()})"
            ) from exc
        if stored is None or stored + 1 <= high:
            return int(high)
        return self._fetched_end(partition, stored, int(high))

    def _fetched_end(self, partition: int, stored: int, listed: int) -> int:
        """The log end as a fetch at ``stored`` sees it (``listed``: what ListOffsets said)."""
        probe = Consumer(
            {
                **self.kafka,
                "logger": librdkafka_log,
                "group.id": f"flashsale-bronze-{self.topic}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "error",
            }
        )
        tp = TopicPartition(self.topic, partition)
        try:
            probe.assign([TopicPartition(self.topic, partition, stored)])
            deadline = time.monotonic() + _CONFIRM_SECONDS
            while time.monotonic() < deadline:
                for m in probe.consume(1, 0.2):
                    offset = m.offset() or 0
                    if m.error() is None and offset >= stored:  # the log holds it
                        return max(listed, offset + 1, self._cached_end(probe, tp, listed))
                    if m.error() is not None:  # end of the log, or offset out of range
                        return self._cached_end(probe, tp, listed)
                _, high = probe.get_watermark_offsets(tp, cached=True)
                if 0 <= high <= stored:  # a fetch came back: the log ends before it
                    return int(high)
            return self._cached_end(probe, tp, listed)
        finally:
            probe.close()

    @staticmethod
    def _cached_end(probe: Consumer, tp: TopicPartition, listed: int) -> int:
        _, high = probe.get_watermark_offsets(tp, cached=True)
        return int(high) if high >= 0 else listed

    def _topic_id(self) -> str | None:
        """The topic's id (Kafka's topic UUID), or None when the broker gives none."""
        conf: dict[str, Any] = {**self.kafka, "logger": librdkafka_log}
        admin = AdminClient(conf)
        try:
            future = admin.describe_topics(
                TopicCollection([self.topic]), request_timeout=self.connect_timeout
            )[self.topic]
            uuid = getattr(future.result(self.connect_timeout), "topic_id", None)
        except KafkaException:
            return None
        text = str(uuid) if uuid is not None else ""
        return text if text.strip("A=") else None  # "AAAA...": the nil uuid, no id

    def _partitions(self, consumer: Consumer) -> list[int]:
        try:
            metadata = consumer.list_topics(self.topic, timeout=self.connect_timeout)
        except KafkaException as exc:
            raise ServiceUnreachable(
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
            ref, named_in = _writer_of(value, m.headers())
            columns["schema_id"].append(ref.schema_id if ref else None)
            columns["schema_guid"].append(ref.guid if ref else None)
            columns["schema_id_in"].append(named_in)
            kind, ts = m.timestamp()
            columns["kafka_timestamp"].append(ts if kind != 0 else None)
            columns["ingest_time"].append(now)
            columns["ingest_date"].append(now.date().isoformat())
            columns["topic_epoch"].append(self.epoch)
            last[m.partition()] = max(last.get(m.partition(), -1), m.offset())
        batch = pa.table(columns, schema=BRONZE_SCHEMA)
        transactions = [
            Transaction(app_id("bronze", self.topic, p, self.epoch), offset)
            for p, offset in sorted(last.items())
        ]
        self._write(batch, [*self._markers, *transactions])
        self._markers = []

    def _write(self, batch: pa.Table, transactions: list[Transaction]) -> None:
        write_deltalake(
            str(self.table),
            batch,
            mode="append",
            partition_by=["ingest_date"],
            commit_properties=CommitProperties(app_transactions=transactions),
        )


def _writer_of(value: bytes | None, headers: Any) -> tuple[WriterRef | None, str]:
    """The writer a record names and where: the ``__value_schema_id`` header (None
    when the header is unreadable: Silver says why), else the prefix (None when the
    value has none)."""
    try:
        ref = header_ref(headers)
    except WireFormatError:
        return None, "header"
    if ref is not None:
        return ref, "header"
    schema_id = schema_id_of(value)
    return (WriterRef(schema_id=schema_id) if schema_id is not None else None), "prefix"
