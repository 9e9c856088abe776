"""AvroSerializer -> broker -> AvroDeserializer through the real stack, wire bytes checked."""

from __future__ import annotations

import io
import json
import struct
import time
from decimal import Decimal

import fastavro
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from producer.contract.catalog import bundled_schemas_dir
from producer.events import EventType, FlashSaleEvent
from tests.integration.conftest import Endpoints

pytestmark = pytest.mark.integration


def test_avro_round_trip_through_broker_and_registry(stack: Endpoints, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(timeout=15)

    sr = SchemaRegistryClient({"url": stack.registry_url})
    text = (bundled_schemas_dir() / "flash_sale_event-v2.avsc").read_text()
    schema_id = sr.register_schema(f"{topic}-value", Schema(text, "AVRO"))

    serializer = AvroSerializer(
        sr,
        text,
        lambda event, ctx: event.to_avro(2),
        conf={
            "auto.register.schemas": False,
            "use.latest.version": False,
            "subject.name.strategy": lambda ctx, name: f"{ctx.topic}-value",
        },
    )
    events = [
        FlashSaleEvent(
            event_id=f"e-{i}",
            user_id=f"{10000 + i % 3}",
            product_id="1001",
            category="books",
            event_type=EventType.PURCHASE,
            quantity=2,
            price=Decimal("12.50"),
            revenue=Decimal("25.00"),
            timestamp_ms=1764072000000 + i,
            session_id=f"s-{i}",
        )
        for i in range(20)
    ]
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "acks": "all"})
    ctx = SerializationContext(topic, MessageField.VALUE)
    for event in events:
        producer.produce(topic, key=event.key.encode(), value=serializer(event, ctx))
    assert producer.flush(15) == 0

    deserializer = AvroDeserializer(sr, from_dict=lambda d, ctx: FlashSaleEvent.from_avro(d))
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap_servers,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    parsed = fastavro.parse_schema(json.loads(text))
    received = []
    deadline = time.monotonic() + 30
    try:
        while len(received) < len(events) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            raw = message.value()
            magic, wire_id = struct.unpack(">bI", raw[:5])
            assert (magic, wire_id) == (0, schema_id)
            decoded = deserializer(raw, SerializationContext(topic, MessageField.VALUE))
            # The body after the header is plain Avro binary of the v2 schema.
            body = fastavro.schemaless_reader(io.BytesIO(raw[5:]), parsed, None)
            assert FlashSaleEvent.from_avro(body) == decoded
            assert message.key() == decoded.user_id.encode()
            received.append(decoded)
    finally:
        consumer.close()
    assert sorted(received, key=lambda e: e.timestamp_ms) == events
