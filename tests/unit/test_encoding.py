"""The fast value encoder writes exactly AvroSerializer's bytes (mock registry: pure logic)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from producer.encoding import FramedAvroEncoder, FramedKeyEncoder, decimal_encoder
from producer.scenario import load_scenario
from producer.schemas import SchemaCatalog
from producer.simulator import Simulation


@pytest.mark.parametrize("version", [1, 2, 3])
def test_bytes_equal_avro_serializer(catalog: SchemaCatalog, version: int) -> None:
    schema = catalog.get(version)
    registry = SchemaRegistryClient.new_client({"url": f"mock://encoding-{version}"})
    serializer = AvroSerializer(
        registry,
        schema.text,
        lambda event, ctx: event.to_avro(version),
        conf={
            "auto.register.schemas": True,  # the mock registry: registration is not the point
            "use.latest.version": False,
            "subject.name.strategy": topic_subject_name_strategy,
        },
    )
    ctx = SerializationContext(f"t{version}", MessageField.VALUE)
    encoder = FramedAvroEncoder(
        schema.parsed, schema.definition, version, lambda e: serializer(e, ctx)
    )
    scenario = load_scenario("flash-sale").with_overrides(schema_version=version)
    events = list(Simulation(scenario, 2).events(max_seconds=200))
    assert len(events) > 10_000
    assert [encoder(e) for e in events] == [serializer(e, ctx) for e in events]
    assert encoder.header is not None and encoder.header[0] == 0


@pytest.mark.parametrize("value", ["0.00", "0.01", "-0.01", "127.99", "99999999.99", "1.28"])
def test_decimal_payloads(value: str) -> None:
    unscaled = int(Decimal(value) * 100)
    expected = unscaled.to_bytes((unscaled.bit_length() + 8) // 8 or 1, "big", signed=True)
    assert decimal_encoder(10, 2)(Decimal(value)) == expected


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
