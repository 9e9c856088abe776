"""Framed Avro records decoded with a reader schema: the writer's schema comes from the
registry by the id in the record's header, and fastavro resolves it to the reader's."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumers.errors import PipelineError
from consumers.wire import WireFormatError, split

__all__ = ["Decoder", "RegistryOutage", "Rejected"]


class RegistryOutage(PipelineError):
    """The registry could not answer (unreachable, refusing, failing): no record is
    judged by it, so nothing is quarantined and the run stops before committing."""


def _transport(exc: BaseException) -> bool:
    """An error of the registry client's HTTP transport (it vendors httpx)."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0].startswith("httpx")


class Rejected(Exception):
    """A record that goes to quarantine; the message is the reason."""


class Decoder:
    """Decodes framed records to dicts of the reader schema; writers are cached by id."""

    def __init__(self, registry: SchemaRegistryClient, reader: Any) -> None:
        self.registry = registry
        self.reader = reader
        self._writers: dict[int, Any] = {}

    def writer(self, schema_id: int) -> Any:
        parsed = self._writers.get(schema_id)
        if parsed is None:
            try:
                schema = self.registry.get_schema(schema_id)
            except SchemaRegistryError as exc:
                status = exc.http_status_code
                if status >= 500 or status in (401, 403):
                    raise RegistryOutage(
                        f"silver: the Schema Registry answered {status} ({exc.error_message}) "
                        f"for schema id {schema_id}: nothing was committed; run again when "
                        "it answers"
                    ) from exc
                raise Rejected(f"unknown schema id: {schema_id} ({exc.error_message})") from exc
            except Exception as exc:
                if not _transport(exc):
                    raise
                raise RegistryOutage(
                    f"silver: the Schema Registry cannot be reached ({type(exc).__name__}) "
                    f"for schema id {schema_id}: nothing was committed; run again when it is back"
                ) from exc
            text = schema.schema_str
            if text is None:
                raise Rejected(f"unknown schema id: {schema_id} (the registry sent no schema)")
            parsed = self._writers[schema_id] = fastavro.parse_schema(json.loads(text))
        return parsed

    def decode(self, raw: bytes | None) -> dict[str, Any]:
        """The record, or :class:`Rejected` saying why it cannot be read."""
        try:
            schema_id, body = split(raw)
        except WireFormatError as exc:
            raise Rejected(f"bad header: {exc}") from exc
        writer = self.writer(schema_id)
        buffer = io.BytesIO(body)
        try:
            record: Any = fastavro.schemaless_reader(buffer, writer, self.reader)
        except Exception as exc:  # fastavro raises several types on bad bytes
            raise Rejected(f"undecodable body: {type(exc).__name__}: {exc}") from exc
        if buffer.tell() != len(body):
            raise Rejected(f"undecodable body: {len(body) - buffer.tell()} trailing bytes")
        if not isinstance(record, dict):
            raise Rejected("undecodable body: not a record")
        return record
