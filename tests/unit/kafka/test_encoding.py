"""The fast value encoder writes exactly AvroSerializer's and fastavro's bytes.

AvroSerializer runs against confluent-kafka's mock registry here: pure logic, the
registry is not the point. fastavro is the reference for the record writer.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.contract.catalog import SchemaCatalog, load_catalog
from producer.events import FlashSaleEvent
from producer.kafka import encoding
from producer.kafka.encoding import FramedAvroEncoder, FramedKeyEncoder, RecordWriter
from producer.kafka.produce import SERIALIZER_CONF
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario
from tests.conftest import ARRAY_FIELD, V4_FIELDS, v4_definition


def serializer_and_encoder(
    catalog: SchemaCatalog, version: int, topic: str
) -> tuple[Callable[[Any], bytes], FramedAvroEncoder]:
    """confluent-kafka's AvroSerializer for ``version`` on a mock registry, and the fast
    encoder that takes its first record from it."""
    schema = catalog.get(version)
    registry = SchemaRegistryClient.new_client({"url": f"mock://{topic}"})
    avro = AvroSerializer(
        registry,
        schema.text,
        lambda event, ctx: event.to_avro(version),
        conf={
            "auto.register.schemas": True,  # the mock registry: registration is not the point
            "use.latest.version": False,
            "subject.name.strategy": topic_subject_name_strategy,
        },
    )
    ctx = SerializationContext(topic, MessageField.VALUE)

    def serializer(event: Any) -> bytes:
        data = avro(event, ctx)
        assert isinstance(data, bytes)
        return data

    return serializer, FramedAvroEncoder(schema.parsed, schema.definition, version, serializer)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_bytes_equal_avro_serializer(catalog: SchemaCatalog, version: int) -> None:
    serializer, encoder = serializer_and_encoder(catalog, version, f"t{version}")
    scenario = load_scenario("flash-sale").with_overrides(schema_version=version)
    events = list(Simulation(scenario, 2).events(max_seconds=200))
    assert len(events) > 10_000
    assert [encoder(e) for e in events] == [serializer(e) for e in events]
    assert encoder.header is not None and encoder.header[0] == 0


@pytest.mark.parametrize("extra", [V4_FIELDS, [*V4_FIELDS, ARRAY_FIELD]], ids=["fast", "fastavro"])
def test_a_version_the_event_does_not_know_writes_its_new_fields_defaults(
    schema_variant_dir: Any, extra: list[dict[str, Any]]
) -> None:
    # A v4 past the events table: fields the event lacks are written with their schema
    # defaults, byte for byte as AvroSerializer (fastavro) writes the event's datum.
    files = {"flash_sale_event-v4.avsc": v4_definition(extra)}
    schema = load_catalog(schema_variant_dir(files)).get(4)
    registry = SchemaRegistryClient.new_client({"url": "mock://encoding-v4"})
    serializer = AvroSerializer(
        registry,
        schema.text,
        lambda event, ctx: event.to_avro(4),
        conf={**SERIALIZER_CONF, "auto.register.schemas": True},
    )
    ctx = SerializationContext("t4", MessageField.VALUE)
    encoder = FramedAvroEncoder(schema.parsed, schema.definition, 4, lambda e: serializer(e, ctx))
    events = list(Simulation(load_scenario("flash-sale"), 3).events(max_seconds=60))
    encoded = [encoder(e) for e in events]
    assert encoded == [serializer(e, ctx) for e in events]
    decoded = fastavro.schemaless_reader(io.BytesIO(encoded[-1][5:]), schema.parsed)
    assert decoded is not None and not isinstance(decoded, list)
    assert {f["name"]: decoded[f["name"]] for f in extra} == {
        "coupon_code": None,
        "channel": "app",
        "items_in_cart": 7,
        **({"tags": []} if ARRAY_FIELD in extra else {}),
    }


def fastavro_bytes(definition: Any, datum: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(definition), datum)
    return out.getvalue()


def one_field(field_type: Any) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": [{"name": "f", "type": field_type}]}


DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}


@pytest.mark.parametrize("value", ["0.00", "0.01", "-0.01", "127.99", "1.28", "-0.00", "1.5"])
def test_decimal_bytes(value: str) -> None:
    unscaled = int(Decimal(value) * 100)
    payload = unscaled.to_bytes((unscaled.bit_length() + 8) // 8 or 1, "big", signed=True)
    writer = RecordWriter.compile(one_field(DECIMAL))
    assert writer is not None
    assert writer.encode([Decimal(value)]) == bytes([len(payload) * 2]) + payload
    assert writer.encode([Decimal(value)]) == fastavro_bytes(
        one_field(DECIMAL), {"f": Decimal(value)}
    )


def test_a_decimal_equal_to_a_kept_one_but_of_a_finer_scale_is_refused_like_fastavro() -> None:
    writer = RecordWriter.compile(one_field(DECIMAL))
    assert writer is not None
    writer.encode([Decimal("1.5")])  # kept; 1.500 is equal, but fastavro refuses its scale
    with pytest.raises(ValueError):
        fastavro_bytes(one_field(DECIMAL), {"f": Decimal("1.500")})
    with pytest.raises(ValueError):
        writer.encode([Decimal("1.500")])


# Every type the writer covers, bare and nullable (null first and null second), the
# repeating kind (kept) and the distinct kind (not kept).
COVERED = [
    ("b", "boolean", st.booleans()),
    ("i", "int", st.integers(-(2**31), 2**31 - 1)),
    ("l", "long", st.integers(-(2**63), 2**63 - 1)),
    ("f", "float", st.floats(width=32)),
    ("d", "double", st.floats()),
    ("s", "string", st.text()),
    # Lengths on both sides of the 4096 the length table covers, cheap to generate.
    ("s_long", "string", st.text(min_size=1, max_size=4).map(lambda t: t * 1100)),
    ("y", "bytes", st.binary()),
    ("n", "null", st.none()),
    ("e", {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}, st.sampled_from("ABC")),
    ("m", DECIMAL, st.decimals(-(10**10) + 1, 10**10 - 1, places=2)),
    ("t", {"type": "long", "logicalType": "timestamp-millis"}, st.integers(0, 2**45)),
]


def _wide_schema() -> tuple[dict[str, Any], list[tuple[str, st.SearchStrategy[Any]]]]:
    fields, values = [], []
    for name, kind, strategy in COVERED:
        fields.append({"name": name, "type": kind})
        values.append((name, strategy))
        if kind != "null":
            # A named type is defined once per schema: the unions repeat it by a copy.
            copy = json.loads(json.dumps(kind).replace('"E"', f'"E_{name}"'))
            copy2 = json.loads(json.dumps(kind).replace('"E"', f'"E2_{name}"'))
            fields.append({"name": f"{name}_or_null", "type": [copy, "null"]})
            values.append((f"{name}_or_null", st.none() | strategy))
            fields.append({"name": f"null_or_{name}", "type": ["null", copy2]})
            values.append((f"null_or_{name}", st.none() | strategy))
    return {"type": "record", "name": "Wide", "fields": fields}, values


WIDE, WIDE_VALUES = _wide_schema()


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(dict(WIDE_VALUES)),
    st.sets(st.sampled_from([f["name"] for f in WIDE["fields"]])),
)
def test_record_writer_bytes_equal_fastavro(datum: dict[str, Any], distinct: set[str]) -> None:
    writes_as_fastavro(datum, distinct)


def writes_as_fastavro(datum: dict[str, Any], distinct: set[str]) -> None:
    """The record writer of WIDE, keeping the ``distinct`` fields' bytes, writes
    ``datum`` as fastavro does, the first time and again from what it kept."""
    writer = RecordWriter.compile(WIDE, distinct=distinct)
    assert writer is not None
    values = [datum[f["name"]] for f in WIDE["fields"]]
    expected = fastavro_bytes(WIDE, datum)
    assert writer.encode(values) == expected
    assert writer.encode(values) == expected  # the second time from what it kept


def test_floats_keep_their_bits() -> None:
    writer = RecordWriter.compile(one_field("double"))
    assert writer is not None
    for value in (math.nan, math.inf, -0.0, 5e-324):
        assert writer.encode([value]) == fastavro_bytes(one_field("double"), {"f": value})


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "array", "items": "int"},
        {"type": "map", "values": "string"},
        {"type": "fixed", "name": "F", "size": 4},
        ["null", "string", "int"],
        ["string", "int"],
        {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int"}]},
        {"type": "string", "logicalType": "uuid"},
        {"type": "int", "logicalType": "date"},
        # A timestamp is a long: on a string the logical type is ignored (Avro
        # specification), and the string is not written as a timestamp.
        {"type": "string", "logicalType": "timestamp-millis"},
    ],
)
def test_types_it_does_not_cover_leave_the_record_to_fastavro(field_type: Any) -> None:
    assert RecordWriter.compile(one_field(field_type)) is None


def _framed(catalog: SchemaCatalog, version: int) -> FramedAvroEncoder:
    schema = catalog.get(version)
    encoder = FramedAvroEncoder(
        schema.parsed, schema.definition, version, lambda e: b"\x00\x00\x00\x00\x07"
    )
    encoder(EVENT)  # the first record sets the header
    return encoder


EVENT = next(iter(Simulation(load_scenario("flash-sale"), 5).events(max_events=1)))


def _reference(catalog: SchemaCatalog, version: int, event: FlashSaleEvent) -> bytes:
    schema = catalog.get(version)
    return b"\x00\x00\x00\x00\x07" + fastavro_bytes(schema.definition, event.to_avro(version))


def test_a_value_the_fast_path_does_not_take_is_written_by_fastavro(catalog: SchemaCatalog) -> None:
    # fastavro takes a datetime for a timestamp-millis; the fast writers take ints only.
    moment = datetime.fromtimestamp(EVENT.timestamp_ms / 1000, tz=UTC)
    event = EVENT._replace(timestamp_ms=moment)  # type: ignore[arg-type]
    assert _framed(catalog, 3)(event) == _reference(catalog, 3, EVENT)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "two"),
        ("user_id", 42),
        ("price", 1.5),
        ("stock_remaining", "3"),
        ("currency", None),
    ],
)
def test_a_wrong_value_fails_as_fastavro_fails(
    catalog: SchemaCatalog, field: str, value: Any
) -> None:
    event = EVENT._replace(**{field: value})
    with pytest.raises((TypeError, ValueError)) as expected:
        _reference(catalog, 3, event)
    with pytest.raises(expected.type):
        _framed(catalog, 3)(event)


def test_bytes_stay_right_when_the_kept_values_are_dropped(
    catalog: SchemaCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoding, "_CACHE_LIMIT", 5)
    encoder = _framed(catalog, 3)
    events = list(Simulation(load_scenario("flash-sale"), 8).events(max_events=3000))
    assert [encoder(e) for e in events] == [_reference(catalog, 3, e) for e in events]


def test_key_bytes_equal_avro_serializer(catalog: SchemaCatalog) -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://keys"})
    serializer = AvroSerializer(
        registry,
        catalog.latest("flash_sale_key").text,
        conf={"auto.register.schemas": True, "subject.name.strategy": topic_subject_name_strategy},
    )
    ctx = SerializationContext("t", MessageField.KEY)
    encoder = FramedKeyEncoder(lambda key: serializer(key, ctx))
    users = [str(10_000 + i * 7919 % 90_000) for i in range(5000)] + ["", "ü-ß", "x" * 300]
    assert [encoder(u) for u in users] == [serializer(u, ctx) for u in users]
