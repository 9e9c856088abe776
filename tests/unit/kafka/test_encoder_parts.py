"""Parts of the encoder the long comparisons reach only through objects made at import
or through caches: the float and double writers, a schema of one field, and the key
encoder's promise to serialize through the registry once and keep each key's bytes."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from producer.contract.catalog import SchemaCatalog
from producer.events import FlashSaleEvent
from producer.kafka import encoding
from producer.kafka.encoding import FramedAvroEncoder, FramedKeyEncoder
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario

HEADER = b"\x00\x00\x00\x00\x07"


def fastavro_bytes(definition: Any, datum: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(definition), datum)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "kind", "value"),
    [
        *[("<f", "float", v) for v in (0.0, -1.5, 3.4e38, 1e-30, 7, float("inf"))],
        *[("<d", "double", v) for v in (0.0, -1.5, 1.7e308, 1e-300, 7, float("-inf"))],
    ],
)
def test_a_float_writer_writes_what_fastavro_writes(fmt: str, kind: str, value: float) -> None:
    assert encoding._packed(fmt)(value) == fastavro_bytes(kind, value)


@pytest.mark.parametrize("value", ["1.5", None, b"\x00", True])
def test_a_float_writer_refuses_what_is_not_a_number(value: Any) -> None:
    with pytest.raises(TypeError):
        encoding._packed("<d")(value)


@pytest.mark.parametrize(
    "value",
    [0, 4095, 4096, -64, -65, 8150, 8191, 8192, 1 << 20, (1 << 20) + 5, -(1 << 63), (1 << 63) - 1],
)
def test_a_long_at_each_varint_boundary_is_written_as_fastavro_writes_it(value: int) -> None:
    assert encoding._long(value) == fastavro_bytes("long", value)


def fell_back(*args: Any) -> None:
    raise AssertionError("the record went to fastavro (its datum was asked for)")


def test_the_released_versions_take_the_fast_path_for_every_event(
    catalog: SchemaCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A value the fast writers refuse goes to fastavro, which writes the same bytes more
    # slowly: a fast path that wrongly refuses is seen only by the event's datum (what
    # fastavro writes) being asked for.
    events = list(Simulation(load_scenario("flash-sale"), 6).events(max_events=600))
    for version in (1, 2, 3):
        schema = catalog.get(version)

        def reference(event: FlashSaleEvent, version: int = version, schema: Any = schema) -> bytes:
            return HEADER + fastavro_bytes(schema.definition, event.to_avro(version))

        expected = [reference(e) for e in events]
        encoder = FramedAvroEncoder(schema.parsed, schema.definition, version, reference)
        assert encoder(events[0]) == expected[0]
        with monkeypatch.context() as patch:
            patch.setattr(FlashSaleEvent, "to_avro", fell_back)
            assert [encoder(e) for e in events[1:]] == expected[1:]


def test_a_schema_of_one_field_the_event_carries() -> None:
    definition = {
        "type": "record",
        "name": "flash_sale_event",
        "namespace": "com.flashsale.events",
        "fields": [{"name": "event_id", "type": "string"}],
    }
    events = list(Simulation(load_scenario("default"), 4).events(max_events=20))

    def reference(event: FlashSaleEvent) -> bytes:
        return HEADER + fastavro_bytes(definition, {"event_id": event.event_id})

    encoder = FramedAvroEncoder(fastavro.parse_schema(definition), definition, 1, reference)
    expected = [reference(e) for e in events]
    assert encoder(events[0]) == expected[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FlashSaleEvent, "to_avro", fell_back)
        assert [encoder(e) for e in events[1:]] == expected[1:]


def event_schema(*fields: dict[str, Any]) -> dict[str, Any]:
    """The event's record as a writer schema holding only ``fields``."""
    return {
        "type": "record",
        "name": "flash_sale_event",
        "namespace": "com.flashsale.events",
        "fields": list(fields),
    }


def test_a_field_the_event_lacks_writes_its_default_on_the_fast_path() -> None:
    definition = event_schema(
        {"name": "event_id", "type": "string"},
        {"name": "channel", "type": "string", "default": "app"},
        {"name": "quantity", "type": "int"},
    )
    events = list(Simulation(load_scenario("default"), 4).events(max_events=20))

    def reference(event: FlashSaleEvent) -> bytes:
        datum = {"event_id": event.event_id, "channel": "app", "quantity": event.quantity}
        return HEADER + fastavro_bytes(definition, datum)

    encoder = FramedAvroEncoder(fastavro.parse_schema(definition), definition, 1, reference)
    expected = [reference(e) for e in events]
    assert encoder(events[0]) == expected[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FlashSaleEvent, "to_avro", fell_back)
        assert [encoder(e) for e in events[1:]] == expected[1:]


def test_the_key_serializer_is_asked_once_and_each_key_is_kept() -> None:
    asked: list[str] = []

    def first(key: str) -> bytes:
        asked.append(key)
        return HEADER + fastavro_bytes("string", key)

    encoder = FramedKeyEncoder(first)
    keys = ["10001", "10002", "", "ü-ß", "10001"]
    encoded = [encoder(k) for k in keys]
    assert encoded == [HEADER + fastavro_bytes("string", k) for k in keys]
    assert asked == ["10001"]
    assert encoder("10002") is encoded[1]  # encoded once, kept


def test_the_kept_keys_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoding, "_CACHE_LIMIT", 3)
    encoder = FramedKeyEncoder(lambda key: HEADER + fastavro_bytes("string", key))
    first = encoder("k1")
    for key in ("k2", "k3"):
        encoder(key)
    assert encoder("k1") is first  # three kept: at the limit
    encoder("k4")  # a fourth: the kept ones are dropped
    again = encoder("k1")
    assert again == first and again is not first


def test_a_row_of_the_wrong_length_is_refused_not_cut() -> None:
    definition = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}],
    }
    writer = encoding.RecordWriter.compile(definition)
    assert writer is not None
    assert writer.encode([5, "x"]) == fastavro_bytes(definition, {"a": 5, "b": "x"})
    for row in ([5], [5, "x", "extra"]):
        with pytest.raises(ValueError):
            writer.encode(row)


@pytest.mark.parametrize("size", [4095, 4096, 4097])
def test_a_length_at_the_small_table_boundary_is_written_by_the_fast_writer(size: int) -> None:
    # Lengths under 4096 come from a table, longer ones are computed: both sides and the
    # boundary are written here, not declined and left to fastavro.
    definition = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "s", "type": "string"}, {"name": "b", "type": "bytes"}],
    }
    writer = encoding.RecordWriter.compile(definition)
    assert writer is not None
    text, data = "é" * (size // 2) + "x" * (size % 2), b"\x00" * size
    assert len(text.encode()) == size
    assert writer.encode([text, data]) == fastavro_bytes(definition, {"s": text, "b": data})
