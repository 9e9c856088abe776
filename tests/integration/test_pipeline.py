"""The reference pipeline on the real stack: exactly-once Bronze, Silver rules, Gold = ledger."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from deltalake import DeltaTable

from consumers.bronze import BronzeIngest
from consumers.gold import compute_kpis, read_gold, silver_version, write_gold
from consumers.pipeline import run_pipeline
from consumers.products import ProductDimension
from consumers.reconcile import merge_ledgers, reconcile
from consumers.silver import SilverJob
from producer.config import load_client_config
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.events import products_topic
from producer.kafka.catalog import product_records
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario
from tests.integration.conftest import Endpoints, cli, config_for, own_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

V1_READER = bundled_schemas_dir() / "flash_sale_event-v1.avsc"


def produce(
    stack: Endpoints,
    topic: str,
    ledger: Path,
    seconds: float,
    switch: bool = True,
    switch_at: float | None = None,
) -> None:
    """A flash sale written with schema v1, switching to the newest version mid-run."""
    config = config_for(stack)
    catalog = load_catalog(bundled_schemas_dir())
    register_contract(Registry(config), catalog, topic=topic)
    stream = StreamProducer(
        config,
        catalog,
        load_scenario("flash-sale").with_overrides(schema_version=1),
        17,
        ProduceOptions(
            topic=topic,
            duration=seconds,
            speed=None,
            create_topic=True,
            ledger_path=ledger,
            switch_at=(switch_at or seconds / 2) if switch else None,
            switch_version=catalog.latest().version if switch else None,
        ),
    )
    stream.preflight()
    assert stream.run().ok


def resend(stack: Endpoints, topic: str, count: int) -> int:
    """Re-send ``count`` records as they are (a producer retry gone wrong): duplicates."""
    consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": "dup"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    messages = [m for m in consumer.consume(count, 10) if m.error() is None][:count]
    consumer.close()
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    for m in messages:
        producer.produce(topic, m.value(), m.key(), partition=m.partition())
    assert producer.flush(10) == 0
    return len(messages)


def gold_differences(warehouse: Path, *ledgers: dict[str, Any]) -> list[str]:
    """What the Gold tables, as they stand, say differently from the ledgers."""
    return reconcile(merge_ledgers(ledgers), read_gold(warehouse)[0])


def silver_rows(warehouse: Path) -> list[dict[str, Any]]:
    return DeltaTable(str(warehouse / "silver" / "events")).to_pyarrow_table().to_pylist()


def test_gold_equals_the_ledger_with_evolution_and_duplicates(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    ledger_path, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger_path, 300)
    duplicates = resend(stack, topic, 500)
    assert duplicates == 500
    config = config_for(stack)
    result = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    ledger = json.loads(ledger_path.read_text())
    assert result.bronze.records == ledger["total_events"] + duplicates
    assert result.silver.duplicates == duplicates
    assert result.silver.quarantined == 0
    assert gold_differences(warehouse, ledger) == []

    rows = silver_rows(warehouse)
    assert len(rows) == ledger["total_events"] == len({r["event_id"] for r in rows})
    # Silver keeps when Kafka got each record and when Bronze took it in: lateness.
    assert all(r["kafka_timestamp"] <= r["ingest_time"] for r in rows)
    by_writer: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_writer.setdefault(r["writer_schema_id"], []).append(r)
    assert len(by_writer) == 2  # the v1 writer and the newest both made it
    v1_rows = min(by_writer.values(), key=lambda rs: min(r["event_time"] for r in rs))
    for r in v1_rows:  # v1 data read with the newest reader: the defaults
        defaults = (None, None, "USD", "unknown", 0, None)
        assert (
            r["session_id"], r["sale_id"], r["currency"], r["device"], r["discount_pct"],
            r["stock_remaining"],
        ) == defaults  # fmt: skip
    newest_rows = [r for rs in by_writer.values() if rs is not v1_rows for r in rs]
    assert all(r["stock_remaining"] is not None for r in newest_rows)

    # A second run finds nothing new and changes nothing.
    again = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert (again.bronze.records, again.silver.read) == (0, 0)
    assert gold_differences(warehouse, ledger) == []


def test_gold_sql_gives_identical_results_on_both_engines(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    produce(stack, topic, tmp_path / "ledger.json", 420, switch_at=60)
    config = config_for(stack)
    run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    datafusion = compute_kpis(warehouse, "datafusion")
    duckdb = compute_kpis(warehouse, "duckdb")
    assert (
        set(datafusion)
        == set(duckdb)
        == {
            "funnel_per_category",
            "funnel_per_minute",
            "product_funnel",
            "product_sales",
            "quality_per_minute",
            "revenue_per_minute",
            "sell_out_times",
            "session_funnel",
            "sold_out",
            "spikes",
            "stock_tracking",
        }
    )
    for name in datafusion:
        assert datafusion[name].schema == duckdb[name].schema, name
        left, right = datafusion[name].to_pylist(), duckdb[name].to_pylist()
        assert len(left) == len(right) > 0, name
        assert left == right, name
    spikes = [r for r in datafusion["spikes"].to_pylist() if r["is_spike"]]
    assert [r["minute"].strftime("%H:%M") for r in spikes][:1] == ["09:00"]  # the surge


CORRUPT = {
    "bad magic byte": b"\x07\x00\x00\x00\x01hello",
    "unknown schema id": b"\x00\x7f\xff\xff\xf0" + b"\x02\x04ab",
    "an id beyond 32 bits": b"\x00\xff\xff\xff\xf0" + b"\x02\x04ab",
    "too short": b"\x00\x00",
}


def test_corrupt_records_go_to_quarantine_and_the_pipeline_goes_on(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    ledger_path, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger_path, 150, switch=False)
    # A truncated body: a real record cut short.
    consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": "cut"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    real = next(m for m in consumer.consume(10, 10) if m.error() is None)
    consumer.close()
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    for value in [*CORRUPT.values(), real.value()[:20]]:
        producer.produce(topic, value, b"k", partition=1)
    assert producer.flush(10) == 0
    config = config_for(stack)
    result = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert result.silver.quarantined == 5
    assert gold_differences(warehouse, json.loads(ledger_path.read_text())) == []
    quarantine = DeltaTable(str(warehouse / "silver" / "quarantine")).to_pyarrow_table()
    reasons = sorted(quarantine["reason"].to_pylist())
    assert reasons[:2] == [
        "bad header: bad magic byte 7 (expected 0)",
        "bad header: value of 2 bytes is shorter than the 5-byte header",
    ]
    assert reasons[2].startswith("undecodable body: ")
    assert reasons[3].startswith("unknown schema id: 2147483632 (")
    # An id no registry gives (beyond 32 bits signed): Bronze keeps no id for it.
    assert reasons[4].startswith("unknown schema id: 4294967280 (")
    by_value = {r["raw_value"]: r for r in quarantine.to_pylist()}
    unknown, beyond = (
        by_value[CORRUPT["unknown schema id"]],
        by_value[CORRUPT["an id beyond 32 bits"]],
    )
    assert unknown["reason"].startswith("unknown schema id: 2147483632 (")
    assert unknown["writer_schema_id"] == 2147483632
    assert beyond["reason"].startswith("unknown schema id: 4294967280 (")
    assert beyond["writer_schema_id"] is None
    cut = by_value[real.value()[:20]]
    assert cut["reason"].startswith("undecodable body: ")
    assert all(r["kafka_partition"] == 1 and r["kafka_offset"] >= 0 for r in quarantine.to_pylist())


def test_silver_adds_new_reader_columns_with_their_defaults(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    produce(stack, topic, tmp_path / "ledger.json", 130, switch=False)
    config = config_for(stack)
    BronzeIngest(config.kafka(), topic, warehouse / "bronze" / "events").run()
    first = SilverJob(warehouse, config.registry(), topic, V1_READER).run()
    assert first.inserted > 0
    columns = DeltaTable(str(warehouse / "silver" / "events")).schema().to_arrow().names
    assert "session_id" not in columns and "device" not in columns
    produce(stack, topic, tmp_path / "more.json", 140, switch=False)  # v1 again, more rows
    BronzeIngest(config.kafka(), topic, warehouse / "bronze" / "events").run()
    second = SilverJob(warehouse, config.registry(), topic).run()  # the newest reader
    rows = silver_rows(warehouse)
    assert {"session_id", "device", "currency"} <= set(rows[0])
    assert {(r["currency"], r["device"], r["discount_pct"]) for r in rows} == {
        ("USD", "unknown", 0)
    }
    assert len(rows) == first.inserted + second.inserted
    assert len({r["event_id"] for r in rows}) == len(rows)  # one row per event, not a copy


BRONZE_SCRIPT = """
import sys
from pathlib import Path
from consumers.bronze import BronzeIngest
BronzeIngest({"bootstrap.servers": sys.argv[1]}, sys.argv[2], Path(sys.argv[3]),
             batch_size=int(sys.argv[4])).run(until_idle=True)
