"""Data is never silently lost or stuck in the pipeline: a topic that came back empty or
was recreated, a stored offset past the log, a reader that cannot read a writer, and
quarantined records replayed once the reader is fixed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.bronze import BRONZE_SCHEMA, TopicReset, app_id
from consumers.gold import GOLD_TABLES
from consumers.pipeline import run_pipeline
from consumers.silver import CONTRACT
from devstack.stack import LocalStack, StackConfig, free_port
from producer.cli import main
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.errors import PortBusy, StackError
from producer.registry.client import Registry
from tests.integration.conftest import Endpoints, cli, config_for
from tests.integration.test_pipeline import fabricated, newest_records, produce, resend

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def bronze_rows(warehouse: Path) -> int:
    return (
        DeltaTable(str(warehouse / "bronze" / "events"))
        .to_pyarrow_table(columns=["offset"])
        .num_rows
    )


def log_ends(stack: Endpoints, topic: str) -> dict[int, int]:
    """Each partition's real log end: the offset after the last record a fetch returns."""
    consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": "ends"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(6)])
    ends: dict[int, int] = {}
    idle = time.monotonic()
    while time.monotonic() - idle < 3:
        for m in consumer.consume(5000, 0.5):
            if m.error() is None:
                ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
                idle = time.monotonic()
    consumer.close()
    return ends


def recreate(stack: Endpoints, topic: str, partitions: int = 6) -> None:
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    admin.delete_topics([topic], operation_timeout=10)[topic].result(15)
    deadline = time.monotonic() + 15
    while topic in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=10)[topic].result(15)


def kpis(warehouse: Path, *ledgers: Path) -> Result:
    """`flashsale kpis --verify-ledger ...`, in this process: delta-rs with pyarrow can
    abort a process as it exits after reading a table (delta-io/delta-rs#2184), which
    would make the exit code of a subprocess a coin toss."""
    flags = [a for p in ledgers for a in ("--verify-ledger", str(p))]
    return CliRunner().invoke(main, ["kpis", "--warehouse", str(warehouse), *flags])


def run(stack: Endpoints, warehouse: Path, topic: str, *extra: str) -> Any:
    return cli(stack, "pipeline", "run", "--until-idle", "--warehouse", str(warehouse),
               "--topic", topic, *extra)  # fmt: skip


