"""Where simulated events go without Kafka: Avro container files and JSON lines."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

from fastavro.write import Writer

from producer.contract.catalog import SchemaFile
from producer.errors import InvalidOption
from producer.events import FlashSaleEvent

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


class AvroFileSink:
    """An Avro object container file (deflate), readable by any Avro tool."""

    def __init__(self, path: Path, schema: SchemaFile, sync_marker: bytes | None = None) -> None:
        self._file = path.open("wb")
        # A fixed sync marker (fastavro draws a random one) keeps reruns byte-identical.
        self._writer = Writer(
            self._file, schema.parsed, codec="deflate", sync_marker=sync_marker or b""
        )
        self._version = schema.version

    def write(self, event: FlashSaleEvent) -> None:
        self._writer.write(event.to_avro(self._version))

    def close(self) -> None:
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
