"""Bronze gathers what it reads into commits bounded by records and by time, on a real
broker: every commit carries exactly the offsets of the rows it holds, a stop commits
the records in hand, and each row keeps what its record carried, whichever way the
record names its writer."""

from __future__ import annotations

import math
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from consumers.bronze import _CONSUME_ROWS, BronzeIngest, app_id
from consumers.evolve import arrow
from tests.integration.conftest import Endpoints

PARTITIONS = 3
# Long enough that no run in these tests is cut by it.
NEVER = 600.0


def kafka(stack: Endpoints) -> dict[str, Any]:
    return {"bootstrap.servers": stack.bootstrap_servers, "session.timeout.ms": 6000}


def create(stack: Endpoints, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)


def fill(stack: Endpoints, topic: str, count: int) -> None:
    """``count`` prefix-framed records, spread over the topic's partitions."""
    create(stack, topic)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})
    for i in range(count):
        while True:
            try:
                producer.produce(topic, b"\x00\x00\x00\x00\x01" + str(i).encode(),
                                 key=str(i).encode(), partition=i % PARTITIONS)  # fmt: skip
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def per_version(table: Path, topic: str) -> list[tuple[int, dict[int, int], dict[int, int | None]]]:
    """For each version of the table: the rows it added, the highest offset per
    partition of all rows up to it, and the offsets its application transactions say."""
    out: list[tuple[int, dict[int, int], dict[int, int | None]]] = []
    before = 0
    for version in range(DeltaTable(str(table)).version() + 1):
        at = DeltaTable(str(table), version=version)
        rows = arrow(at, ["partition", "offset"])
        highest: dict[int, int] = {}
        for p, o in zip(rows["partition"].to_pylist(), rows["offset"].to_pylist(), strict=True):
            highest[p] = max(highest.get(p, -1), o)
        stored = {p: at.transaction_version(app_id("bronze", topic, p)) for p in range(PARTITIONS)}
        out.append((rows.num_rows - before, highest, stored))
        before = rows.num_rows
    return out


def assert_every_row_once(table: Path, count: int) -> None:
    rows = arrow(DeltaTable(str(table)), ["partition", "offset"])
    per_partition: dict[int, list[int]] = {}
    for p, o in zip(rows["partition"].to_pylist(), rows["offset"].to_pylist(), strict=True):
        per_partition.setdefault(p, []).append(o)
    assert rows.num_rows == count
    for offsets in per_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))  # gap-free, no duplicate