"""


def test_a_killed_bronze_consumer_resumes_without_loss_or_duplicates(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    ledger_path, table = tmp_path / "ledger.json", tmp_path / "bronze"
    produce(stack, topic, ledger_path, 240, switch=False)
    total = json.loads(ledger_path.read_text())["total_events"]
    args = [sys.executable, "-c", BRONZE_SCRIPT, stack.bootstrap_servers, topic, str(table)]
    for kill_after in (1.5, 2.5):  # kill -9 mid-ingest, twice
        process = subprocess.Popen([*args, "200"], env=os.environ.copy())
        deadline = time.monotonic() + 60
        while not DeltaTable.is_deltatable(str(table)) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait()
    rows_before = DeltaTable(str(table)).to_pyarrow_table(columns=["offset"]).num_rows
    assert 0 < rows_before < total  # the kills did land mid-run
    subprocess.run([*args, "5000"], check=True, timeout=120)
    bronze = DeltaTable(str(table)).to_pyarrow_table(columns=["partition", "offset"])
    coordinates = list(
        zip(bronze["partition"].to_pylist(), bronze["offset"].to_pylist(), strict=True)
    )
    assert len(coordinates) == total
    assert len(set(coordinates)) == total
    per_partition: dict[int, list[int]] = {}
    for p, o in coordinates:
        per_partition.setdefault(p, []).append(o)
    for offsets in per_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))  # gap-free from 0


def test_a_damaged_warehouse_is_one_line(stack: Endpoints, topic: str, tmp_path: Path) -> None:

    produce(stack, topic, tmp_path / "ledger.json", 30, switch=False)
    warehouse = tmp_path / "warehouse"
    log = warehouse / "bronze" / "events" / "_delta_log"
    log.mkdir(parents=True)
    (log / "00000000000000000000.json").write_text("this is not a delta log\n")
    result = cli(stack, "pipeline", "run", "--until-idle", "--warehouse", str(warehouse),
                 "--topic", topic)  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"Error: pipeline: warehouse {warehouse}: ")


def produce_run(
    stack: Endpoints, topic: str, ledger: Path, scenario: str, seed: int, run_id: str | None
) -> dict[str, Any]:
    """One run into the topic (150 simulated seconds, unpaced: the surge too); its ledger."""
    config = config_for(stack)
    catalog = load_catalog(bundled_schemas_dir())
    options = ProduceOptions(topic=topic, duration=150, speed=None, create_topic=True,
                             ledger_path=ledger, run_id=run_id)  # fmt: skip
    stream = StreamProducer(config, catalog, load_scenario(scenario), seed, options)
    stream.preflight()
    assert stream.run().ok
    return dict(json.loads(ledger.read_text()))


def test_many_runs_into_one_topic_keep_their_identity(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    # Two seeds of one flash sale, a replay of the first run, another scenario: each
    # run's events are its own, the replay is nothing but duplicates, and no
    # legitimate event is quarantined.
    register_contract(Registry(config_for(stack)), load_catalog(bundled_schemas_dir()), topic=topic)
    a = produce_run(stack, topic, tmp_path / "a.json", "flash-sale", 1, None)
    b = produce_run(stack, topic, tmp_path / "b.json", "flash-sale", 2, None)
    replay = produce_run(stack, topic, tmp_path / "replay.json", "flash-sale", 1, a["run_id"])
    c = produce_run(stack, topic, tmp_path / "c.json", "default", 1, None)
    assert len({a["run_id"], b["run_id"], c["run_id"]}) == 3
    assert replay["run_id"] == a["run_id"] and replay["total_events"] == a["total_events"]

    config = config_for(stack)
    warehouse = tmp_path / "warehouse"
    result = run_pipeline(
        config.kafka(), config.registry(), topic, warehouse, products_topic=products_topic(topic)
    )
    # Both shops' catalogs, published once per run, are one dimension: the newest
    # record of each product, which every run published alike.
    catalog = table_rows(warehouse / "silver" / "products")
    expected = [
        *product_records(Simulation(load_scenario("default"), 1)),
        *product_records(Simulation(load_scenario("flash-sale"), 9)),
    ]
    assert sorted(
        ({k: r[k] for k in expected[0]} for r in catalog), key=lambda r: r["product_id"]
    ) == sorted(expected, key=lambda r: r["product_id"])
    runs = a["total_events"] + b["total_events"] + c["total_events"]
    assert result.bronze.records == runs + replay["total_events"]
    assert result.silver.quarantined == 0, result.silver.reasons
    assert result.silver.inserted == runs
    assert result.silver.duplicates == replay["total_events"]
    rows = silver_rows(tmp_path / "warehouse")
    assert len({r["event_id"] for r in rows}) == len(rows) == runs
    # Gold, as it stands, equals the runs' ledgers added up; the replay counts once.
    ledgers = [tmp_path / f"{name}.json" for name in ("a", "b", "replay", "c")]
    flags = [arg for path in ledgers for arg in ("--verify-ledger", str(path))]
    verified = cli(stack, "kpis", "--warehouse", str(tmp_path / "warehouse"), *flags)
    assert verified.returncode == 0, verified.stderr
    assert f"({runs} events from 3 runs, " in verified.stdout
    quality = f"{runs + replay['total_events']} records in Bronze, {runs} events in Silver, "
    assert (
        quality + f"{replay['total_events']} duplicates dropped, 0 quarantined" in verified.stdout
    )


def test_silver_saves_its_progress_when_a_run_inserts_nothing(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    ledger_path, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger_path, 30, switch=False)
    config = config_for(stack)
    run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    resent = resend(stack, topic, 100)  # nothing but duplicates
    only_duplicates = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert (only_duplicates.silver.read, only_duplicates.silver.inserted) == (resent, 0)
    assert only_duplicates.silver.duplicates == resent
    again = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert (again.bronze.records, again.silver.read, again.silver.duplicates) == (0, 0, 0)
    assert gold_differences(warehouse, json.loads(ledger_path.read_text())) == []


def test_a_lower_copy_arriving_later_replaces_the_row_silver_kept(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    # Silver keeps the copy at the lowest coordinates: a duplicate written later to a
    # lower partition replaces the row an earlier run kept, in place. One row per
    # distinct event id still: an append instead of the MERGE would hold both.
    ledger_path, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger_path, 30, switch=False)
    config = config_for(stack)
    run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    kept = {r["event_id"]: r for r in silver_rows(warehouse)}
    moved = [r for r in kept.values() if r["kafka_partition"] > 0][:10]
    consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": "lower"})
    messages = {}
    for row in moved:
        consumer.assign([TopicPartition(topic, row["kafka_partition"], row["kafka_offset"])])
        messages[row["event_id"]] = next(m for m in consumer.consume(1, 10) if m.error() is None)
    consumer.close()
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    for m in messages.values():
        producer.produce(topic, m.value(), m.key(), partition=0)
    assert producer.flush(10) == 0
    second = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert (second.silver.read, second.silver.inserted) == (len(moved), 0)
    rows = silver_rows(warehouse)
    assert len({r["event_id"] for r in rows}) == len(rows) == len(kept)
    now = {r["event_id"]: r for r in rows}
    assert {now[e]["kafka_partition"] for e in messages} == {0}
    ledger = json.loads(ledger_path.read_text())
    assert gold_differences(warehouse, ledger) == []


def test_money_in_a_currency_the_shop_does_not_price_in_is_quarantined(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    ledger_path, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger_path, 150, switch_at=1)  # v3 from the second second on
    header, schema, written = newest_records(stack, topic)
    datum = next(d for _, d in written if d["event_type"] == "purchase")
    body = io.BytesIO()
    euros = {**datum, "event_id": "eur-purchase-1", "currency": "EUR"}
    fastavro.schemaless_writer(body, schema, euros)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    producer.produce(topic, header + body.getvalue(), b"k")
    assert producer.flush(10) == 0

    config = config_for(stack)
    result = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert result.silver.quarantined == 1
    (row,) = DeltaTable(str(warehouse / "silver" / "quarantine")).to_pyarrow_table().to_pylist()
    assert row["reason"] == "foreign currency: EUR (the shop prices in USD)"
    assert "eur-purchase-1" not in {r["event_id"] for r in silver_rows(warehouse)}
    assert gold_differences(warehouse, json.loads(ledger_path.read_text())) == []


def table_rows(path: Path, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A table's rows in Kafka order (partition, offset), without the columns ``drop``."""
    if not DeltaTable.is_deltatable(str(path)):
        return []
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    keyed = [{k: v for k, v in r.items() if k not in drop} for r in rows]
    return sorted(keyed, key=lambda r: (r["kafka_partition"], r["kafka_offset"]))


