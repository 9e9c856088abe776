"""``flashsale consume``: read the topic back with AvroDeserializer, optionally as a reader schema.

Given a reader schema, every record is decoded with Avro schema resolution from the
writer schema its header names to the reader's: a v1 reader sees v2 data without the
new fields, a v2 reader sees v1 data with the defaults.
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from producer.config import ClientConfig
from producer.contract.catalog import parse_schema_text
from producer.errors import BrokerUnavailable, InvalidOption
from producer.events import DEFAULT_TOPIC
from producer.kafka.admin import cluster_metadata, librdkafka_log, require_topic
from producer.registry.client import Registry

__all__ = ["ConsumeOptions", "ConsumedRecord", "consume", "json_value"]

# The header confluent-kafka's header serializer names a value's writer in.
VALUE_SCHEMA_ID_HEADER = "__value_schema_id"


@dataclass(frozen=True)
class ConsumeOptions:
    topic: str = DEFAULT_TOPIC
    group: str | None = None
    from_beginning: bool = False
    max_records: int | None = None
    idle_timeout: float | None = None  # stop after this long without a record
    reader_schema: Path | None = None
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class ConsumedRecord:
    partition: int
    offset: int
    key: Any
    schema_id: int | None
    value: dict[str, Any] | None
    error: str | None = None
    schema_guid: str | None = None  # the writer's GUID, when the header named it so


def json_value(value: Any) -> Any:
    """Decoded Avro as JSON-ready values: decimals as exact strings, time as ISO-8601 UTC."""
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.hex()
    return value


def consume(
    config: ClientConfig, options: ConsumeOptions, stop: threading.Event | None = None
) -> Iterator[ConsumedRecord]:
    """Records of the topic, decoded; stops at ``max_records``, idleness or ``stop``."""
    stop = stop or threading.Event()
    reader_text = None
    if options.reader_schema is not None:
        try:
            reader_text = options.reader_schema.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidOption(
                "reader_schema", f"cannot read: {exc.strerror}", options.reader_schema
            ) from exc
        parse_schema_text(reader_text, options.reader_schema)  # one-line error if invalid
    registry = Registry(config, timeout=options.connect_timeout)
    registry.ping()
    values = AvroDeserializer(registry.client, schema_str=reader_text)
    keys = AvroDeserializer(registry.client)
    consumer = Consumer(
        {
            **config.kafka(),
            "group.id": options.group or f"flashsale-consume-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if options.from_beginning else "latest",
            "enable.auto.commit": options.group is not None,
            "session.timeout.ms": 6000,
            "logger": librdkafka_log,
        }
    )
    try:
        servers = config.bootstrap_servers
        metadata = cluster_metadata(consumer, servers, options.connect_timeout, stop)
        require_topic(metadata, options.topic, servers)
        consumer.subscribe([options.topic])
        count = 0
        last_record = time.monotonic()
        while not stop.is_set():
            if options.max_records is not None and count >= options.max_records:
                return
            message = consumer.poll(0.2)
            if message is None:
                if (
                    options.idle_timeout is not None
                    and time.monotonic() - last_record > options.idle_timeout
                ):
                    return
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise BrokerUnavailable(f"consuming {options.topic}: {error.str()}")
            last_record = time.monotonic()
            count += 1
            with registry.errors("fetching a writer schema"):
                record = _decode(message, options.topic, values, keys)
            yield record
    finally:
        consumer.close()


def _writer(raw: bytes | None, headers: list[tuple[str, bytes]]) -> tuple[int | None, str | None]:
    """(schema id, GUID) a record names: in its ``__value_schema_id`` header (byte 1 +
    GUID, or byte 0 + id), else in the 5-byte prefix; as the dual deserializer reads."""
    named = [v for k, v in headers if k == VALUE_SCHEMA_ID_HEADER and v]
    if named:
        value = named[-1]
        if value[0] == 1 and len(value) == 17:
            return None, str(uuid.UUID(bytes=bytes(value[1:])))
        if value[0] == 0 and len(value) == 5:
            return struct.unpack(">I", value[1:5])[0], None
        return None, None
    if raw is not None and len(raw) >= 5 and raw[0] == 0:
        return struct.unpack(">I", raw[1:5])[0], None
    return None, None


def _decode(message: Any, topic: str, values: Any, keys: Any) -> ConsumedRecord:
    raw = message.value()
    headers = list(message.headers() or [])
    schema_id, guid = _writer(raw, headers)
    try:
        key = keys(message.key(), SerializationContext(topic, MessageField.KEY, headers))
    except SerializationError:
        key = message.key()
    try:
        value = values(raw, SerializationContext(topic, MessageField.VALUE, headers))
    except SerializationError as exc:
        return ConsumedRecord(
            message.partition(),
            message.offset(),
            key,
            schema_id,
            None,
            f"cannot decode: {exc}",
            guid,
        )
    return ConsumedRecord(message.partition(), message.offset(), key, schema_id, value, None, guid)
