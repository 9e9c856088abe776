"""Confluent-framed Avro values, produced fast and byte-identical to ``AvroSerializer``.

``AvroSerializer`` encodes the first record: it looks the schema up under its
subject (so an unregistered schema fails there, with ``auto.register.schemas`` off)
and frames it with the registered id. Every later record is framed with the same
header and encoded here, without the serializer's per-record work (subject
resolution, rule checks, building a dict per record).

Why not fastavro for every record: at ~10µs per record of the 18-field event, it is
the producer's wall (measured in ``bench produce``). An Avro record's binary form is
the concatenation of its fields' encodings, in schema order (Avro specification,
"Binary Encoding"), and most of an event's fields repeat from record to record (the
product, its category and price, the currency, the enum symbols). So
:class:`RecordWriter` compiles a record schema once into one small writer per field
and joins their output; the writers of repeating kinds of values keep what they
wrote. It covers the types the contract uses (null, boolean, int, long, float,
double, string, bytes, enum, bytes-decimal and unions of null with one of those);
for any other schema the encoder is fastavro itself.

:class:`EventEncoder` writes an event's unframed body this way (also what ``flashsale
simulate`` puts in Avro files); :class:`FramedAvroEncoder` puts the header before it.

fastavro stays the reference: a value the fast writers do not take (a ``datetime``
for a timestamp, a wrong type) is encoded by fastavro instead, which writes it or
raises its own error, and tests compare both byte for byte on generated records.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from operator import call, itemgetter
from typing import Any

import fastavro

from producer.events import FlashSaleEvent, avro_positions

__all__ = [
    "EventEncoder",
    "FramedAvroEncoder",
    "FramedKeyEncoder",
    "RecordWriter",
]

Writer = Callable[[Any], bytes]

# Event fields whose text is new on (nearly) every record: not worth keeping.
DISTINCT_FIELDS = ("event_id", "session_id")

_CACHE_LIMIT = 200_000
_MIN_LONG, _MAX_LONG = -(1 << 63), (1 << 63) - 1
# A value the fast writers do not take: fastavro decides (it writes it, or says why not).
_NOT_TAKEN = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)


def _varint(n: int) -> bytes:
    """Unsigned base-128 varint, least significant group first."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Zigzag varints of 0..4095 (lengths, quantities, enum indexes, small ints), and the
# first two bytes of every varint of 15 bits or more by its low 14 bits: a timestamp's
# varint is those two bytes and the varint of its high bits, which change slowly.
_SMALL = [_varint(i << 1) for i in range(4096)]
_LOW14 = [bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80)) for n in range(1 << 14)]


class _Kept(dict[Any, bytes]):
    """What ``encode`` wrote, by value: a found value costs one C-level dict lookup."""

    def __init__(self, encode: Writer) -> None:
        super().__init__()
        self.encode = encode

    def __missing__(self, value: Any) -> bytes:
        found = self.encode(value)
        if len(self) >= _CACHE_LIMIT:  # bounded: start again rather than grow
            self.clear()
        self[value] = found
        return found


def _memoized(encode: Writer) -> Writer:
    """``encode`` that keeps what it wrote, for values that repeat (bounded)."""
    return _Kept(encode).__getitem__


_high_varint = _memoized(_varint)


def _long(value: Any) -> bytes:
    """Avro ``int`` or ``long``: a zigzag varint (fastavro does not range-check an ``int``)."""
    if type(value) is not int:
        raise TypeError("not an int")
    if 0 <= value < 4096:
        return _SMALL[value]
    if not _MIN_LONG <= value <= _MAX_LONG:
        raise OverflowError("out of the long range")
    n = (value << 1) ^ (value >> 63)
    if n < 1 << 14:
        return _varint(n)
    return _LOW14[n & 0x3FFF] + _high_varint(n >> 14)


def _length(n: int) -> bytes:
    return _SMALL[n] if n < 4096 else _long(n)


def _string(value: Any) -> bytes:
    if type(value) is not str:
        raise TypeError("not a str")
    data = value.encode()
    return _length(len(data)) + data


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise TypeError("not bytes")
    return _length(len(value)) + value


def _boolean(value: Any) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise TypeError("not a bool")


def _null(value: Any) -> bytes:
    if value is not None:
        raise TypeError("not None")
    return b""


def _packed(fmt: str) -> Writer:
    pack = struct.Struct(fmt).pack

    def write(value: Any) -> bytes:
        if type(value) not in (int, float):
            raise TypeError("not a number")
        return pack(value)

    return write


