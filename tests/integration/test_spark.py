"""The Spark path on a local Spark: the Gold SQL and the job's connector-free functions.

What needs a connector jar from Maven (the Kafka source, ``from_avro``, Delta reads and
writes) is not run here. Everything else of ``consumers/spark_job.py`` is, on static
DataFrames and on the Silver a real run of the embedded pipeline wrote, and is checked
against the embedded pipeline's own code. One SparkSession (``local[1]``) serves the
module. Skipped, saying why, without Java or the ``spark`` extra.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from confluent_kafka.schema_registry.common.serde import SchemaId
from deltalake import CommitProperties, DeltaTable, write_deltalake
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from consumers import wire
from consumers.decode import Rejected
from consumers.gold import GOLD_TABLES, SILVER_VERSION, compute_kpis
from consumers.identity import Copy
from consumers.identity import Identity as EmbeddedIdentity
from consumers.pipeline import run_pipeline
from consumers.quality import QUALITY_PER_MINUTE
from consumers.quality import fill_minutes as embedded_fill_minutes
from consumers.quality import quality_per_minute as embedded_quality_per_minute
from consumers.silver import SilverJob
from producer.cli import main
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.events import products_topic
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.scenario_file import load_scenario
from tests.integration.conftest import Endpoints, config_for

if shutil.which("java") is None:
    pytest.skip("no `java` on PATH: the Spark tests need a JVM (Java 17)", allow_module_level=True)
pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[test,spark]'")

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from consumers import spark_job

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[1]")
        .appName("flashsale-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.session.timeZone", "UTC")
        # Tiny inputs: compiling whole stages and re-planning adaptively cost more than
        # they save.
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.extraJavaOptions", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()


def python(value: Any) -> Any:
    """A value Spark collected, as the embedded engines give it (aware UTC times)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.astimezone(UTC)  # pyspark gives the driver's local time, naive
    return value


def rows(frame: DataFrame) -> list[dict[str, Any]]:
    return [{k: python(v) for k, v in r.asDict().items()} for r in frame.collect()]


ARROW = {
    T.LongType: pa.int64(),
    T.IntegerType: pa.int32(),
    T.DoubleType: pa.float64(),
    T.StringType: pa.string(),
    T.BooleanType: pa.bool_(),
    T.TimestampType: pa.timestamp("us", tz="UTC"),
}


def arrow_schema(frame: DataFrame) -> pa.Schema:
    """The Arrow schema of a Spark result, as the embedded Gold conforms its tables."""
    fields = []
    for f in frame.schema.fields:
        kind = f.dataType
        if isinstance(kind, T.DecimalType):
            arrow = pa.decimal128(kind.precision, kind.scale)
        else:
            arrow = ARROW[type(kind)]
        fields.append(pa.field(f.name, arrow, nullable=True))
    return pa.schema(fields)


# --------------------------------------------------------------------------- wire format


GUID = "5c8e1d8a-3b4f-4e3a-9d8c-0f1e2d3c4b5a"


def confluent(reference: bytes) -> tuple[int | None, str | None]:
    """(id, guid) of a schema reference, read by confluent-kafka's own SchemaId."""
    parsed = SchemaId("AVRO")
    parsed.from_bytes(io.BytesIO(reference))
    return parsed.id, None if parsed.guid is None else str(parsed.guid)


