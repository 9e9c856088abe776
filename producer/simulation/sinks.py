"""Where simulated events go without Kafka: Avro container files and JSON lines."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

from fastavro.write import Writer

from producer.contract.catalog import SchemaFile
from producer.errors import InvalidOption
from producer.events import FlashSaleEvent
from producer.kafka.encoding import EventEncoder

__all__ = ["AvroFileSink", "EventSink", "JsonLinesSink", "event_json", "open_sink"]


class EventSink(Protocol):
    def write(self, event: FlashSaleEvent) -> None: ...

    def close(self) -> None: ...


def event_json(event: FlashSaleEvent, schema: SchemaFile) -> dict[str, Any]:
    """The event as a record of ``schema`` in JSON-ready values: decimals as exact
    strings, time as ISO-8601 UTC, a field the event does not carry at its default."""
    return _json_datum(event, schema.version, _defaults(schema))


def _json_datum(event: FlashSaleEvent, version: int, defaults: dict[str, Any]) -> dict[str, Any]:
    carried = event.to_avro(version)
    datum = {name: carried.get(name, default) for name, default in defaults.items()}
    for name, value in datum.items():
        if isinstance(value, Decimal):
            datum[name] = str(value)
    datum["timestamp"] = (
        datetime.fromtimestamp(event.timestamp_ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
    return datum


def _defaults(schema: SchemaFile) -> dict[str, Any]:
    """Every field of ``schema`` in order, with its default (None where it has none)."""
    fields = schema.definition["fields"] if isinstance(schema.definition, dict) else []
    return {f["name"]: f.get("default") for f in fields}


class JsonLinesSink:
    def __init__(self, path: Path, schema: SchemaFile) -> None:
        self._out: IO[str] = path.open("w", encoding="utf-8")
        self._version = schema.version
        self._defaults = _defaults(schema)

    def write(self, event: FlashSaleEvent) -> None:
        datum = _json_datum(event, self._version, self._defaults)
        self._out.write(json.dumps(datum, separators=(",", ":")))
        self._out.write("\n")

    def close(self) -> None:
        self._out.close()


# The uncompressed size at which fastavro's Writer ends a block (its sync_interval).
BLOCK_BYTES = 16_000


@dataclass
class _Block:
    """Records already encoded, as ``Writer.write_block`` reads a block (the attributes
    of fastavro's read.Block it uses): their count and their bytes, uncompressed."""

    num_records: int
    bytes_: io.BytesIO


class AvroFileSink:
    """An Avro object container file (deflate), readable by any Avro tool.

    Records are encoded by :class:`~producer.kafka.encoding.EventEncoder` (the
    producer's encoder, about five times faster than fastavro's writer on the event;
    it imports no Kafka client) and handed to fastavro's Writer a block at a time, cut
    where the Writer would cut them: the file is byte for byte what the Writer writes
    record by record, its header, compression and sync markers the Writer's own.
    """

    def __init__(self, path: Path, schema: SchemaFile, sync_marker: bytes | None = None) -> None:
        self._file = path.open("wb")
        # A fixed sync marker (fastavro draws a random one) and the schema as its file
        # has it keep reruns byte-identical: the header written from the parsed schema
        # ordered its keys by the process's string hashing, so differed run to run.
        self._writer = Writer(
            self._file, schema.definition, codec="deflate", sync_marker=sync_marker or b""
        )
        self._encode = EventEncoder(schema.parsed, schema.definition, schema.version)
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, event: FlashSaleEvent) -> None:
        body = self._encode(event)
        self._pending.append(body)
        self._size += len(body)
        if self._size >= BLOCK_BYTES:
            self._dump()

    def _dump(self) -> None:
        if self._pending:
            data = io.BytesIO(b"".join(self._pending))
            self._writer.write_block(_Block(len(self._pending), data))
            self._pending.clear()
            self._size = 0

    def close(self) -> None:
        self._dump()
        self._writer.flush()
        self._file.close()


def open_sink(path: Path, schema: SchemaFile, run_id: str = "") -> EventSink:
    """A sink for ``path``, chosen by its suffix (.avro or .jsonl).

    ``run_id`` names the run (scenario, seed, worker): an Avro file's sync marker is
    derived from it, so the same run writes the same file.
    """
    if path.suffix == ".avro":
        marker = hashlib.sha256(f"flashsale:{run_id}".encode()).digest()[:16]
        return AvroFileSink(path, schema, sync_marker=marker)
    if path.suffix == ".jsonl":
        return JsonLinesSink(path, schema)
    raise InvalidOption("out", "the file must end in .avro or .jsonl", path)
