"""What the encoder keeps must never answer for a value it would write differently.

The fast writers keep the bytes of values that repeat, looked up by the value itself.
Python calls ``1``, ``1.0`` and ``True`` equal (and hashes them alike), and ``0.0``
and ``-0.0`` too, but Avro writes them differently or refuses some of them: only
types whose equal values are always written alike (strings, bytes, enum symbols) may
be kept by value. Here each value is written after an equal one of another type, and
must come out as fastavro writes it, or be refused where fastavro refuses it (a value
the fast writers decline goes to fastavro, as the encoder does).
The same test covers a decimal whose scale is left to its default (0). Also: the
varint at each 7-bit group boundary, the bound on what is kept, and a schema of two
fields."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import fastavro
import pytest

from producer.events import FlashSaleEvent
from producer.kafka import encoding
from producer.kafka.encoding import FramedAvroEncoder, RecordWriter
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario
from tests.unit.kafka.test_encoder_parts import event_schema
from tests.unit.kafka.test_encoding import fastavro_bytes, one_field

HEADER = b"\x00\x00\x00\x00\x07"
DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
WHOLE = {"type": "bytes", "logicalType": "decimal", "precision": 5}  # scale 0 by default
TIMESTAMP = {"type": "long", "logicalType": "timestamp-millis"}
ENUM = {"type": "enum", "name": "E", "symbols": ["A", "B"]}

# Equal to each other in Python, each written its own way (or refused) by Avro.
INTEGRAL = [1, 1.0, True, Decimal(1), 0, False, 0.0, -0.0, Decimal(0)]
REAL = [0.0, -0.0, 0, False, Decimal(0), 1, 1.0, True]
BOOLEAN = [True, 1, 1.0, Decimal(1), False, 0, 0.0]


def by_fastavro(definition: Any, value: Any) -> bytes | None:
    """fastavro's bytes of a record of one field, ``value``; None if it refuses it."""
    try:
        return fastavro_bytes(definition, {"f": value})
    except (TypeError, ValueError, OverflowError):
        return None


def by_encoder(writer: RecordWriter, definition: Any, value: Any) -> bytes | None:
    """What the encoder writes: the fast writers' bytes, or fastavro's for a value they
    decline."""
    try:
        return writer.encode([value])
    except encoding._NOT_TAKEN:
        return by_fastavro(definition, value)


KINDS = [
    ("long", "long", INTEGRAL),
    ("int", "int", INTEGRAL),
    ("long-in-a-dict", {"type": "long"}, INTEGRAL),
    ("timestamp", TIMESTAMP, INTEGRAL),
    ("timestamp-micros", {"type": "long", "logicalType": "timestamp-micros"}, INTEGRAL),
    ("double", "double", REAL),
    ("float", "float", REAL),
    ("double-in-a-dict", {"type": "double"}, REAL),
    ("boolean", "boolean", BOOLEAN),
    ("decimal", DECIMAL, [Decimal("1.50"), 1.5, "1.50", Decimal("-0.00"), 0, 0.0]),
    ("decimal-of-scale-0", WHOLE, [Decimal(12), Decimal("-12"), Decimal("1.5"), 12]),
    ("string", "string", ["a", b"a", 1]),
    ("enum", ENUM, ["A", "B", 0, "C"]),
]
SHAPES = [
    pytest.param(field_type, values, id=f"{name}-{shape}")
    for name, kind, values in KINDS
    for shape, field_type in (
        ("bare", kind),
        ("null-first", ["null", kind]),
        ("null-second", [kind, "null"]),
    )
]


@pytest.mark.parametrize(("field_type", "values"), SHAPES)
def test_an_equal_value_of_another_type_is_written_as_fastavro_writes_it(
    field_type: Any, values: list[Any]
) -> None:
    # Kept by value (a field whose values repeat): each value comes after an equal one.
    definition = one_field(field_type)
    writer = RecordWriter.compile(definition)
    assert writer is not None
    for value in values * 2:
        assert by_encoder(writer, definition, value) == by_fastavro(definition, value), value


@pytest.mark.parametrize(
    "n",
    [0, 1, 127, 128, 129, 255, 16383, 16384, 16385, (1 << 21) - 1, 1 << 21, 1 << 28, (1 << 64) - 1],
)
def test_a_varint_at_each_group_boundary_is_avros(n: int) -> None:
    # A zigzag varint of n is the long whose zigzag is n.
    value = (n >> 1) ^ -(n & 1)
    assert encoding._varint(n) == fastavro_bytes("long", value)


def test_what_is_kept_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoding, "_CACHE_LIMIT", 3)
    kept = encoding._Kept(encoding._string)
    for i in range(10):
        value = f"v{i % 5}"
        assert kept[value] == fastavro_bytes("string", value)
        assert 1 <= len(kept) <= 3


def test_a_schema_of_two_fields_the_event_carries() -> None:
    definition = event_schema(
        {"name": "event_id", "type": "string"}, {"name": "quantity", "type": "int"}
    )
    events = list(Simulation(load_scenario("default"), 4).events(max_events=20))

    def reference(event: FlashSaleEvent) -> bytes:
        datum = {"event_id": event.event_id, "quantity": event.quantity}
        return HEADER + fastavro_bytes(definition, datum)

    encoder = FramedAvroEncoder(fastavro.parse_schema(definition), definition, 1, reference)
    assert [encoder(e) for e in events] == [reference(e) for e in events]


@pytest.mark.parametrize(
    "definition",
    ["string", {"type": "enum", "name": "E", "symbols": ["A"]}, ["null", "string"]],
)
def test_a_schema_that_is_not_a_record_is_left_to_fastavro(definition: Any) -> None:
    assert RecordWriter.compile(definition) is None
