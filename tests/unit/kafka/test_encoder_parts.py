"""Parts of the encoder the long comparisons reach only through objects made at import
or through caches: the float and double writers, a schema of one field, and the key
encoder's promise to serialize through the registry once and keep each key's bytes."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

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
    assert [encoder(e) for e in events] == [reference(e) for e in events]


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
