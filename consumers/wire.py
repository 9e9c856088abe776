"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, the Avro body."""

from __future__ import annotations

import struct

MAGIC = 0
HEADER = 5


class WireFormatError(ValueError):
    """The bytes are not a Confluent-framed record."""


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