def test_a_commit_holds_at_most_batch_size_records_with_exactly_their_offsets(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    fill(stack, topic, 7000)
    table = tmp_path / "bronze"
    stats = BronzeIngest(kafka(stack), topic, table, batch_size=2000, commit_seconds=NEVER).run()
    assert (stats.records, stats.commits) == (7000, 4)
    versions = per_version(table, topic)
    assert [added for added, _, _ in versions] == [2000, 2000, 2000, 1000]
    for _, highest, stored in versions:  # the offsets committed are the rows' own
        assert stored == {p: highest.get(p) for p in range(PARTITIONS)}
    assert_every_row_once(table, 7000)


def test_records_of_many_reads_are_committed_together(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    count = 3 * _CONSUME_ROWS  # more than one read can bring
    fill(stack, topic, count)
    table = tmp_path / "bronze"
    stats = BronzeIngest(kafka(stack), topic, table, commit_seconds=NEVER).run()
    assert (stats.records, stats.commits) == (count, 1)
    assert_every_row_once(table, count)


def test_records_wait_for_their_commit_at_most_commit_seconds(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    count = 3 * _CONSUME_ROWS
    fill(stack, topic, count)
    table = tmp_path / "bronze"
    seen: list[int] = []
    stats = BronzeIngest(kafka(stack), topic, table, commit_seconds=0.0).run(
        on_commit=lambda s: seen.append(s.records)
    )
    # Committed as soon as read: one commit per read at least.
    assert stats.commits >= math.ceil(count / _CONSUME_ROWS)
    assert stats.records == count
    assert seen == sorted(seen) and seen[-1] == count and len(seen) == stats.commits
    for _, highest, stored in per_version(table, topic):
        assert stored == {p: highest.get(p) for p in range(PARTITIONS)}
    assert_every_row_once(table, count)


class StopAfter(threading.Event):
    """Set from the ``checks``-th time it is asked."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0 or super().is_set()


def test_a_stop_commits_the_records_in_hand_and_the_next_run_resumes_after_them(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    count = 10 * _CONSUME_ROWS
    fill(stack, topic, count)
    table = tmp_path / "bronze"
    # Neither bound is reached: only the stop commits what the reads brought.
    ingest = BronzeIngest(kafka(stack), topic, table, batch_size=10 * count, commit_seconds=NEVER)
    first = ingest.run(until_idle=False, stop=StopAfter(8))
    assert first.commits == 1
    assert 0 < first.records < count
    assert arrow(DeltaTable(str(table)), ["offset"]).num_rows == first.records
    rest = BronzeIngest(kafka(stack), topic, table).run()
    assert first.records + rest.records == count
    assert_every_row_once(table, count)


GUID = uuid.UUID("0c1e5a2b-6f70-4d5e-8a9b-0123456789ab")
# (value, headers, what Bronze keeps: schema_id, schema_id_in, schema_guid)
PREFIXED: list[tuple[bytes | None, list[tuple[str, bytes]] | None, tuple[Any, ...]]] = [
    (b"\x00\x00\x00\x00\x07body", None, (7, "prefix", None)),
    (b"\x00\x7f\xff\xff\xff", None, (2**31 - 1, "prefix", None)),  # only the prefix
    (b"\x00\x80\x00\x00\x00body", None, (None, "prefix", None)),  # an id beyond int32
    (b"\x00\x00\x00\x01", None, (None, "prefix", None)),  # shorter than the prefix
    (b"\x01\x00\x00\x00\x07body", None, (None, "prefix", None)),  # not magic byte 0
    (b"", None, (None, "prefix", None)),
    (None, None, (None, "prefix", None)),  # a tombstone
]
HEADERS: list[tuple[bytes | None, list[tuple[str, bytes]] | None, tuple[Any, ...]]] = [
    (b"body", [("__value_schema_id", b"\x01" + GUID.bytes)], (None, "header", str(GUID))),
    (b"body", [("__value_schema_id", b"\x00\x00\x00\x00\x09")], (9, "header", None)),
    (b"body", [("__value_schema_id", b"\x00\xff\xff\xff\xff")], (None, "header", None)),
    (b"\x00\x00\x00\x00\x07", [("other", b"x"), ("__value_schema_id", b"\x02")],
     (None, "header", None)),  # unreadable: Silver says why
    (b"\x00\x00\x00\x00\x07body", [("other", b"x")], (7, "prefix", None)),
]  # fmt: skip


@pytest.mark.parametrize("records", [PREFIXED, PREFIXED + HEADERS], ids=["prefix", "mixed"])
def test_each_row_keeps_what_its_record_carried(
    stack: Endpoints, topic: str, tmp_path: Path, records: list[Any]
) -> None:
    create(stack, topic, partitions=1)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    stamp = 1_795_000_000_000
    for i, (value, headers, _) in enumerate(records):
        key = None if i % 2 else f"k{i}".encode()
        producer.produce(topic, value, key=key, headers=headers, timestamp=stamp + i)
    assert producer.flush(30) == 0
    table = tmp_path / "bronze"
    before = datetime.now(UTC)
    stats = BronzeIngest(kafka(stack), topic, table).run(idle_seconds=1.0)
    after = datetime.now(UTC)
    assert (stats.records, stats.commits) == (len(records), 1)
    rows = arrow(DeltaTable(str(table))).sort_by("offset").to_pylist()
    assert [
        (r["topic"], r["partition"], r["offset"], r["key"], r["value"],
         r["schema_id"], r["schema_id_in"], r["schema_guid"], r["topic_epoch"])
        for r in rows
    ] == [
        (topic, 0, i, None if i % 2 else f"k{i}".encode(), value, *kept, 0)
        for i, (value, _, kept) in enumerate(records)
    ]  # fmt: skip
    assert [r["kafka_timestamp"] for r in rows] == [
        datetime.fromtimestamp((stamp + i) / 1000, UTC) for i in range(len(records))
    ]
    (ingested,) = {r["ingest_time"] for r in rows}  # one per commit
    assert before <= ingested <= after
    assert {r["ingest_date"] for r in rows} == {ingested.date().isoformat()}
