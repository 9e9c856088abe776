"""Confluent-framed Avro values, produced fast and byte-identical to ``AvroSerializer``.

``AvroSerializer`` encodes the first record: it looks the schema up under its
subject (so an unregistered schema fails there, with ``auto.register.schemas`` off)
and frames it with the registered id. Every later record is framed with the same
header and encoded by fastavro with the same parsed schema, which skips the
serializer's per-record work (subject resolution, rule checks, id framing). Decimal
values, which fastavro converts in Python on every call, are converted once per
distinct value (prices repeat: a product keeps its price) by fastavro itself and
handed to it as their Avro bytes, which it writes as they are.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import fastavro

from producer.events import FlashSaleEvent

__all__ = ["FramedAvroEncoder", "FramedKeyEncoder", "decimal_encoder"]

_CACHE_LIMIT = 1_000_000


def decimal_encoder(precision: int, scale: int) -> Callable[[Decimal], bytes]:
    """Decimal -> its Avro ``bytes`` payload (two's-complement unscaled value), cached."""
    logical = fastavro.parse_schema(
        {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
    )
    plain = fastavro.parse_schema("bytes")
    cache: dict[Decimal, bytes] = {}

    def encode(value: Decimal) -> bytes:
        found = cache.get(value)
        if found is None:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, logical, value)
            buffer.seek(0)
            payload = fastavro.schemaless_reader(buffer, plain, None)
            assert isinstance(payload, bytes)
            found = payload
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[value] = found
        return found

    return encode


def _decimal_fields(schema: Any) -> dict[str, tuple[int, int]]:
    """Top-level fields holding a bytes-decimal (directly or in a union): (precision, scale)."""
    out = {}
    for field in schema.get("fields", []):
        branches = field["type"] if isinstance(field["type"], list) else [field["type"]]
        for branch in branches:
            if (
                isinstance(branch, dict)
                and branch.get("logicalType") == "decimal"
                and branch.get("type") == "bytes"
            ):
                out[field["name"]] = (int(branch["precision"]), int(branch.get("scale", 0)))
    return out


class FramedAvroEncoder:
    """Encodes events of one schema version in the Confluent wire format."""

    def __init__(
        self,
        parsed_schema: Any,
        definition: Any,
        version: int,
        first: Callable[[FlashSaleEvent], bytes],
    ) -> None:
        self._schema = parsed_schema
        self._version = version
        self._first = first
        self._header: bytes | None = None
        self._decimals = [
            (name, decimal_encoder(p, s)) for name, (p, s) in _decimal_fields(definition).items()
        ]

    @property
    def header(self) -> bytes | None:
        """Magic byte and schema id, once the first record resolved them."""
        return self._header

    def __call__(self, event: FlashSaleEvent) -> bytes:
        header = self._header
        if header is None:
            data = self._first(event)
            self._header = data[:5]
            return data
        datum = event.to_avro(self._version)
        for name, encode in self._decimals:
            value = datum[name]
            if value is not None:
                datum[name] = encode(value)
        buffer = io.BytesIO()
        buffer.write(header)
        fastavro.schemaless_writer(buffer, self._schema, datum)
        return buffer.getvalue()


class FramedKeyEncoder:
    """Avro ``string`` keys in the Confluent wire format, each distinct key encoded once."""

    def __init__(self, first: Callable[[str], bytes]) -> None:
        self._first = first
        self._header: bytes | None = None
        self._schema = fastavro.parse_schema("string")
        self._cache: dict[str, bytes] = {}

    def __call__(self, key: str) -> bytes:
        found = self._cache.get(key)
        if found is not None:
            return found
        if self._header is None:
            found = self._first(key)
            self._header = found[:5]
        else:
            buffer = io.BytesIO()
            buffer.write(self._header)
            fastavro.schemaless_writer(buffer, self._schema, key)
            found = buffer.getvalue()
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found
