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

A commit holds at most ``batch_size`` records (what a run keeps in memory), those read
within ``commit_seconds``, or what was read when every partition is at its end or the
run stops: few, large commits. The records of each read become Arrow columns at once.

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

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
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

from consumers.columnar import binary_buffers
from consumers.errors import PipelineError, ServiceUnreachable
from consumers.evolve import add_missing_columns, arrow
from consumers.wire import HEADER, MAGIC, WireFormatError, WriterRef, header_ref, schema_id_of

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
# Records a commit holds at most (``batch_size``), and how long a record read waits for
# its commit at most: a commit holds what was read in that time, up to the bound.
BATCH_ROWS = 50_000
COMMIT_SECONDS = 1.0
# Records per consume call, and how long one waits for them (a call waits for as many
# as it asks for, so a short wait keeps the loop turning at the log's end).
_CONSUME_ROWS = 10_000
_CONSUME_SECONDS = 0.1
# Fetching, unless the Kafka configuration says otherwise: a broker answers a fetch at
# the log's end within 100 ms (the default 500 ms delays the end-of-partition events
# that end a run), and a partition whose queue filled waits 10 ms, not 1 s, before its
# next fetch.
_FETCH = {"fetch.wait.max.ms": 100, "fetch.queue.backoff.ms": 10}
# The columns of a chunk of records as read; a commit adds ingest time, date and epoch.
_READ = pa.schema(
    [
        BRONZE_SCHEMA.field(n)
        for n in ("partition", "offset", "key", "value", "schema_id", "kafka_timestamp",
                  "schema_id_in", "schema_guid")
    ]
)  # fmt: skip
# The schema id of the 5-byte prefix (the magic byte skipped).
_INT32_MAX = 2**31 - 1


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
    """Kafka -> Delta, resuming from the offsets stored in the table.

    A commit holds at most ``batch_size`` records (what one run keeps in memory), and
    the records read in ``commit_seconds`` at most: it is made when either is reached,
    when every partition is at its end, and when the run stops."""

    def __init__(
        self,
        kafka: dict[str, Any],
        topic: str,
        table: Path,
        batch_size: int = BATCH_ROWS,
        connect_timeout: float = 10.0,
        missing_ok: bool = False,
        on_reset: OnReset = "fail",
        commit_seconds: float = COMMIT_SECONDS,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"bronze: batch_size must be at least 1, not {batch_size}")
        self.kafka = kafka
        self.topic = topic
        self.table = table
        self.batch_size = batch_size
        self.commit_seconds = commit_seconds
        self.connect_timeout = connect_timeout
        # A topic that does not exist is nothing to ingest (else a PipelineError).
        self.missing_ok = missing_ok
        # A topic that is not the log the stored offsets point into: fail, or read the
        # new topic from its start as a new epoch.
        self.on_reset = on_reset
        self.epoch = 0
        self._markers: list[Transaction] = []
        # The table, once it exists, kept open between commits (opening it again reads
        # its log again).
        self._delta: DeltaTable | None = None

    def run(
        self,
        until_idle: bool = True,
        idle_seconds: float = 2.0,
        on_commit: Callable[[BronzeStats], None] | None = None,
        stop: threading.Event | None = None,
    ) -> BronzeStats:
        """Ingest until idle (or forever), or until ``stop`` is set: then after the
        records in hand are committed, so nothing read is left out of Bronze."""
        consumer = Consumer(
            {
                **_FETCH,
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
        self._delta = None
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
            every = set(partitions)
            at_end: set[int] = set()
            idle_since = time.monotonic()
            held: list[pa.RecordBatch] = []  # read, not yet committed
            rows = 0
            first_read = 0.0

            def commit() -> None:
                nonlocal held, rows
                last = self._commit(held)
                stats.records += rows
                stats.commits += 1
                held, rows = [], 0
                self._lag(consumer, last, stats.lag)
                if on_commit is not None:
                    on_commit(stats)

            while stop is None or not stop.is_set():
                with _collector_paused():
                    messages = consumer.consume(
                        min(_CONSUME_ROWS, self.batch_size - rows), _CONSUME_SECONDS
                    )
                    chunk = self._read(messages, at_end, stats.lag)
                    del messages
                now = time.monotonic()
                if chunk is not None:
                    if not rows:
                        first_read = now
                    held.append(chunk)
                    rows += chunk.num_rows
                    idle_since = now
                caught_up = at_end >= every
                if rows and (
                    rows >= self.batch_size or caught_up or now - first_read >= self.commit_seconds
                ):
                    commit()
                if not rows and until_idle and (caught_up or now - idle_since >= idle_seconds):
                    break  # caught up: every partition is at its end
            if rows:  # stopped: what was read goes in
                commit()
        finally:
            consumer.close()
            self._delta = None
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

    def _lag(self, consumer: Consumer, last: dict[int, int], lag: dict[int, int]) -> None:
        """The lag of the partitions whose ``last`` offsets were just committed."""
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

    def _read(
        self, messages: list[Any], at_end: set[int], lag: dict[int, int]
    ) -> pa.RecordBatch | None:
        """The records among ``messages`` as columns (None: there are none); an
        end-of-partition event marks its partition at its end until a record of it
        follows, any other error is a PipelineError."""
        records = [m for m in messages if m.error() is None]
        if len(records) < len(messages):  # events among them: in order
            for m in messages:
                error = m.error()
                if error is None:
                    at_end.discard(m.partition())
                elif error.code() == KafkaError._PARTITION_EOF:
                    partition = m.partition()
                    if partition is not None:
                        at_end.add(partition)
                        lag[partition] = 0
                else:
                    raise PipelineError(f"bronze: consuming {self.topic}: {error.str()}")
        if not records:
            return None
        partitions = [m.partition() for m in records]
        if len(records) == len(messages):
            at_end.difference_update(partitions)
        values = [m.value() for m in records]
        stamps = [m.timestamp() for m in records]
        headers = [m.headers() for m in records]
        count = len(records)
        value_column = pa.array(values, pa.binary())
        if any(headers):  # some name their writer in a header
            writers = [_writer_of(v, h) for v, h in zip(values, headers, strict=True)]
            schema_id = pa.array(
                [_int32(r.schema_id) if r else None for r, _ in writers], pa.int32()
            )
            guid = pa.array([r.guid if r else None for r, _ in writers], pa.string())
            named_in = pa.array([n for _, n in writers], pa.string())
        else:  # the common case: all by the prefix
            schema_id = _prefix_ids(value_column)
            guid = pa.nulls(count, pa.string())
            named_in = pa.repeat(pa.scalar("prefix", pa.string()), count)
        return pa.RecordBatch.from_arrays(
            [
                pa.array(partitions, pa.int32()),
                pa.array([m.offset() for m in records], pa.int64()),
                pa.array([m.key() for m in records], pa.binary()),
                value_column,
                schema_id,
                pa.array(
                    [t if k != 0 else None for k, t in stamps],
                    BRONZE_SCHEMA.field("kafka_timestamp").type,
                ),
                named_in,
                guid,
            ],
            schema=_READ,
        )

    def _commit(self, chunks: list[pa.RecordBatch]) -> dict[int, int]:
        """Commit the records read (with their offsets); the last offset per partition."""
        now = datetime.now(UTC)
        read = pa.Table.from_batches(chunks, schema=_READ)
        count = read.num_rows
        constant = {
            "topic": pa.repeat(pa.scalar(self.topic, pa.string()), count),
            "ingest_time": pa.repeat(
                pa.scalar(now, BRONZE_SCHEMA.field("ingest_time").type), count
            ),
            "ingest_date": pa.repeat(pa.scalar(now.date().isoformat(), pa.string()), count),
            "topic_epoch": pa.repeat(pa.scalar(self.epoch, pa.int32()), count),
        }
        batch = pa.Table.from_arrays(
            [constant[n] if n in constant else read[n] for n in BRONZE_SCHEMA.names],
            schema=BRONZE_SCHEMA,
        )
        highest = read.group_by("partition").aggregate([("offset", "max")])
        last = dict(
            zip(highest["partition"].to_pylist(), highest["offset_max"].to_pylist(), strict=True)
        )
        transactions = [
            Transaction(app_id("bronze", self.topic, p, self.epoch), offset)
            for p, offset in sorted(last.items())
        ]
        self._write(batch, [*self._markers, *transactions])
        self._markers = []
        return last

    def _write(self, batch: pa.Table, transactions: list[Transaction]) -> None:
        if self._delta is None and DeltaTable.is_deltatable(str(self.table)):
            self._delta = DeltaTable(str(self.table))
        write_deltalake(
            self._delta if self._delta is not None else str(self.table),
            batch,
            mode="append",
            partition_by=["ingest_date"],
            commit_properties=CommitProperties(app_transactions=transactions),
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (if it runs) for the duration: a read
    makes tens of thousands of objects (messages, their bytes, the lists of them) that
    form no cycles and are freed as soon as their columns are built, and collections
    triggered by them, each going over every object of the process, cost as much as
    the read itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _prefix_ids(values: pa.Array) -> pa.Array:
    """The schema id of each value's 5-byte prefix (null: it has none), as
    :func:`~consumers.wire.schema_id_of` reads it, read for every value at once. An id
    beyond 32 bits signed, which no registry gives, is null too (Silver quarantines
    the record, naming the id it reads)."""
    starts, ends, data = binary_buffers(values)
    padded = np.concatenate([data, np.zeros(HEADER, np.uint8)])
    framed = values.is_valid().to_numpy(zero_copy_only=False) & (ends - starts >= HEADER)
    framed &= padded[starts] == MAGIC
    ids = np.zeros(len(values), np.int64)
    for k in range(1, HEADER):
        ids = (ids << 8) | padded[starts + k]
    framed &= ids <= _INT32_MAX
    return pa.array(np.where(framed, ids, 0).astype(np.int32), pa.int32(), mask=~framed)


def _int32(schema_id: int | None) -> int | None:
    """A schema id, or None when it is beyond 32 bits signed (see :func:`_prefix_ids`)."""
    return schema_id if schema_id is not None and schema_id <= _INT32_MAX else None


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