def _decimal(precision: int, scale: int, null_index: int | None = None) -> Writer:
    """Avro bytes-decimal: converted by fastavro once per distinct value, then kept.

    Kept by the decimal's text, not its value: ``1.5`` and ``1.500`` are equal, but
    fastavro writes the first at scale 2 and refuses the second. ``null_index``: the
    decimal is a branch of a union with null, at the other index.
    """
    null = None if null_index is None else _SMALL[null_index]
    branch = b"" if null_index is None else _SMALL[1 - null_index]
    logical = fastavro.parse_schema(
        {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
    )
    plain = fastavro.parse_schema("bytes")

    def convert(text: str) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, logical, Decimal(text))
        buffer.seek(0)
        payload = fastavro.schemaless_reader(buffer, plain, None)
        assert isinstance(payload, bytes)
        return branch + _bytes(payload)

    by_text = _memoized(convert)

    def write(value: Any) -> bytes:
        if type(value) is not Decimal:
            if value is None and null is not None:
                return null
            raise TypeError("not a Decimal")
        return by_text(str(value))

    return write


def _enum(symbols: Sequence[str]) -> Writer:
    # symbols.index compares with ==, as fastavro does, so str enums are taken too.
    return _memoized(lambda value: _long(list(symbols).index(value)))


def _nullable(write: Writer, null_index: int) -> Writer:
    null, other = _SMALL[null_index], _SMALL[1 - null_index]

    def write_union(value: Any) -> bytes:
        return null if value is None else other + write(value)

    return write_union


_PRIMITIVES: dict[str, Writer] = {
    "null": _null,
    "boolean": _boolean,
    "int": _long,
    "long": _long,
    "float": _packed("<f"),
    "double": _packed("<d"),
    "string": _string,
    "bytes": _bytes,
}


def _is_decimal(schema: Any) -> bool:
    return (
        isinstance(schema, dict)
        and schema.get("type") == "bytes"
        and schema.get("logicalType") == "decimal"
    )


def _kept_whole(schema: Any) -> bool:
    """Whether equal values of this type always have the same encoding, so can be kept."""
    if isinstance(schema, dict):
        if schema.get("type") == "enum":
            return True
        if "logicalType" in schema:
            return False
        schema = schema.get("type")
    return schema in ("string", "bytes")


def _writer(schema: Any, repeats: bool) -> Writer | None:
    """The fast writer of one field's type, or None when it is not one we cover.

    ``repeats``: the field's strings and bytes repeat, so keeping what was written
    pays (a product id, a currency); not for values that are new on every record (an
    event id), where a cache would only cost.
    """
    if isinstance(schema, str):
        writer = _PRIMITIVES.get(schema)
        if repeats and schema in ("string", "bytes"):
            return _memoized(_PRIMITIVES[schema])
        return writer
    if isinstance(schema, list):
        if len(schema) != 2 or "null" not in schema:
            return None
        null_index = schema.index("null")
        branch = schema[1 - null_index]
        if _is_decimal(branch):
            return _decimal(int(branch["precision"]), int(branch.get("scale", 0)), null_index)
        inner = _writer(branch, repeats=False)
        if inner is None:
            return None
        union = _nullable(inner, null_index)
        # Equal strings, bytes and symbols are written alike: keep the union's bytes whole.
        return _memoized(union) if repeats and _kept_whole(branch) else union
    if isinstance(schema, dict):
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if kind == "enum":
            return _enum(schema["symbols"])
        if _is_decimal(schema):
            return _decimal(int(schema["precision"]), int(schema.get("scale", 0)))
        if kind == "long" and logical in ("timestamp-millis", "timestamp-micros"):
            return _long  # an int as is; any other value (a datetime) goes to fastavro
        if logical is None and isinstance(kind, str):
            return _writer(kind, repeats)
    return None


class RecordWriter:
    """One record schema compiled into field writers; encodes rows of field values."""

    def __init__(self, writers: list[Writer]) -> None:
        self.writers = writers

    @classmethod
    def compile(cls, definition: Any, distinct: Iterable[str] = ()) -> RecordWriter | None:
        """The writer of a record schema (JSON form), or None if a field's type is not covered.

        ``distinct`` names the fields whose values rarely repeat (ids, times).
        """
        if not isinstance(definition, dict) or definition.get("type") != "record":
            return None
        distinct = set(distinct)
        writers = []
        for field in definition["fields"]:
            writer = _writer(field["type"], repeats=field["name"] not in distinct)
            if writer is None:
                return None
            writers.append(writer)
        return cls(writers)

    def encode(self, values: Sequence[Any]) -> bytes:
        """The Avro body of a record whose field values are ``values``, in schema order.

        Raises one of TypeError, ValueError, AttributeError, KeyError, IndexError or
        OverflowError for a value it does not take.
        """
        return b"".join([write(value) for write, value in zip(self.writers, values, strict=True)])


