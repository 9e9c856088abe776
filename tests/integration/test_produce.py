"""The main job on the real stack: produce, consume back, reconcile, stop cleanly."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from devstack.stack import LocalStack, StackConfig, free_port
from producer.config import load_client_config
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.events import FlashSaleEvent, products_topic
from producer.kafka.catalog import product_records
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario
from tests.integration.conftest import Endpoints, cli, config_for, own_registry, stack_env
from tests.unit.simulation.test_ledger import recount

pytestmark = pytest.mark.integration


def registered(stack: Endpoints, topic: str) -> None:
    register_contract(Registry(config_for(stack)), load_catalog(bundled_schemas_dir()), topic=topic)


def read_all(stack: Endpoints, topic: str, expected: int, timeout: float = 60) -> list[Any]:
    """Every message of the topic, by assignment from offset 0 (no group join to wait for)."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap_servers,
            "group.id": f"read-{topic}",
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        batch = [m for m in consumer.consume(10_000, 0.5) if m.error() is None]
        messages += batch
        if batch:
            idle_since = time.monotonic()
        elif len(messages) >= expected and time.monotonic() - idle_since > 1.0:
            break
    consumer.close()
    return messages


def decode_all(stack: Endpoints, messages: list[Any]) -> list[dict[str, Any]]:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    deserializer = AvroDeserializer(SchemaRegistryClient({"url": stack.registry_url}))
    return [deserializer(m.value(), None) for m in messages]