def test_the_wire_split_reads_both_formats_as_confluent_and_the_embedded_split_do(
    spark: SparkSession,
) -> None:
    by_id = SchemaId("AVRO", 42).id_to_bytes()
    by_guid = SchemaId("AVRO", guid=GUID).guid_to_bytes()
    cases: list[tuple[bytes | None, list[tuple[str, bytes]] | None]] = [
        (by_id + b"\x02\x04ab", None),  # the prefix, as the embedded pipeline reads it
        (struct.pack(">bI", 0, 2**31 - 1) + b"x", None),
        (struct.pack(">bI", 0, 2**32 - 16) + b"x", None),  # an id beyond the int range
        (None, None),  # a tombstone
        (b"\x00\x00", None),  # too short
        (b"\x07\x00\x00\x00\x01hello", None),  # bad magic byte
        (by_guid + b"body", None),  # the GUID in the prefix
        (by_guid[:9], None),  # a GUID prefix cut short
        (b"plain avro", [("other", b"x"), ("__value_schema_id", by_guid)]),  # in a header
        (b"plain avro", [("__value_schema_id", by_id)]),
        (b"plain avro", [("__value_schema_id", b"\x01\x00")]),  # a header cut short
    ]
    frame = spark.createDataFrame(
        [(i, v, h) for i, (v, h) in enumerate(cases)],
        "i int, value binary, headers array<struct<key:string,value:binary>>",
    )
    split = spark_job.split_wire(frame, headers="headers")
    got = {r["i"]: r for r in rows(split)}
    # The tables keep an id as the embedded Bronze does: an int, none beyond its range.
    kept = split.select("i", spark_job.table_schema_id(split["writer_schema_id"]).alias("id"))
    assert {r["i"]: r["id"] for r in rows(kept) if r["i"] in (0, 1, 2)} == {
        0: 42,
        1: 2**31 - 1,
        2: None,
    }
    for i, (value, headers) in enumerate(cases):
        result = got[i]
        header = dict(headers or {}).get("__value_schema_id")
        if header is None and (value is None or value[0] == 0):
            try:  # the embedded split decides these
                schema_id, body = wire.split(value)
            except wire.WireFormatError as exc:
                assert (result["wire_error"], result["body"]) == (f"bad header: {exc}", None)
            else:
                assert (result["writer_schema_id"], result["body"]) == (schema_id, body)
                assert (result["writer_schema_guid"], result["wire_error"]) == (None, None)
            continue
        reference = value if header is None else header
        assert reference is not None
        if len(reference) < (17 if reference[0] == 1 else 5):
            where = "value" if header is None else "header __value_schema_id"
            expected = f"{where} of {len(reference)} bytes is shorter than the 17-byte header"
            assert result["wire_error"] == f"bad header: {expected}", i
        elif reference[0] not in (0, 1):
            assert result["wire_error"] == "bad header: bad magic byte 7 (expected 0 or 1)"
        else:
            assert result["wire_error"] is None, i
            reader = (result["writer_schema_id"], result["writer_schema_guid"])
            assert reader == confluent(reference), i
            start = 0 if header is not None else (17 if reference[0] == 1 else 5)
            assert value is not None
            assert result["body"] == value[start:], i


# --------------------------------------------------------------------------- Silver rules


RULES_SCHEMA = (
    "event_id string, product_id string, category string, brand string, event_type string, "
    "quantity int, price decimal(10,2), revenue decimal(12,2), event_time timestamp, "
    "currency string, ingest_time timestamp, kafka_topic string, kafka_topic_epoch int, "
    "kafka_partition int, kafka_offset long"
)
INGESTED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CATALOG = {"5000": ("home", "Lumo"), "5001": ("toys", None), "5002": ("fashion", "Oro")}


def event(n: int, **change: Any) -> dict[str, Any]:
    """A purchase that passes every rule, with ``change`` applied; offset ``n``."""
    base = {
        "event_id": f"e{n}",
        "product_id": "5000",
        "category": "home",
        "brand": "Lumo",
        "event_type": "purchase",
        "quantity": 2,
        "price": Decimal("12.50"),
        "revenue": Decimal("25.00"),
        "event_time": INGESTED - timedelta(minutes=1),
        "currency": "USD",
        "ingest_time": INGESTED,
        "kafka_topic": "t",
        "kafka_topic_epoch": 0,
        "kafka_partition": n % 2,
        "kafka_offset": n,
    }
    return {**base, **change}


RECORDS = [
    event(0),
    event(1, revenue=Decimal("24.99")),
    event(2, event_type="view", quantity=1, revenue=Decimal("12.50")),
    event(3, event_type="cart", quantity=1, revenue=Decimal("0.00")),
    event(4, category=""),
    event(5, product_id=None),
    event(6, product_id="9999", category="garden"),
    event(7, category="toys"),  # listed as home; without a catalog, first seen as home
    event(8, product_id="5001", category="toys", brand="Blokko"),  # the catalog has none
    event(9, product_id="5001", category="toys", brand=None),
    event(10, brand=None),
    event(11, currency="EUR"),
    event(12, event_time=datetime(1999, 12, 31, 23, 59, tzinfo=UTC)),
    event(13, event_time=INGESTED + timedelta(days=30, milliseconds=1)),
    event(14, event_time=INGESTED + timedelta(days=30)),
    event(15, product_id="5002", category="home", brand="Oro"),  # first seen: fashion below
    event(16, product_id="5002", category="fashion", brand="Oro", kafka_partition=0),
    event(17, revenue=Decimal("25.00"), quantity=3, price=Decimal("8.33"), event_type="cart"),
]


