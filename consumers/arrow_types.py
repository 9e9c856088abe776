"""Arrow columns for the reader schema's fields: how Silver stores decoded records."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

# Columns renamed on the way into Silver: "timestamp" is a reserved word in some SQL
# dialects, and the Gold SQL runs unchanged on DataFusion, DuckDB and Spark.
RENAMED = {"timestamp": "event_time"}


def arrow_type(avro_type: Any) -> tuple[pa.DataType, bool]:
    """(Arrow type, nullable) of an Avro field type."""
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(branches) != 1:
            raise ValueError(f"unions other than [null, T] are not stored in Silver: {avro_type}")
        return arrow_type(branches[0])[0], True
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        kind = avro_type.get("type")
        if logical == "decimal":
            return pa.decimal128(int(avro_type["precision"]), int(avro_type.get("scale", 0))), False
        if logical == "timestamp-millis":
            return pa.timestamp("ms", tz="UTC"), False
        if logical == "timestamp-micros":
            return pa.timestamp("us", tz="UTC"), False
        if kind == "enum":
            return pa.string(), False
        return arrow_type(kind)
    simple = {
        "string": pa.string(),
        "int": pa.int32(),
        "long": pa.int64(),
        "boolean": pa.bool_(),
        "double": pa.float64(),
        "float": pa.float32(),
        "bytes": pa.binary(),
    }
    if avro_type not in simple:
        raise ValueError(f"Avro type {avro_type!r} is not stored in Silver")
    return simple[avro_type], False


def reader_arrow_schema(definition: Any, extra: list[pa.Field]) -> pa.Schema:
    fields = []
    for field in definition["fields"]:
        kind, nullable = arrow_type(field["type"])
        # Every column is nullable: Delta cannot add a non-nullable column to a table later.
        del nullable
        fields.append(pa.field(RENAMED.get(field["name"], field["name"]), kind, nullable=True))
    return pa.schema(fields + extra)