def _single(position: int) -> Callable[[FlashSaleEvent], Sequence[Any]]:
    return lambda event: (event[position],)


def _constant(data: bytes) -> Writer:
    return lambda _value: data


def _with_defaults(fields: list[dict[str, Any]], writers: list[Writer]) -> list[Writer] | None:
    """The field writers, with each field the event does not carry (a newer schema's
    optional field) writing its default's bytes; None if such a field has no default
    the writers can encode (fastavro then writes each record, or says why it cannot)."""
    out = list(writers)
    for i, position in enumerate(avro_positions(f["name"] for f in fields)):
        if position is not None:
            continue
        if "default" not in fields[i]:
            return None
        try:
            constant = writers[i](fields[i]["default"])
        except _NOT_TAKEN:
            return None
        out[i] = _constant(constant)
    return out


class EventEncoder:
    """Events of one schema version as Avro binary bodies, after ``prefix`` (none by
    default): the simulator's Avro files hold the bare bodies, the producer's records
    the header and the body (:class:`FramedAvroEncoder`).

    The fast field writers encode an event when they cover the schema and take every
    value; otherwise fastavro encodes it (or raises its own error)."""

    def __init__(
        self, parsed_schema: Any, definition: Any, version: int, prefix: bytes | None = b""
    ) -> None:
        self._schema = parsed_schema
        self._version = version
        # None until a subclass knows it: each record then goes to _start.
        self._prefix = prefix
        record = RecordWriter.compile(definition, distinct=DISTINCT_FIELDS)
        # The event's values in schema order, and each one's writer: one C-level pass.
        self._values: Callable[[FlashSaleEvent], Sequence[Any]] | None = None
        self._writers: tuple[Writer, ...] = ()
        if record is not None:
            writers = _with_defaults(definition["fields"], record.writers)
            if writers is not None:
                # A field the event does not carry reads position 0 and writes its default.
                positions = [
                    p or 0 for p in avro_positions(f["name"] for f in definition["fields"])
                ]
                self._values = (
                    itemgetter(*positions) if len(positions) > 1 else _single(positions[0])
                )
                self._writers = tuple(writers)

    def __call__(self, event: FlashSaleEvent) -> bytes:
        # One call per event in the producer's loop: the prefix and the body are joined
        # here, not by a wrapper around it.
        prefix = self._prefix
        if prefix is None:
            return self._start(event)
        values = self._values
        if values is not None:
            try:
                return prefix + b"".join(map(call, self._writers, values(event)))
            except _NOT_TAKEN:
                pass  # fastavro writes it, or raises its own error
        buffer = io.BytesIO()
        buffer.write(prefix)
        fastavro.schemaless_writer(buffer, self._schema, event.to_avro(self._version))
        return buffer.getvalue()

    def _start(self, event: FlashSaleEvent) -> bytes:
        """The record of ``event`` while the prefix is not known (a subclass's)."""
        raise NotImplementedError


class FramedAvroEncoder(EventEncoder):
    """Encodes events of one schema version in the Confluent wire format."""

    def __init__(
        self,
        parsed_schema: Any,
        definition: Any,
        version: int,
        first: Callable[[FlashSaleEvent], bytes],
    ) -> None:
        super().__init__(parsed_schema, definition, version, prefix=None)
        self._first = first

    @property
    def header(self) -> bytes | None:
        """Magic byte and schema id, once the first record resolved them."""
        return self._prefix

    @property
    def schema_id(self) -> int | None:
        """The registered id written in every record, once the first record resolved it."""
        return int.from_bytes(self._prefix[1:5], "big") if self._prefix else None

    def _start(self, event: FlashSaleEvent) -> bytes:
        """The first record, as ``first`` serializes it: its 5 bytes frame every later one."""
        data = self._first(event)
        self._prefix = data[:5]
        return data


class FramedKeyEncoder:
    """Avro ``string`` keys in the Confluent wire format, each distinct key encoded once."""

    def __init__(self, first: Callable[[str], bytes]) -> None:
        self._first = first
        self._header: bytes | None = None
        self._cache: dict[str, bytes] = {}

    def __call__(self, key: str) -> bytes:
        found = self._cache.get(key)
        if found is not None:
            return found
        if self._header is None:
            found = self._first(key)
            self._header = found[:5]
        else:
            found = self._header + _string(key)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found