def embedded_reasons(
    tmp_path: Path, catalog: dict[str, tuple[str, str | None]]
) -> dict[str, str | None]:
    """Each record's quarantine reason as the embedded Silver judges it, records taken in
    coordinate order (as a rebuild reads Bronze)."""
    job = SilverJob(tmp_path / "warehouse", {"url": "http://127.0.0.1:9"}, "t", currencies=("USD",))
    job._catalog = catalog
    ordered = sorted(RECORDS, key=lambda r: [r[n] for n in spark_job.COORDINATES])
    reasons: dict[str, str | None] = {}
    for r in ordered:
        record = {**r, "timestamp": r["event_time"]}
        try:
            job._check(record, r["ingest_time"])
        except Rejected as exc:
            reasons[r["event_id"]] = str(exc)
        else:
            reasons[r["event_id"]] = None
    return reasons


@pytest.mark.parametrize("with_catalog", [True, False], ids=["catalog", "first-seen"])
def test_silver_rules_quarantine_what_the_embedded_silver_does_with_its_reason(
    spark: SparkSession, tmp_path: Path, with_catalog: bool
) -> None:
    frame = spark.createDataFrame(RECORDS, RULES_SCHEMA)
    catalog = spark.createDataFrame(
        [(p, c, b) for p, (c, b) in CATALOG.items()],
        "product_id string, category string, brand string",
    )
    checked = spark_job.silver_rules(frame, ("USD",), catalog if with_catalog else None)
    got = {r["event_id"]: r["reason"] for r in rows(checked)}
    expected = embedded_reasons(tmp_path, CATALOG if with_catalog else {})
    assert got == expected
    # Every rule fired at least once, and some records pass.
    kinds = {r.split(":")[0] for r in expected.values() if r}
    assert kinds == {"revenue identity", "unknown product", "foreign currency", "time out of range"}
    assert None in expected.values()


# --------------------------------------------------------------------------- identity


def test_the_jobs_fingerprint_is_the_embedded_one_in_either_framing(
    spark: SparkSession, stack: Endpoints, subject: str
) -> None:
    # One content, written in the prefix and in the header format: the job names the
    # writer as the embedded decoder does (the GUID looked up under the topic's subject
    # to its id), so both copies get the embedded fingerprint of the prefixed record.
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    from consumers.decode import Decoder
    from consumers.identity import fingerprint

    text = load_catalog(bundled_schemas_dir()).get(1).text
    client = SchemaRegistryClient({"url": stack.registry_url})
    registered = client.register_schema_full_response(subject, Schema(text, "AVRO"))
    stranger = str(uuid.uuid4())  # a GUID the subject does not hold
    body = b"\x0ahello, any body"
    prefixed = SchemaId("AVRO", registered.schema_id).id_to_bytes() + body

    def header(guid: str) -> list[tuple[str, bytes]]:
        return [("__value_schema_id", SchemaId("AVRO", guid=guid).guid_to_bytes())]

    cases = [(prefixed, None), (body, header(registered.guid)), (body, header(stranger))]
    frame = spark.createDataFrame(
        [(i, v, h) for i, (v, h) in enumerate(cases)],
        "i int, value binary, headers array<struct<key:string,value:binary>>",
    )
    got = {}
    for r in spark_job.split_wire(frame, headers="headers").collect():
        named = r["writer_schema_id"], r["writer_schema_guid"]
        prefix = spark_job.writer_prefix(stack.registry_url, subject, *named, text)
        one = spark.createDataFrame([(r["body"],)], "body binary")
        got[r["i"]] = one.select(spark_job.fingerprint(one["body"], prefix)).first()[0]
    decoder = Decoder(client, None, text)
    ids = lambda guid: decoder.schema_id_of(guid, subject)  # noqa: E731
    embedded = [fingerprint(v, h, ids) for v, h in cases]
    assert [got[i] for i in range(3)] == embedded
    assert embedded[0] == embedded[1] == fingerprint(prefixed)  # one content
    assert embedded[2] != embedded[0]  # a GUID without an id is its own writer
    assert spark_job.registered_id(stack.registry_url, stranger, text, subject) is None
    assert spark_job.registered_id(stack.registry_url, registered.guid, text, "none") is None