def newest_records(stack: Endpoints, topic: str) -> tuple[bytes, Any, list[tuple[Any, Any]]]:
    """The wire header of the newest schema version, that schema, and the topic's
    records written with it (message, decoded datum)."""
    newest = load_catalog(bundled_schemas_dir()).latest()
    found = Registry(config_for(stack)).lookup(f"{topic}-value", newest.text)
    assert found is not None
    header = b"\x00" + found[0].to_bytes(4, "big")
    consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": "newest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(6)])
    messages = [m for m in consumer.consume(5000, 10) if m.error() is None]
    consumer.close()
    written = [
        (m, fastavro.schemaless_reader(io.BytesIO(m.value()[5:]), newest.parsed))
        for m in messages
        if m.value()[:5] == header
    ]
    assert written
    return header, newest.parsed, written


def fabricated(header: bytes, datum: dict[str, Any], schema: Any, **change: Any) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, {**datum, **change})
    return header + body.getvalue()


@pytest.mark.parametrize("split_seed", [1, 2])
def test_silver_is_decided_by_the_records_not_the_order_they_came_in(
    stack: Endpoints, topic: str, tmp_path: Path, split_seed: int
) -> None:
    # Duplicates, a conflict (one id, two contents, one copy arriving late), a bad
    # record, events that relabel a product, name one the catalog lacks or charge in
    # another currency: a rebuild and incremental runs cut at random give the same
    # Silver, quarantine and Gold.
    # (The seed of the cuts is the parameter: rerun with it.)
    ledger_path = tmp_path / "ledger.json"
    produce(stack, topic, ledger_path, 90, switch_at=1)
    header, schema, written = newest_records(stack, topic)
    datum = written[0][1]
    forged = {**datum, "event_id": "forged-1", "event_type": "view", "quantity": 1}
    forged["revenue"] = Decimal("0.00")
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    producer.produce(topic, fabricated(header, forged, schema), b"k", partition=0)
    for m, _ in written[:40]:  # exact duplicates, in another partition
        producer.produce(topic, m.value(), m.key(), partition=(m.partition() + 1) % 6)
    producer.produce(topic, b"\x07junk", b"k", partition=2)
    # A genuine product relabelled, given another brand, one the shop never listed, and
    # a price in euros: the catalog says what a product is, whichever of its events
    # came first.
    for i, change in enumerate(
        (
            {"category": "garden"},
            {"brand": "Knockoff"},
            {"product_id": "999999"},
            {"currency": "EUR"},  # money the shop does not price in
        ),
        start=2,
    ):
        fake = {**forged, "event_id": f"forged-{i}", **change}
        producer.produce(topic, fabricated(header, fake, schema), b"k", partition=i % 6)
    assert producer.flush(10) == 0
    config = config_for(stack)
    catalog_topic = products_topic(topic)
    BronzeIngest(config.kafka(), catalog_topic, tmp_path / "bronze-products").run(until_idle=True)
    # The conflicting copy of forged-1 arrives after everything else.
    BronzeIngest(config.kafka(), topic, tmp_path / "bronze").run(until_idle=True)
    producer.produce(topic, fabricated(header, forged, schema, quantity=2), b"k",
                     partition=5)  # fmt: skip
    assert producer.flush(10) == 0
    BronzeIngest(config.kafka(), topic, tmp_path / "bronze").run(until_idle=True)

    def warehouse_with_bronze(name: str) -> Path:
        path = tmp_path / name
        shutil.copytree(tmp_path / "bronze", path / "bronze" / "events")
        shutil.copytree(tmp_path / "bronze-products", path / "bronze" / "products")
        assert ProductDimension(path, config.registry(), catalog_topic).run().products == 200
        return path

    rebuild = warehouse_with_bronze("rebuild")
    whole = SilverJob(rebuild, config.registry(), topic).run()
    assert whole.reasons == {
        "conflict": 2,
        "bad header": 1,
        "unknown product": 3,
        "foreign currency": 1,
    }
    assert whole.duplicates == 40
    incremental = warehouse_with_bronze("incremental")
    cuts, most = random.Random(split_seed), max(2, whole.read // 4)
    runs = 0
    while SilverJob(incremental, config.registry(), topic).run(cuts.randint(1, most)).read:
        runs += 1
    assert runs >= 4
    # One run reading Bronze in small batches, each committed on its own: duplicates
    # and conflicts fall across batches.
    batched = warehouse_with_bronze("batched")
    in_batches = SilverJob(batched, config.registry(), topic).run(batch_rows=cuts.randint(5, 40))
    assert in_batches.batches >= 4
    assert (in_batches.read, in_batches.duplicates, in_batches.reasons) == (
        whole.read,
        whole.duplicates,
        whole.reasons,
    )

    for name in ("events", "quarantine", "copies"):
        drop = ("quarantined_at",) if name == "quarantine" else ()
        expected = table_rows(rebuild / "silver" / name, drop)
        assert expected == table_rows(incremental / "silver" / name, drop), name
        assert expected == table_rows(batched / "silver" / name, drop), name
    quarantined = table_rows(rebuild / "silver" / "quarantine")
    conflict = [r for r in quarantined if r["reason"].startswith("conflict")]
    assert [r["reason"] for r in conflict] == [
        "conflict: event forged-1 has copies with other content"
    ] * 2
    assert "forged-1" not in {r["event_id"] for r in silver_rows(rebuild)}
    product, category, brand = datum["product_id"], datum["category"], datum["brand"]
    assert sorted(r["reason"] for r in quarantined if "product" in r["reason"]) == sorted(
        [
            "unknown product: 999999 is not in the catalog",
            f"unknown product: {product} has brand {brand} in the catalog, not Knockoff",
            f"unknown product: {product} has category {category} in the catalog, not garden",
        ]
    )
    for path in (rebuild, incremental, batched):
        events = silver_rows(path)  # one row per distinct event, however the runs were cut
        assert len({r["event_id"] for r in events}) == len(events)
        version = silver_version(path)
        write_gold(path, compute_kpis(path, "datafusion", version), version)
        assert gold_differences(path, json.loads(ledger_path.read_text())) == []


def test_the_catalog_topic_is_folded_as_compaction_would(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    ledger_path, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger_path, 20, switch=False)
    config, catalog_topic = config_for(stack), products_topic(topic)
    run_pipeline(config.kafka(), config.registry(), topic, warehouse, products_topic=catalog_topic)
    assert gold_differences(warehouse, json.loads(ledger_path.read_text())) == []
    listed = {r["product_id"]: r for r in table_rows(warehouse / "silver" / "products")}
    assert len(listed) == 200
    # One product withdrawn (a tombstone), one relaunched under another brand, one junk record.
    sold = {r["product_id"] for r in read_gold(warehouse)[0]["product_sales"].to_pylist()}
    gone, relaunched = sorted(set(listed) - sold)[0], sorted(sold)[0]
    consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": "catalog"})
    consumer.assign([TopicPartition(catalog_topic, 0, 0)])
    records = {m.key().decode(): m.value() for m in consumer.consume(200, 10) if m.error() is None}
    consumer.close()
    schema = load_catalog(bundled_schemas_dir()).latest("flash_sale_product").parsed
    datum = fastavro.schemaless_reader(io.BytesIO(records[relaunched][5:]), schema)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    producer.produce(catalog_topic, None, gone.encode())
    producer.produce(catalog_topic, fabricated(records[relaunched][:5], datum, schema,
                                               brand="Relaunch"), relaunched.encode())  # fmt: skip
    producer.produce(catalog_topic, b"\x09junk", b"x")
    assert producer.flush(10) == 0

    run_pipeline(config.kafka(), config.registry(), topic, warehouse, products_topic=catalog_topic)
    after = {r["product_id"]: r for r in table_rows(warehouse / "silver" / "products")}
    assert set(after) == set(listed) - {gone}
    assert after[relaunched]["brand"] == "Relaunch"
    assert all(after[p] == listed[p] for p in after if p != relaunched)
    (bad,) = table_rows(warehouse / "silver" / "quarantine")
    assert bad["reason"] == "bad product: bad header: bad magic byte 9 (expected 0)"
    gold = {r["product_id"]: r for r in read_gold(warehouse)[0]["product_sales"].to_pylist()}
    assert gold[relaunched]["brand"] == "Relaunch"


def test_a_registry_outage_while_silver_decodes_quarantines_nothing(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    # The writer schemas cannot be fetched: that says nothing about the records, so
    # none is quarantined and nothing is committed past Bronze; one line, exit 3
    # (unreachable: try again later).
    warehouse = tmp_path / "warehouse"
    with own_registry() as (url, registry):
        config = load_client_config(
            {"bootstrap.servers": stack.bootstrap_servers, "schema.registry.url": url},
            environ={},
        )
        catalog = load_catalog(bundled_schemas_dir())
        register_contract(Registry(config), catalog, topic=topic)
        options = ProduceOptions(topic=topic, max_events=500, speed=None, create_topic=True)
        stream = StreamProducer(config, catalog, load_scenario("flash-sale"), 4, options)
        stream.preflight()
        assert stream.run().ok
        registry.kill()
        registry.wait(timeout=10)
        result = subprocess.run(
            [sys.executable, "-m", "producer.cli", "pipeline", "run", "--until-idle",
             "--warehouse", str(warehouse), "--topic", topic,
             "--bootstrap-servers", stack.bootstrap_servers, "--schema-registry-url", url],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "Schema Registry cannot be reached" in line and "Traceback" not in result.stderr
    # The catalog comes first: its records are in Bronze, and the run stopped there.
    bronze = DeltaTable(str(warehouse / "bronze" / "products")).to_pyarrow_table()
    assert bronze.num_rows == 200
    assert len(DeltaTable(str(warehouse / "silver" / "products")).to_pyarrow_table()) == 0
    assert not DeltaTable.is_deltatable(str(warehouse / "silver" / "events"))
    assert not DeltaTable.is_deltatable(str(warehouse / "silver" / "quarantine"))


def rewrite_mixed(stack: Endpoints, source: str, target: str) -> int:
    """Copy ``source`` (and its products topic) into ``target``, every other event
    record in the header wire format (the bare body, the schema GUID in the
    ``__value_schema_id`` header), as a producer switching serializers would leave a
    topic; the number of header-framed records."""
    import uuid

    import requests
    from confluent_kafka.admin import AdminClient, NewTopic

    from consumers.wire import split

    guids: dict[int, bytes] = {}
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    pairs = [(source, target), (products_topic(source), products_topic(target))]
    sizes = admin.list_topics(timeout=10).topics
    created = admin.create_topics([NewTopic(t, len(sizes[s].partitions), 1) for s, t in pairs])
    for future in created.values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    headers_written = 0
    for from_topic, to_topic in pairs:
        consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": "mix",
                             "enable.auto.commit": False})  # fmt: skip
        ends = {}
        for p in sizes[from_topic].partitions:
            ends[p] = consumer.get_watermark_offsets(TopicPartition(from_topic, p), 10)[1]
        consumer.assign([TopicPartition(from_topic, p, 0) for p in ends])
        seen = {p: 0 for p in ends}
        while any(seen[p] < ends[p] for p in ends):
            for m in consumer.consume(500, 5):
                assert m.error() is None
                seen[m.partition()] = m.offset() + 1
                value, headers = m.value(), m.headers() or []
                if from_topic == source and m.offset() % 2 == 1:
                    schema_id, value = split(value)
                    if schema_id not in guids:
                        answer = requests.get(f"{stack.registry_url}/schemas/ids/{schema_id}")
                        guids[schema_id] = uuid.UUID(answer.json()["guid"]).bytes
                    headers = [*headers, ("__value_schema_id", b"\x01" + guids[schema_id])]
                    headers_written += 1
                producer.produce(to_topic, value, m.key(), partition=m.partition(),
                                 headers=headers or None)  # fmt: skip
        consumer.close()
    assert producer.flush(30) == 0
    return headers_written


def test_a_topic_of_both_wire_formats_reconciles(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    ledger_path, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger_path, 30)
    mixed = f"{topic}-mixed"
    in_header = rewrite_mixed(stack, topic, mixed)
    config = config_for(stack)
    result = run_pipeline(config.kafka(), config.registry(), mixed, warehouse)
    ledger = json.loads(ledger_path.read_text())
    assert 0 < in_header < ledger["total_events"]
    assert result.bronze.records == ledger["total_events"]
    assert result.silver.quarantined == 0
    assert gold_differences(warehouse, ledger) == []
    bronze = DeltaTable(str(warehouse / "bronze" / "events")).to_pyarrow_table().to_pylist()
    framed = [r for r in bronze if r["topic"] == mixed]
    assert sum(r["schema_id_in"] == "header" and r["schema_guid"] is not None
               for r in framed) == in_header  # fmt: skip
    assert len(silver_rows(warehouse)) == ledger["total_events"]


def header_copies(stack: Endpoints, topic: str) -> list[tuple[Any, bytes, Any]]:
    """Every record of ``topic`` in the header wire format, as Confluent's header
    serializer writes the same content: (the message, its bare body, its headers with
    the writer's GUID in ``__value_schema_id``)."""
    import uuid

    import requests

    from consumers.wire import split

    consumer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": "hdr"})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    seen, out, guids = {p: 0 for p in ends}, [], {}
    while any(seen[p] < ends[p] for p in ends):
        for m in consumer.consume(500, 5):
            assert m.error() is None
            seen[m.partition()] = m.offset() + 1
            schema_id, body = split(m.value())
            if schema_id not in guids:
                answer = requests.get(f"{stack.registry_url}/schemas/ids/{schema_id}", timeout=5)
                guids[schema_id] = uuid.UUID(answer.json()["guid"]).bytes
            out.append((m, body, [("__value_schema_id", b"\x01" + guids[schema_id])]))
    consumer.close()
    return out


def test_one_event_written_in_each_wire_format_is_a_duplicate_not_a_conflict(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    # Every event is written twice into one topic, once with the schema id in the
    # prefix and once with the GUID in the header (the same writer, the same body):
    # Silver keeps one row per event and counts the second copies as duplicates. A
    # different body under one event id is a conflict in either framing.
    ledger_path, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produce(stack, topic, ledger_path, 30)  # v1, then the newest version: two writers
    copies = header_copies(stack, topic)
    header, schema, written = newest_records(stack, topic)
    newest_guid = next(h for m, _, h in copies if m.value()[:5] == header)
    datum = written[0][1]
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    for m, body, headers in copies:  # the second copy of each, in another partition
        producer.produce(topic, body, m.key(), partition=(m.partition() + 1) % 6,
                         headers=headers)  # fmt: skip
    view = {**datum, "event_type": "view", "quantity": 1, "revenue": Decimal("0.00")}
    prefixed = fabricated(header, {**view, "event_id": "forged-prefix"}, schema)
    producer.produce(topic, prefixed, b"k", partition=0)
    # forged-prefix: a prefix copy and a header copy of another body
    other = fabricated(b"", {**view, "event_id": "forged-prefix"}, schema, quantity=2)
    producer.produce(topic, other, b"k", partition=1, headers=newest_guid)
    # forged-header: two header copies of two bodies
    for quantity in (1, 3):
        body = fabricated(b"", {**view, "event_id": "forged-header"}, schema, quantity=quantity)
        producer.produce(topic, body, b"k", partition=2, headers=newest_guid)
    assert producer.flush(30) == 0

    config = config_for(stack)
    result = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    ledger = json.loads(ledger_path.read_text())
    events = ledger["total_events"]
    assert len(copies) == events > 0
    assert result.bronze.records == 2 * events + 4
    assert result.silver.reasons == {"conflict": 4}
    assert result.silver.duplicates == events
    silver = silver_rows(warehouse)
    assert len(silver) == len({r["event_id"] for r in silver}) == events
    assert {"forged-prefix", "forged-header"}.isdisjoint(r["event_id"] for r in silver)
    quarantined = table_rows(warehouse / "silver" / "quarantine")
    assert sorted(r["reason"] for r in quarantined) == sorted(
        [f"conflict: event forged-{f} has copies with other content" for f in ("prefix", "header")]
        * 2
    )
    # each event's two copies, one per framing, have one fingerprint, the prefix one
    bronze = DeltaTable(str(warehouse / "bronze" / "events")).to_pyarrow_table().to_pylist()
    framing = {(r["partition"], r["offset"]): r["schema_id_in"] for r in bronze}
    by_event: dict[str, list[tuple[str, str]]] = {}
    for r in table_rows(warehouse / "silver" / "copies"):
        at = (r["kafka_partition"], r["kafka_offset"])
        by_event.setdefault(r["event_id"], []).append((framing[at], r["fingerprint"]))
    for event_id, found in by_event.items():
        if event_id.startswith("forged-"):
            continue
        assert sorted(f for f, _ in found) == ["header", "prefix"], event_id
        assert len({fp for _, fp in found}) == 1, event_id
    assert gold_differences(warehouse, ledger) == []