def test_produce_then_consume_everything_back(stack: Endpoints, topic: str, tmp_path: Path) -> None:
    registered(stack, topic)
    ledger_path = tmp_path / "ledger.json"
    result = cli(
        stack,
        "produce",
        "--scenario",
        "flash-sale",
        "--seed",
        "3",
        "--events",
        "5000",
        "--max-rate",
        "--topic",
        topic,
        "--create-topic",
        "--ledger",
        str(ledger_path),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "acknowledged      5000" in result.stdout

    messages = read_all(stack, topic, 5000)
    assert len(messages) == 5000
    schema_id = Registry(config_for(stack)).lookup(
        f"{topic}-value", load_catalog(bundled_schemas_dir()).latest().text
    )
    assert schema_id is not None
    for m in messages:
        magic, wire_id = struct.unpack(">bI", m.value()[:5])
        assert (magic, wire_id) == (0, schema_id[0])

    decoded = [FlashSaleEvent.from_avro(d) for d in decode_all(stack, messages)]
    run_id = json.loads(ledger_path.read_text())["run_id"]
    assert f"run id            {run_id}" in result.stdout
    simulation = Simulation(load_scenario("flash-sale"), 3, run_id=run_id)
    expected = list(simulation.events(max_events=5000))
    assert len({e.event_id for e in decoded}) == 5000
    assert sorted(decoded) == sorted(expected)

    # One user's events keep their order: per partition, offsets follow event order.
    by_user: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for m, e in zip(messages, decoded, strict=True):
        by_user[e.user_id].append((m.partition(), m.offset(), int(e.event_id[-12:], 16)))
    for rows in by_user.values():
        assert len({p for p, _, _ in rows}) == 1
        in_offset_order = [seq for _, _, seq in sorted(rows)]
        assert in_offset_order == sorted(in_offset_order)

    # The ledger is exactly a recount of what a consumer reads.
    ledger = json.loads(ledger_path.read_text())
    recounted = recount(decode_all(stack, messages))
    assert ledger["complete"] is True
    for key in ("total_events", "total_revenue", "by_minute", "by_category", "by_product"):
        assert ledger[key] == recounted[key], key


@pytest.mark.slow
def test_sigterm_mid_run_flushes_and_the_ledger_matches_the_topic(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    registered(stack, topic)
    ledger_path = tmp_path / "ledger.json"
    env = stack_env(stack)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer.cli",
            "produce",
            "--scenario",
            "flash-sale",
            "--speed",
            "20",
            "--duration",
            "30m",
            "--topic",
            topic,
            "--create-topic",
            "--ledger",
            str(ledger_path),
            "--quiet",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(8)  # long enough to be mid-run (the surge), far from the end
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=90)
    assert "interrupted" in stdout, stdout + stderr
    assert process.returncode == 0, stderr  # nothing was lost: every sent record was acked
    ledger = json.loads(ledger_path.read_text())
    assert ledger["complete"] is False
    assert ledger["total_events"] > 0
    messages = read_all(stack, topic, ledger["total_events"])
    recounted = recount(decode_all(stack, messages))
    assert recounted["total_events"] == ledger["total_events"]
    assert recounted["total_revenue"] == ledger["total_revenue"]
    assert recounted["by_minute"] == ledger["by_minute"]


def test_consume_with_reader_schemas_across_versions(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    registered(stack, topic)
    for version in ("1", "2"):
        result = cli(
            stack,
            "produce",
            "--events",
            "20",
            "--max-rate",
            "--schema-version",
            version,
            "--seed",
            version,
            "--topic",
            topic,
            "--create-topic",
            "--quiet",
        )
        assert result.returncode == 0, result.stderr

    def read_as(version: int, *extra: str) -> subprocess.CompletedProcess[str]:
        reader = bundled_schemas_dir() / f"flash_sale_event-v{version}.avsc"
        return cli(stack, "consume", "--topic", topic, "--from-beginning", "--max", "40",
                   "--reader-schema", str(reader), *extra)  # fmt: skip

    as_v1, as_v2 = read_as(1, "--show-schema-id"), read_as(2)
    assert as_v1.returncode == 0 and as_v2.returncode == 0, as_v1.stderr + as_v2.stderr
    v1_rows = [json.loads(line) for line in as_v1.stdout.splitlines()]
    v2_rows = [json.loads(line) for line in as_v2.stdout.splitlines()]
    assert len(v1_rows) == len(v2_rows) == 40
    assert len({r["_schema_id"] for r in v1_rows}) == 2  # both writer versions are there
    for row in v1_rows:
        assert "session_id" not in row and "device" not in row
    by_id = {r["event_id"]: r for r in v2_rows}
    old = [by_id[r["event_id"]] for r in v1_rows if r["event_id"] in by_id]
    assert len(old) == 40
    written_by_v1 = [r for r in v2_rows if r["session_id"] is None]
    assert len(written_by_v1) == 20
    for row in written_by_v1:  # v1 data read as v2: the defaults
        assert (row["currency"], row["device"], row["discount_pct"]) == ("USD", "unknown", 0)
    for row in v1_rows:
        assert row["price"] == by_id[row["event_id"]]["price"]


def test_unregistered_schema_missing_topic_and_dry_run(stack: Endpoints, topic: str) -> None:
    result = cli(stack, "produce", "--events", "5", "--topic", topic, "--create-topic")
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: flash_sale_event-v3.avsc (v3) is not registered under {topic}-value at "
        f"{stack.registry_url}; run: flashsale schemas register --topic {topic}\n"
    )
    registered(stack, topic)
    missing = cli(stack, "produce", "--events", "5", "--topic", topic)
    assert missing.returncode == 2
    assert missing.stderr == (
        f"Error: topic {topic} does not exist on {stack.bootstrap_servers}; "
        "create it, or add --create-topic\n"
    )
    dry = cli(stack, "produce", "--events", "2", "--topic", topic, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1] == (
        "dry run: serialized with the registered schema, sent nothing"
    )


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_broker_is_one_line_naming_the_configured_bound(
    stack: Endpoints, topic: str
) -> None:
    result = cli(
        stack,
        "produce",
        "--events",
        "5",
        "--topic",
        topic,
        "--connect-timeout",
        "2",
        "--bootstrap-servers",
        f"127.0.0.1:{closed_port()}",
    )
    assert result.returncode == 3
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Error: cannot reach Kafka at 127.0.0.1:")
    assert "within 2s" in result.stderr  # the configured bound, named in the one line


def test_an_unreachable_registry_is_one_line_naming_it(stack: Endpoints, topic: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = cli(
        stack,
        "produce",
        "--events",
        "5",
        "--topic",
        topic,
        "--create-topic",
        "--connect-timeout",
        "2",
        "--schema-registry-url",
        url,
    )
    assert result.returncode == 3
    assert result.stderr == f"Error: cannot reach the Schema Registry at {url}: ConnectError\n"


def test_library_run_reports_every_record(stack: Endpoints, topic: str) -> None:
    registered(stack, topic)
    config = config_for(stack)
    stream = StreamProducer(
        config,
        load_catalog(bundled_schemas_dir()),
        load_scenario("default"),
        9,
        ProduceOptions(topic=topic, max_events=3000, speed=None, create_topic=True),
    )
    stream.preflight()
    thresholds = gc.get_threshold()
    result = stream.run()
    assert (result.sent, result.acked, result.failed, result.unconfirmed) == (3000, 3000, 0, 0)
    assert result.ok and result.percentile(0.5) is not None
    # The run tunes the garbage collector for itself only.
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0


def test_consume_with_an_unreachable_registry_is_one_line(stack: Endpoints, topic: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = cli(
        stack,
        "consume",
        "--topic",
        topic,
        "--max",
        "1",
        "--connect-timeout",
        "2",
        "--schema-registry-url",
        url,
    )
    assert result.returncode == 3
    assert result.stderr == f"Error: cannot reach the Schema Registry at {url}: ConnectError\n"


def test_a_registry_outage_after_the_first_record_does_not_fail_an_acknowledged_run(
    stack: Endpoints, topic: str
) -> None:
    # The records carry the ids the encoders resolved: once the first record of each
    # version is written, the run needs the registry no more, not even for its summary.
    with own_registry() as (url, registry_process):
        config = load_client_config(
            {"bootstrap.servers": stack.bootstrap_servers, "schema.registry.url": url},
            environ={},
        )
        catalog = load_catalog(bundled_schemas_dir())
        steps = register_contract(Registry(config), catalog, topic=topic)
        ids = {s.version: s.schema_id for s in steps if s.family == "flash_sale_event"}
        options = ProduceOptions(
            topic=topic,
            duration=240,
            speed=None,
            create_topic=True,
            switch_at=0.001,  # v1 writes the first record, v3 the rest
            switch_version=3,
        )
        scenario = load_scenario("flash-sale").with_overrides(schema_version=1)
        stream = StreamProducer(config, catalog, scenario, 3, options)
        stream.preflight()

        def stop_the_registry(progress: Any) -> None:
            if registry_process.poll() is None:  # 256 records in: both versions written
                registry_process.kill()
                registry_process.wait()
                stream.registry.client.clear_caches()  # its answers are gone with it

        result = stream.run(on_progress=stop_the_registry, progress_every=0.0)
        assert registry_process.returncode is not None
    assert result.ok and result.acked == result.sent > 1000
    assert (result.schema_id, result.switched_schema_id) == (ids[1], ids[3])


def test_event_time_is_now_when_paced_and_the_record_timestamp_can_be_it(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    registered(stack, topic)
    live = tmp_path / "live.json"
    started = time.time()
    result = cli(stack, "produce", "--speed", "30", "--duration", "3s", "--topic", topic,
                 "--create-topic", "--ledger", str(live), "--quiet")  # fmt: skip
    assert result.returncode == 0, result.stderr
    ledger = json.loads(live.read_text())
    start = datetime.fromisoformat(ledger["start"].replace("Z", "+00:00")).timestamp()
    assert started - 2 <= start <= time.time()  # the wall clock, not the scenario's date
    fixed = tmp_path / "fixed.json"
    result = cli(stack, "produce", "--max-rate", "--events", "300", "--start",
                 "2030-01-01T00:00:00Z", "--timestamp", "event", "--topic", topic, "--ledger",
                 str(fixed), "--quiet")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(fixed.read_text())["start"] == "2030-01-01T00:00:00Z"
    messages = read_all(stack, topic, ledger["total_events"] + 300)
    future = [
        (m.timestamp()[1], FlashSaleEvent.from_avro(d).timestamp_ms)
        for m, d in zip(messages, decode_all(stack, messages), strict=True)
        if d["timestamp"].year == 2030
    ]
    assert len(future) == 300
    assert all(kafka_ms == event_ms for kafka_ms, event_ms in future)


@pytest.mark.slow
def test_deliveries_that_fail_are_counted_and_kept_out_of_the_ledger(tmp_path: Path) -> None:
    # A broker of the test's own dies mid-run: what it had acknowledged is in the
    # ledger, what it never will be counts as failed (or unconfirmed), and the run is
    # not ok. Nothing is counted twice or lost from the tally.
    own = LocalStack(
        StackConfig(data_dir=tmp_path / "stack", broker_port=free_port(), registry_port=free_port())
    )
    own.up()
    try:
        config = load_client_config(
            {
                "bootstrap.servers": own.config.bootstrap_servers,
                "schema.registry.url": own.config.registry_url,
                "message.timeout.ms": "1500",
            },
            environ={},
        )
        catalog = load_catalog(bundled_schemas_dir())
        register_contract(Registry(config), catalog, topic="dies")
        ledger_path = tmp_path / "ledger.json"
        options = ProduceOptions(topic="dies", duration=40, speed=10.0, create_topic=True,
                                 ledger_path=ledger_path, flush_timeout=10)  # fmt: skip
        stream = StreamProducer(config, catalog, load_scenario("default"), 2, options)
        stream.preflight()
        (broker, _) = own.status()
        assert broker.pid is not None

        def kill_the_broker(progress: Any) -> None:
            if progress.acked > 0 and broker.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(broker.pid, signal.SIGKILL)

        result = stream.run(on_progress=kill_the_broker, progress_every=0.2)
    finally:
        own.down()
    assert result.acked > 0 and result.failed > 0
    assert not result.ok
    assert result.acked + result.failed + result.unconfirmed == result.sent
    assert sum(result.errors.values()) == result.failed
    ledger = json.loads(ledger_path.read_text())
    assert ledger["complete"] is False
    assert ledger["total_events"] == result.acked


@pytest.mark.slow
def test_the_cli_exits_1_naming_what_a_dead_broker_never_acknowledged(tmp_path: Path) -> None:
    # The command a user runs, against a broker of the test's own that dies once the
    # topic holds records: exit 1, the tally adds up, one error line, an incomplete
    # ledger of only what was acknowledged.
    own = LocalStack(
        StackConfig(data_dir=tmp_path / "stack", broker_port=free_port(), registry_port=free_port())
    )
    own.up()
    ledger_path = tmp_path / "ledger.json"
    env = {
        **os.environ,
        "FLASHSALE_BOOTSTRAP_SERVERS": own.config.bootstrap_servers,
        "FLASHSALE_SCHEMA_REGISTRY_URL": own.config.registry_url,
    }
    try:
        register_contract(Registry(load_client_config(
            {"bootstrap.servers": own.config.bootstrap_servers,
             "schema.registry.url": own.config.registry_url}, environ={},
        )), load_catalog(bundled_schemas_dir()), topic="dies")  # fmt: skip
        run = subprocess.Popen(
            [sys.executable, "-m", "producer.cli", "produce", "--topic", "dies",
             "--create-topic", "--speed", "10", "--duration", "40s", "--ledger",
             str(ledger_path), "--quiet", "-X", "message.timeout.ms=1500"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        consumer = Consumer({"bootstrap.servers": own.config.bootstrap_servers, "group.id": "w"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and run.poll() is None:
            with contextlib.suppress(Exception):
                partitions = consumer.list_topics("dies", timeout=2).topics["dies"].partitions
                if any(
                    consumer.get_watermark_offsets(TopicPartition("dies", p), timeout=2)[1] > 0
                    for p in partitions
                ):
                    break
            time.sleep(0.2)
        consumer.close()
        (broker, _) = own.status()
        assert broker.pid is not None and run.poll() is None
        os.kill(broker.pid, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        own.down()
    assert run.returncode == 1, stderr
    rows = dict(line.split(None, 1) for line in stdout.splitlines() if line.strip())
    sent, acked = int(rows["sent"]), int(rows["acknowledged"])
    failed, unconfirmed = int(rows["failed"].split()[0]), int(rows["unconfirmed"])
    assert acked > 0 and failed > 0
    assert acked + failed + unconfirmed == sent
    assert stderr.splitlines()[-1] == (
        f"Error: {failed + unconfirmed} of {sent} records were not acknowledged"
    )
    ledger = json.loads(ledger_path.read_text())
    assert ledger["complete"] is False and ledger["total_events"] == acked


def test_the_catalog_is_published_compacted_before_the_events_and_alike_in_every_run(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource

    registered(stack, topic)
    catalog_topic = products_topic(topic)
    for seed in (1, 2):
        result = cli(stack, "produce", "--scenario", "flash-sale", "--seed", str(seed),
                     "--events", "300", "--max-rate", "--topic", topic, "--create-topic",
                     "--quiet")  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"catalog           200 products -> {catalog_topic}" in result.stdout
    products = read_all(stack, catalog_topic, 400)
    assert len(products) == 400
    first, second = products[:200], products[200:]
    # The shop's catalog, whatever the run's seed: the same keys and bytes each time.
    assert [(m.key(), m.value()) for m in first] == [(m.key(), m.value()) for m in second]
    expected = product_records(Simulation(load_scenario("flash-sale"), 5))
    assert [m.key().decode() for m in first] == [r["product_id"] for r in expected]
    assert decode_all(stack, first) == expected
    # Each run's catalog was acknowledged before its first event was sent.
    events = read_all(stack, topic, 600)
    first_event = min(m.timestamp()[1] for m in events if m.timestamp()[1] >= 0)
    assert max(m.timestamp()[1] for m in first) <= first_event
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    (described,) = admin.describe_configs([ConfigResource("topic", catalog_topic)]).values()
    assert described.result(10)["cleanup.policy"].value == "compact"

    skipped = cli(stack, "produce", "--events", "10", "--max-rate", "--topic", topic,
                  "--no-catalog", "--quiet")  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    assert "catalog           not published" in skipped.stdout
    assert len(read_all(stack, catalog_topic, 400, timeout=5)) == 400