def test_a_writer_the_registry_lacks_is_the_embedded_quarantine_reason(
    stack: Endpoints, subject: str
) -> None:
    # The job quarantines the records of a writer the registry does not know, with the
    # reason the embedded Silver gives them, rather than failing the batch.
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from consumers.decode import Decoder

    text = load_catalog(bundled_schemas_dir()).get(1).text
    decoder = Decoder(SchemaRegistryClient({"url": stack.registry_url}), None, text)
    for schema_id, guid in [(2**31 - 16, None), (2**32 - 16, None), (None, str(uuid.uuid4()))]:
        ref = wire.WriterRef(schema_id=schema_id, guid=guid)
        with pytest.raises(Rejected) as embedded:
            decoder.writer(ref)
        with pytest.raises(spark_job.UnknownWriter) as job:
            spark_job.writer_schema(stack.registry_url, schema_id, guid)
        assert str(job.value) == str(embedded.value)
        assert str(job.value).startswith(f"unknown {ref.kind}: {ref.value} (")


def test_identity_keeps_and_quarantines_the_copies_the_embedded_identity_does(
    spark: SparkSession, tmp_path: Path
) -> None:
    def where(partition: int, offset: int, epoch: int = 0) -> tuple[str, int, int, int]:
        return ("t", epoch, partition, offset)

    known = [
        Copy("d", "fd", where(0, 1)),  # an earlier copy, same content as the new one
        Copy("e", "fe", where(0, 2)),  # an earlier copy, other content: a conflict now
        Copy("f", "ff", where(1, 3)),  # a new copy of it is lower (another partition)
    ]
    new = [
        Copy("a", "fa", where(1, 5)),
        Copy("a", "fa", where(0, 9)),  # the same content at lower coordinates: kept
        Copy("b", "fb1", where(0, 10)),
        Copy("b", "fb2", where(1, 11)),  # other content: both quarantined
        Copy("c", "fc", where(2, 12)),
        Copy("d", "fd", where(2, 13)),  # a duplicate of a copy Silver already keeps
        Copy("e", "fe2", where(2, 14)),
        Copy("f", "ff", where(0, 4)),
        Copy("g", "fg", where(0, 20, epoch=1)),  # a later epoch of the topic...
        Copy("g", "fg", where(3, 30)),  # ...is higher than any offset of epoch 0
    ]
    embedded = EmbeddedIdentity(tmp_path / "copies")
    embedded.add(known)
    embedded.add(new)
    decision = embedded.decide({c.event_id for c in new})

    def frame(copies: list[Copy]) -> DataFrame:
        return spark.createDataFrame(
            [(c.event_id, c.fingerprint, *c.where) for c in copies],
            "event_id string, fingerprint string, kafka_topic string, kafka_topic_epoch int, "
            "kafka_partition int, kafka_offset long",
        )

    result = spark_job.decide_identity(frame(new), frame(known))
    coords = spark_job.COORDINATES

    def at(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(r[n] for n in coords)

    in_batch = {c.where for c in new}
    assert {r["event_id"] for r in rows(result.conflicting)} == decision.conflicting == {"b", "e"}
    winners = {r["event_id"]: at(r) for r in rows(result.winners)}
    assert winners == {i: w for i, w in decision.keep.items() if w in in_batch}
    assert sorted(winners) == ["a", "c", "f", "g"]  # d's kept copy is the earlier one
    every_copy = {
        (c.event_id, c.fingerprint, c.where) for cs in decision.copies.values() for c in cs
    }
    assert {(r["event_id"], r["fingerprint"], at(r)) for r in rows(result.copies)} == every_copy
    conflicting_copies = {c.where for i in decision.conflicting for c in decision.copies[i]}
    conflicts = rows(result.conflicts)
    assert {at(r) for r in conflicts} == conflicting_copies & in_batch
    assert {at(r) for r in rows(result.earlier_conflicts)} == conflicting_copies - in_batch
    assert {r["reason"] for r in conflicts} == {
        "conflict: event b has copies with other content",
        "conflict: event e has copies with other content",
    }


# --------------------------------------------------------------------------- Gold


def test_fill_minutes_fills_the_gaps_as_the_embedded_gold_does(spark: SparkSession) -> None:
    minute = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    table = pa.table(
        {
            "minute": pa.array([minute, minute + timedelta(minutes=3)], pa.timestamp("us", "UTC")),
            "events": pa.array([5, 7], pa.int64()),
            "revenue": pa.array([Decimal("1.50"), Decimal("2.00")], pa.decimal128(18, 2)),
            "view_to_cart": pa.array([0.5, 0.25], pa.float64()),
        }
    )
    frame = spark.createDataFrame(
        table.to_pylist(),
        "minute timestamp, events bigint, revenue decimal(18,2), view_to_cart double",
    )
    filled = spark_job.fill_minutes(frame)
    assert rows(filled) == embedded_fill_minutes(table).to_pylist()
    assert len(rows(filled)) == 4


def test_the_job_resumes_in_the_epoch_bronze_is_in_or_the_one_it_is_given(
    spark: SparkSession,
) -> None:
    held = [("t", 0, 0, 41), ("t", 0, 1, 17), ("t", 1, 0, 2), ("t", 1, 0, 5), ("u", 3, 2, 9)]
    columns = "topic string, topic_epoch int, partition int, offset long"
    bronze = spark.createDataFrame(held, columns)
    # A new Bronze: epoch 0 from the start (or the epoch given).
    assert spark_job.resume_point(None, "t") == (0, "earliest")
    assert spark_job.resume_point(None, "t", 2) == (2, "earliest")
    # The epoch the embedded pipeline replayed into, after the offsets it holds of it.
    assert spark_job.resume_point(bronze, "t") == (1, '{"t": {"0": 6}}')
    assert spark_job.resume_point(bronze, "t", 0) == (0, '{"t": {"0": 42, "1": 18}}')
    # Spark takes specific offsets only for every partition: those Bronze holds nothing
    # of in the epoch start at their beginning.
    assert spark_job.resume_point(bronze, "t", None, [0, 1, 2]) == (
        1,
        '{"t": {"0": 6, "1": -2, "2": -2}}',
    )
    # The topic recreated once more: a new epoch, read from its start.
    assert spark_job.resume_point(bronze, "t", 2) == (2, "earliest")
    assert spark_job.resume_point(bronze, "v") == (0, "earliest")


@pytest.fixture(scope="module")
def warehouse(stack: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse of a real run: a small flash sale (schema v1, then the newest, so
    that sessions and stock levels appear) and its shop's catalog, through the embedded
    pipeline."""
    topic = f"test-spark-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("spark")
    config = config_for(stack)
    catalog = load_catalog(bundled_schemas_dir())
    register_contract(Registry(config), catalog, topic=topic)
    scenario = load_scenario("flash-sale").with_overrides(schema_version=1, rate_multiplier=0.05)
    stream = StreamProducer(
        config,
        catalog,
        scenario,
        17,
        ProduceOptions(
            topic=topic,
            duration=420,
            speed=None,
            create_topic=True,
            ledger_path=root / "ledger.json",
            switch_at=60,
            switch_version=catalog.latest().version,
        ),
    )
    stream.preflight()
    assert stream.run().ok
    run_pipeline(
        config.kafka(),
        config.registry(),
        topic,
        root / "warehouse",
        products_topic=products_topic(topic),
    )
    return root / "warehouse"


@pytest.fixture(scope="module")
def noisy(stack: Endpoints, warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``warehouse`` that then took in, through the embedded pipeline, what a
    real topic also carries: copies of records it holds (duplicates), another content
    under an event id it holds (a conflict), and records without a valid header."""
    path = tmp_path_factory.mktemp("noisy") / "warehouse"
    shutil.copytree(warehouse, path)
    bronze = DeltaTable(str(path / "bronze" / "events")).to_pyarrow_table().to_pylist()
    topic = bronze[0]["topic"]
    config = config_for(stack)
    prefixed = sorted(
        (r for r in bronze if r["schema_id_in"] == "prefix"), key=lambda r: r["offset"]
    )
    again = prefixed[:5]
    original = prefixed[5]
    writer = parse_schema(
        json.loads(Registry(config).client.get_schema(original["schema_id"]).schema_str)
    )
    datum = schemaless_reader(io.BytesIO(original["value"][5:]), writer, None)
    body = io.BytesIO()
    schemaless_writer(body, writer, {**datum, "user_id": datum["user_id"] + "-other"})
    other = original["value"][:5] + body.getvalue()
    producer = Producer(config.kafka())
    for record in again:
        producer.produce(topic, record["value"], record["key"], partition=record["partition"])
    producer.produce(topic, other, original["key"], partition=original["partition"])
    for value in (b"\x07not avro", b"\x00\x00", None):
        producer.produce(topic, value, b"noise", partition=0)
    assert producer.flush(30) == 0
    run_pipeline(
        config.kafka(), config.registry(), topic, path, products_topic=products_topic(topic)
    )
    return path


def delta_as_parquet(spark: SparkSession, path: Path) -> DataFrame:
    """A Delta table the embedded pipeline wrote, read by Spark without the Delta jar:
    its current data files (mergeSchema for the columns Silver gained over time)."""
    return spark.read.option("mergeSchema", "true").parquet(*DeltaTable(str(path)).file_uris())


def job_quality_per_minute(spark: SparkSession, warehouse: Path) -> DataFrame:
    """The job's quality_per_minute over the tables of ``warehouse`` (without a
    quarantine table until a record is quarantined, as the job has it)."""
    quarantine = warehouse / "silver" / "quarantine"
    return spark_job.quality_per_minute(
        delta_as_parquet(spark, warehouse / "bronze" / "events"),
        delta_as_parquet(spark, warehouse / "silver" / "events"),
        delta_as_parquet(spark, quarantine) if DeltaTable.is_deltatable(str(quarantine)) else None,
        delta_as_parquet(spark, warehouse / "silver" / "copies"),
    )


@pytest.fixture(scope="module")
def job_gold(spark: SparkSession, warehouse: Path) -> dict[str, pa.Table]:
    """The Gold the job computes over the Silver of the run, as Arrow tables: every
    ``gold_sql`` file and ``quality_per_minute``."""
    delta_as_parquet(spark, warehouse / "silver" / "events").createOrReplaceTempView(
        "silver_events"
    )
    delta_as_parquet(spark, warehouse / "silver" / "products").createOrReplaceTempView(
        "silver_products"
    )
    frames = spark_job.gold_tables(spark)
    frames["quality_per_minute"] = job_quality_per_minute(spark, warehouse)
    return {
        name: pa.Table.from_pylist(rows(frame), schema=arrow_schema(frame))
        for name, frame in frames.items()
    }


@pytest.mark.integration
@pytest.mark.slow
def test_every_gold_table_of_the_job_has_the_values_and_types_of_the_embedded_engines(
    job_gold: dict[str, pa.Table], warehouse: Path
) -> None:
    embedded = compute_kpis(warehouse, "datafusion")
    assert set(job_gold) == set(embedded) == set(GOLD_TABLES)
    assert len(list(spark_job.SQL_DIR.glob("[!_]*.sql"))) == len(GOLD_TABLES) - 1 == 10
    for name, table in job_gold.items():
        assert table.schema == embedded[name].schema, name
        expected = embedded[name].to_pylist()
        assert table.to_pylist() == expected, name
        assert len(expected) > 0, name


@pytest.mark.integration
def test_the_jobs_silver_steps_keep_every_row_the_embedded_silver_kept(
    spark: SparkSession, warehouse: Path
) -> None:
    silver = delta_as_parquet(spark, warehouse / "silver" / "events")
    catalog = delta_as_parquet(spark, warehouse / "silver" / "products")
    checked = spark_job.silver_rules(silver, ("USD",), catalog)
    assert rows(checked.filter("reason IS NOT NULL")) == []
    copies = delta_as_parquet(spark, warehouse / "silver" / "copies")
    decision = spark_job.decide_identity(copies)
    coordinates = list(spark_job.COORDINATES)
    kept = {tuple(r.values()) for r in rows(decision.winners.select("event_id", *coordinates))}
    assert kept == {tuple(r.values()) for r in rows(silver.select("event_id", *coordinates))}
    assert len(kept) > 100
    assert rows(decision.conflicting) == []


@pytest.mark.integration
def test_quality_per_minute_on_spark_has_the_embedded_tables_rows(
    spark: SparkSession, noisy: Path
) -> None:
    frame = job_quality_per_minute(spark, noisy)
    expected = embedded_quality_per_minute(noisy)
    assert arrow_schema(frame) == expected.schema
    assert rows(frame) == expected.to_pylist()
    # Not vacuous: the noise is in it (two copies of the conflicting event, the five
    # copies again, three records without a valid header), and so is lateness.
    totals = {c: sum(r[c] for r in expected.to_pylist()) for c in QUALITY_PER_MINUTE.names[1:6]}
    assert (totals["duplicates"], totals["conflicts"], totals["quarantined"]) == (5, 2, 3)
    assert totals["records"] > totals["events"] > 100
    assert any(r["lateness_p99_s"] for r in expected.to_pylist())


def write_like_delta_spark(path: Path, table: pa.Table, user_metadata: str) -> None:
    """``table`` written over the Delta table at ``path`` as the job writes a Gold table
    with delta-spark (``mode("overwrite")``, ``overwriteSchema``, the ``userMetadata``
    option), which is a top-level ``userMetadata`` string in the commitInfo action."""
    write_deltalake(
        str(path),
        table,
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=CommitProperties(custom_metadata={"userMetadata": user_metadata}),
    )


@pytest.mark.integration
def test_the_jobs_gold_verifies_with_kpis_verify_ledger_and_a_broken_cell_is_named(
    job_gold: dict[str, pa.Table], warehouse: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "warehouse"
    shutil.copytree(warehouse, copy)
    ledger = warehouse.parent / "ledger.json"
    version = DeltaTable(str(copy / "silver" / "events")).version()
    metadata = spark_job.gold_commit_metadata(version)
    assert spark_job.SILVER_VERSION == SILVER_VERSION
    for name, table in job_gold.items():
        write_like_delta_spark(copy / "gold" / name, table, metadata)
        commit = DeltaTable(str(copy / "gold" / name)).history(1)[0]
        # Only the Spark form: the embedded pipeline's commit property is not there.
        assert commit["userMetadata"] == metadata and SILVER_VERSION not in commit, name
    args = ["kpis", "--warehouse", str(copy), "--verify-ledger", str(ledger)]
    clean = CliRunner().invoke(main, args)
    assert clean.exit_code == 0, clean.output
    assert "reconciled: every Gold table equals the ledger (" in clean.output
    assert clean.output.rstrip().endswith(f"Gold of Silver version {version})")
    out = tmp_path / "report.html"
    report = ["report", "--warehouse", str(copy), "--ledger", str(ledger), "--out", str(out)]
    reported = CliRunner().invoke(main, report)
    assert (reported.exit_code, reported.output) == (
        0,
        f"report: {out}\nreconciled: every KPI table a ledger determines equals the ledgers\n",
    )

    # One cell of the job's Gold broken on purpose: named, and nothing else.
    sales = job_gold["product_sales"].to_pylist()
    first = min(sales, key=lambda r: r["product_id"])
    right = first["revenue"]
    first["revenue"] = right + Decimal("0.01")
    broken = pa.Table.from_pylist(sales, schema=job_gold["product_sales"].schema)
    write_like_delta_spark(copy / "gold" / "product_sales", broken, metadata)
    failed = CliRunner().invoke(main, args)
    assert failed.exit_code == 1, failed.output
    named = [line for line in failed.output.splitlines() if line.startswith("DIFFERENCE")]
    assert named == [
        f"DIFFERENCE product_sales: {first['product_id']} revenue: "
        f"ledger {right}, Gold {first['revenue']}"
    ]
    reported = CliRunner().invoke(main, report)
    assert reported.exit_code == 1
    assert "Error: 1 KPI differences from the ledger; the report shows them" in reported.output