def test_a_recreated_topic_with_more_records_is_refused_in_one_line(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    produce(stack, topic, tmp_path / "first.json", 30, switch=False)
    config = config_for(stack)
    run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    before = bronze_rows(warehouse)
    recreate(stack, topic)
    # More records than before: the stored offsets all lie inside the new log, so
    # only the topic's id tells that it is another log.
    produce(stack, topic, tmp_path / "second.json", 90, switch=False)
    ends = log_ends(stack, topic)
    assert sum(ends.values()) > before
    result = run(stack, warehouse, topic)
    assert result.returncode == 1, result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: bronze: topic {topic} partition ")
    assert ": the topic was recreated (its topic id " in line
    assert "nothing was read; to read it from its start, keeping the old rows: " in line
    assert line.endswith("flashsale pipeline run --on-reset replay")
    partition = int(line.split(" partition ")[1].split(":")[0])
    stored = int(line.split("stored offset ")[1].split(",")[0])
    assert f"log end {ends[partition]}" in line
    assert 0 <= stored < ends[partition]
    assert "bronze: 0 records" not in result.stdout
    assert bronze_rows(warehouse) == before  # nothing read, nothing skipped
    again = run(stack, warehouse, topic)  # refused until the user chooses
    assert again.returncode == 1 and again.stderr.splitlines() == [line]
    # The choice: read the new topic from its start, keeping the old rows.
    replayed = run(stack, warehouse, topic, "--on-reset", "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert f"bronze: {sum(ends.values())} records" in replayed.stdout
    assert_both_epochs_reconcile(stack, warehouse, tmp_path, before, sum(ends.values()), topic)


def assert_both_epochs_reconcile(
    stack: Endpoints, warehouse: Path, tmp_path: Path, before: int, after: int, topic: str
) -> None:
    """Bronze holds the old topic's rows (epoch 0) and the new one's (epoch 1), Gold
    equals both runs' ledgers (first.json, second.json) added up, and the next run goes
    on from where the replay stopped."""
    epochs = (
        DeltaTable(str(warehouse / "bronze" / "events"))
        .to_pyarrow_table(columns=["topic_epoch"])["topic_epoch"]
        .to_pylist()
    )
    assert (epochs.count(0), epochs.count(1), len(epochs)) == (before, after, before + after)
    ledgers = [tmp_path / "first.json", tmp_path / "second.json"]
    verified = kpis(warehouse, *ledgers)
    assert verified.exit_code == 0, verified.output
    total = sum(json.loads(p.read_text())["total_events"] for p in ledgers)
    assert f"{before + after} records in Bronze, {total} events in Silver, 0 duplicates " in (
        verified.stdout
    )
    assert ", 0 quarantined" in verified.stdout
    quiet = run(stack, warehouse, topic)  # the new epoch goes on as usual
    assert quiet.returncode == 0, quiet.stderr
    assert "bronze: 0 records" in quiet.stdout and "silver: 0 read" in quiet.stdout


def test_a_stored_offset_beyond_the_log_is_refused(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    produce(stack, topic, tmp_path / "ledger.json", 30, switch=False)
    config = config_for(stack)
    run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    # Nothing new, and a log whose end ListOffsets may under-report (Tansu does):
    # no false alarm.
    quiet = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert quiet.bronze.records == 0
    ends = log_ends(stack, topic)
    table = warehouse / "bronze" / "events"
    # Offsets stored past the end of partition 2's log (an offset reset on the broker).
    past = CommitProperties(
        app_transactions=[Transaction(app_id("bronze", topic, 2), ends[2] + 99)]
    )
    write_deltalake(str(table), BRONZE_SCHEMA.empty_table(), mode="append",
                    partition_by=["ingest_date"], commit_properties=past)  # fmt: skip
    with pytest.raises(TopicReset) as raised:
        run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert str(raised.value) == (
        f"bronze: topic {topic} partition 2: stored offset {ends[2] + 99}, log end {ends[2]}: "
        "the log ends before it (the topic was recreated, reset or truncated); nothing was read"
    )
    # A partition Bronze holds records of that the topic no longer has.
    gone = BRONZE_SCHEMA.empty_table().to_pylist()
    gone.append(
        {
            "topic": topic,
            "partition": 9,
            "offset": 0,
            "key": b"k",
            "value": b"v",
            "schema_id": None,
            "kafka_timestamp": None,
            "ingest_time": None,
            "ingest_date": "2026-01-01",
        }
    )
    commit = CommitProperties(
        app_transactions=[
            Transaction(app_id("bronze", topic, 2), ends[2] - 1),
            Transaction(app_id("bronze", topic, 9), 0),
        ]
    )
    write_deltalake(str(table), pa.Table.from_pylist(gone, schema=BRONZE_SCHEMA), mode="append",
                    partition_by=["ingest_date"], commit_properties=commit)  # fmt: skip
    result = run(stack, warehouse, topic)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: bronze: topic {topic} partition 9: stored offset 0, log end none (the "
        "partition is gone): the partition no longer exists; nothing was read; to read it "
        "from its start, keeping the old rows: flashsale pipeline run --on-reset replay"
    ]


def restart_broker(own: LocalStack) -> None:
    """Kill the stack's broker and start it again: memory storage, so every topic is gone."""
    broker = next(s for s in own.status() if s.name == "broker")
    assert broker.pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(broker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:  # the port is free a moment after the process is gone
        try:
            own.up()
            return
        except (PortBusy, StackError):  # a new broker that found the port still taken
            assert time.monotonic() < deadline
            time.sleep(0.5)


def test_a_broker_restarted_mid_life_is_never_skipped_silently(tmp_path: Path) -> None:
    own = LocalStack(
        StackConfig(data_dir=tmp_path / "stack", broker_port=free_port(), registry_port=free_port())
    )
    own.up()
    try:
        stack = Endpoints(own.config.bootstrap_servers, own.config.registry_url, local=True)
        topic, warehouse = "restarted", tmp_path / "warehouse"
        produce(stack, topic, tmp_path / "first.json", 60, switch=False)
        first = run(stack, warehouse, topic)
        assert first.returncode == 0, first.stderr
        before = bronze_rows(warehouse)
        restart_broker(own)
        produce(stack, topic, tmp_path / "second.json", 60, switch=False)
        after = json.loads((tmp_path / "second.json").read_text())["total_events"]
        assert after > 0
        refused = run(stack, warehouse, topic)
        assert refused.returncode == 1, refused.stdout
        (line,) = refused.stderr.splitlines()
        assert line.startswith("Error: bronze: topic ")  # the catalog topic or the events'
        assert "stored offset " in line and "log end " in line
        assert "bronze: 0 records" not in refused.stdout
        assert bronze_rows(warehouse) == before
        replayed = run(stack, warehouse, topic, "--on-reset", "replay")
        assert replayed.returncode == 0, replayed.stderr
        assert f"bronze: {after} records" in replayed.stdout
        assert_both_epochs_reconcile(stack, warehouse, tmp_path, before, after, topic)
    finally:
        own.down()


def strict_reader(tmp_path: Path) -> Path:
    """Silver's reader with a field added that has no default: it reads no writer."""
    definition = json.loads(CONTRACT.read_text())
    definition["fields"].append({"name": "loyalty_tier", "type": "string"})
    path = tmp_path / "strict.avsc"
    path.write_text(json.dumps(definition))
    return path


def test_a_reader_that_cannot_read_a_writer_is_refused_before_any_record_moves(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    produce(stack, topic, tmp_path / "first.json", 30, switch=False)
    config = config_for(stack)
    run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    events = warehouse / "silver" / "events"
    version = DeltaTable(str(events)).version()
    produce(stack, topic, tmp_path / "second.json", 60, switch_at=1)  # v1, then the newest
    v1 = load_catalog(bundled_schemas_dir()).get(1)
    found = Registry(config).lookup(f"{topic}-value", v1.text)
    assert found is not None
    v1_id, v1_version = found
    # --quiet: a slow machine would print Bronze's progress line to stderr too.
    strict = str(strict_reader(tmp_path))
    result = run(stack, warehouse, topic, "--reader-schema", strict, "--quiet")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: silver: reader schema strict.avsc cannot read writer id {v1_id} "
        f"({topic}-value v{v1_version}): field 'loyalty_tier' has no default and the writer "
        "lacks it; nothing was processed"
    ]
    # No record moved: Silver, its progress and the quarantine are as they were.
    assert DeltaTable(str(events)).version() == version
    assert not DeltaTable.is_deltatable(str(warehouse / "silver" / "quarantine"))
    # With the reader fixed, every record lands and Gold equals both ledgers.
    fixed = run(stack, warehouse, topic)
    assert fixed.returncode == 0, fixed.stderr
    assert "bronze: 0 records" in fixed.stdout  # Bronze had taken them in
    ledgers = [tmp_path / "first.json", tmp_path / "second.json"]
    verified = kpis(warehouse, *ledgers)
    assert verified.exit_code == 0, verified.output
    assert ", 0 quarantined" in verified.stdout


def test_a_quarantine_replayed_after_a_fix_reconciles(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    ledger, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger, 60, switch_at=1)
    duplicates = resend(stack, topic, 50)
    header, schema, written = newest_records(stack, topic)
    datum = written[0][1]
    forged = {**datum, "event_id": "forged-1", "event_type": "view", "quantity": 1}
    forged["revenue"] = Decimal("0.00")
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    for quantity in (1, 2):  # one id, two contents: a conflict
        producer.produce(topic, fabricated(header, forged, schema, quantity=quantity), b"k")
    assert producer.flush(10) == 0
    total = json.loads(ledger.read_text())["total_events"]
    # The wrong rule: the shop prices in USD, not EUR. Every event is quarantined.
    wrong = run(stack, warehouse, topic, "--currency", "EUR")
    assert wrong.returncode == 0, wrong.stderr
    assert f"{total + duplicates + 2} quarantined" in wrong.stdout
    stuck = kpis(warehouse, ledger)
    assert stuck.exit_code == 1
    # Refused for what is missing from Gold, each row named, and counted once at the end.
    named = [line for line in stuck.output.splitlines() if line.startswith("DIFFERENCE ")]
    assert any(line.endswith(" is in the ledger but not in Gold") for line in named), named
    assert stuck.output.splitlines()[-1] == f"Error: {len(named)} KPI differences from the ledger"

    replay = cli(stack, "pipeline", "replay-quarantine", "--warehouse", str(warehouse),
                 "--topic", topic, "--reason", "foreign currency")  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines()[0] == (
        f"replay: {total + duplicates + 2} quarantined records read, {total + duplicates} "
        f"released ({total} inserted, {duplicates} duplicates dropped), 2 still quarantined "
        "(conflict 2)"
    )
    verified = kpis(warehouse, ledger)
    assert verified.exit_code == 0, verified.output
    # The conflict stays quarantined, with the reason it fails for now.
    left = DeltaTable(str(warehouse / "silver" / "quarantine")).to_pyarrow_table().to_pylist()
    assert (
        sorted(r["reason"] for r in left)
        == ["conflict: event forged-1 has copies with other content"] * 2
    )
    rows = DeltaTable(str(warehouse / "silver" / "events")).to_pyarrow_table().to_pylist()
    assert len(rows) == total == len({r["event_id"] for r in rows})
    # Again: nothing more to release, nothing changes, Gold still reconciles.
    again = cli(stack, "pipeline", "replay-quarantine", "--warehouse", str(warehouse),
                "--topic", topic)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("replay: 2 quarantined records read, 0 released ")
    verified = kpis(warehouse, ledger)
    assert verified.exit_code == 0, verified.output
    # And the pipeline goes on from where it was: nothing read twice.
    after = run(stack, warehouse, topic)
    assert "silver: 0 read" in after.stdout, after.stdout


def test_each_run_says_whether_gold_was_computed_whole_updated_or_left_as_it_was(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    config = config_for(stack)

    def gold_line() -> str:
        steps: list[str] = []
        run_pipeline(config.kafka(), config.registry(), topic, warehouse, on_step=steps.append)
        (line,) = [s for s in steps if s.startswith("gold:")]
        return line

    tables = f"gold: {len(GOLD_TABLES)} KPI tables"
    produce(stack, topic, tmp_path / "first.json", 30, switch=False)
    assert gold_line() == f"{tables} computed whole (datafusion)"
    assert gold_line() == f"{tables}, unchanged (nothing new since they were computed)"
    produce(stack, topic, tmp_path / "second.json", 30, switch=False)  # another run id
    assert gold_line() == f"{tables} updated from what changed (datafusion)"
