"""The Confluent wire formats, as the dual deserializer reads them.

- The prefix: magic byte 0, a 4-byte big-endian schema id, then the Avro body.
- The header: the value is the bare Avro body, and the record's ``__value_schema_id``
  header says the writer: byte 1 then the schema's 16-byte GUID, or byte 0 then a
  4-byte id (confluent-kafka's ``SchemaId.guid_to_bytes`` / ``id_to_bytes``).

A record with the header is read by it; without, by the prefix (Confluent's
``dual_schema_id_deserializer`` does the same).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MAGIC = 0
MAGIC_GUID = 1
HEADER = 5
VALUE_SCHEMA_ID_HEADER = "__value_schema_id"

Headers = Sequence[tuple[str, bytes | None]] | None


class WireFormatError(ValueError):
    """The bytes are not a Confluent-framed record."""


@dataclass(frozen=True)
class WriterRef:
    """Which writer schema a record names: by id, or by GUID (the header format)."""

    schema_id: int | None = None
    guid: str | None = None

    @property
    def kind(self) -> str:
        return "schema guid" if self.guid is not None else "schema id"

    @property
    def value(self) -> str:
        return str(self.guid if self.guid is not None else self.schema_id)

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


def split(raw: bytes | None) -> tuple[int, bytes]:
    """(schema id, Avro body) of a framed record."""
    if raw is None:
        raise WireFormatError("empty value (a tombstone)")
    if len(raw) < HEADER:
        raise WireFormatError(f"value of {len(raw)} bytes is shorter than the 5-byte header")
    if raw[0] != MAGIC:
        raise WireFormatError(f"bad magic byte {raw[0]} (expected 0)")
    (schema_id,) = struct.unpack(">I", raw[1:HEADER])
    return schema_id, raw[HEADER:]


def schema_id_of(raw: bytes | None) -> int | None:
    """The schema id in the header, or None when there is no valid header."""
    try:
        return split(raw)[0]
    except WireFormatError:
        return None


def header_ref(headers: Headers) -> WriterRef | None:
    """The writer named by the ``__value_schema_id`` header (the last one, if several),
    or None when the record has none."""
    found = [v for k, v in headers or () if k == VALUE_SCHEMA_ID_HEADER]
    if not found:
        return None
    value = found[-1] or b""
    if len(value) == 1 + 16 and value[0] == MAGIC_GUID:
        return WriterRef(guid=str(uuid.UUID(bytes=bytes(value[1:]))))
    if len(value) == HEADER and value[0] == MAGIC:
        return WriterRef(schema_id=struct.unpack(">I", value[1:HEADER])[0])
    raise WireFormatError(
        f"{VALUE_SCHEMA_ID_HEADER} header of {len(value)} bytes is neither byte 1 and a "
        "16-byte GUID nor byte 0 and a 4-byte id"
    )


def locate(raw: bytes | None, headers: Headers = None) -> tuple[WriterRef, bytes]:
    """(the writer, the Avro body) of a record in either wire format."""
    ref = header_ref(headers)
    if ref is None:
        schema_id, body = split(raw)
        return WriterRef(schema_id=schema_id), body
    if raw is None:
        raise WireFormatError("empty value (a tombstone)")
    return ref, raw


def as_prefixed(
    raw: bytes | None, headers: Headers, schema_id_of: Callable[[str], int | None]
) -> bytes:
    """The bytes of the same content (writer, Avro body) in the prefix format: magic
    byte 0, the writer's 4-byte schema id, the body. A record without the header is
    returned as it is; one with it names its writer by id, or by GUID, which
    ``schema_id_of`` turns into the registry's id. A GUID without an id (None) keeps
    its own framing: magic byte 1, the GUID's 16 bytes, the body."""
    ref = header_ref(headers)
    if ref is None:
        if raw is None:
            raise WireFormatError("empty value (a tombstone)")
        return raw
    if raw is None:
        raise WireFormatError("empty value (a tombstone)")
    schema_id = ref.schema_id if ref.guid is None else schema_id_of(ref.guid)
    if schema_id is None:
        return bytes([MAGIC_GUID]) + uuid.UUID(str(ref.guid)).bytes + raw
    return struct.pack(">bI", MAGIC, schema_id) + raw


def value_headers(row: dict[str, Any]) -> list[tuple[str, bytes | None]]:
    """The ``__value_schema_id`` header of a Bronze row framed by it (``schema_id_in``
    "header"), rebuilt from the GUID or id Bronze kept; none for a prefix-framed row.
    A header Bronze could not read comes back empty, so decoding names it."""
    if row.get("schema_id_in") != "header":
        return []
    if row.get("schema_guid") is not None:
        value = bytes([MAGIC_GUID]) + uuid.UUID(str(row["schema_guid"])).bytes
    elif row.get("schema_id") is not None:
        value = struct.pack(">bI", MAGIC, int(row["schema_id"]))
    else:
        value = b""
    return [(VALUE_SCHEMA_ID_HEADER, value)]
