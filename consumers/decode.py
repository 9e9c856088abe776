"""Framed Avro records decoded with a reader schema: the writer's schema comes from the
registry by the id in the record's header, and fastavro resolves it to the reader's.

Before a job decodes anything it asks :meth:`Decoder.refuse_unreadable` whether its
reader can read every writer schema in the batch, judged by Apache Avro's own
checker (``avro.compatibility``, the checker the producer's contract code and the
local registry use): a reader that cannot read one would send every record of it to
quarantine, so the job refuses to start instead, naming the writer and the field.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any, TypeVar

import avro.errors
import avro.schema
import fastavro
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
)
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumers import columnar
from consumers.columnar import binary_buffers
from consumers.errors import PipelineError, ServiceUnreachable
from consumers.wire import HEADER, MAGIC, Headers, WireFormatError, WriterRef, locate

T = TypeVar("T")

__all__ = [
    "Decoder",
    "RegistryOutage",
    "Rejected",
    "UnreadableWriter",
    "plain_columns",
    "why_unreadable",
]


class RegistryOutage(ServiceUnreachable):
    """The registry could not answer (unreachable, refusing, failing): no record is
    judged by it, so nothing is quarantined and the run stops before committing."""


def _transport(exc: BaseException) -> bool:
    """An error of the registry client's HTTP transport (it vendors httpx)."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0].startswith("httpx")


class Rejected(Exception):
    """A record that goes to quarantine; the message is the reason."""


class UnreadableWriter(PipelineError):
    """The job's reader schema cannot read a writer schema of the records to process;
    nothing was processed."""


def why_unreadable(reader: str, writer: str) -> str | None:
    """Why data written with the schema ``writer`` (JSON text) cannot be read with
    ``reader`` (JSON text), field by field, as Avro's checker judges; None if it can."""
    reader_schema, writer_schema = avro.schema.parse(reader), avro.schema.parse(writer)
    result = ReaderWriterCompatibilityChecker().get_compatibility(  # type: ignore[no-untyped-call]
        reader_schema, writer_schema
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return None
    kinds = set(result.incompatibilities)
    reasons = []
    if SchemaIncompatibilityType.reader_field_missing_default_value in kinds:
        # The message of a missing default is the field's name (Avro merges messages
        # and locations into two sets, so a field that exists is a name found there).
        names = {f.name for f in getattr(reader_schema, "fields", [])}
        reasons += [
            f"field '{m}' has no default and the writer lacks it"
            for m in sorted(result.messages)
            if m in names
        ]
    others = sorted(m for m in result.messages if not any(m in r for r in reasons))
    for location in sorted(result.locations):
        field = _field_at(reader_schema, location)
        if field and not any(f"'{field}'" in r for r in reasons):
            reasons.append(f"field '{field}' cannot be read ({'; '.join(others)})")
    if not reasons:
        reasons.append("; ".join(others) or "incompatible")
    return "; ".join(reasons)


def _field_at(schema: Any, location: str) -> str | None:
    """The reader's top-level field at Avro's location ``/fields/N/...``."""
    parts = location.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "fields" and parts[1].isdigit():
        fields = getattr(schema, "fields", [])
        index = int(parts[1])
        return str(fields[index].name) if index < len(fields) else None
    return None


class Decoder:
    """Decodes framed records to dicts of the reader schema; writers are cached by id."""

    def __init__(self, registry: SchemaRegistryClient, reader: Any, reader_text: str) -> None:
        self.registry = registry
        self.reader = reader  # parsed by fastavro
        self.reader_text = reader_text  # its JSON text, for Avro's reader/writer check
        self._writers: dict[WriterRef, Any] = {}
        self._readable: set[int] = set()  # writer ids the reader was found to read
        self._ids: dict[tuple[str, str], int | None] = {}  # (GUID, subject) -> id
        # A prefix's 5 bytes -> (parsed writer, reader), None: not read by the short path.
        self._by_prefix: dict[bytes, tuple[Any, Any] | None] = {}
        definition = self._definition = json.loads(reader_text)
        # The reader read without its logical types (see decode_plain), and those types.
        self.plain_reader = fastavro.parse_schema(_plain(definition))
        self.logical = {f["name"]: _logical(f["type"]) for f in definition["fields"]}
        # A prefix's 5 bytes -> (plain writer, reader or None), None: not read plainly.
        self._plain_by_prefix: dict[bytes, tuple[Any, Any] | None] = {}
        # A writer id -> how its records read a column at a time, None: not that way.
        self._plans: dict[int, columnar.Plan | None] = {}

    def refuse_unreadable(
        self, schema_ids: list[int], job: str, reader_name: str, subject: str
    ) -> None:
        """Raise :class:`UnreadableWriter` when the reader cannot read one of the writer
        schemas ``schema_ids`` (ids the registry does not know are left to decoding,
        which quarantines their records). ``subject``: the topic's value subject, whose
        version of the writer the message names."""
        for schema_id in sorted(set(schema_ids) - self._readable):
            try:
                text = self._text(schema_id)
            except Rejected:
                continue
            try:
                why = why_unreadable(self.reader_text, text)
            except (avro.errors.AvroException, ValueError) as exc:
                why = f"the schemas cannot be compared: {exc}"
            if why is not None:
                raise UnreadableWriter(
                    f"{job}: reader schema {reader_name} cannot read writer id {schema_id} "
                    f"({self._versions(schema_id, subject)}): {why}; nothing was processed"
                )
            self._readable.add(schema_id)

    def _versions(self, schema_id: int, subject: str) -> str:
        """``subject vN``: the version of ``subject`` that is the schema ``schema_id``, or
        of every subject that has it (a registry shares one id among subjects)."""
        try:
            found = self.registry.get_schema_versions(schema_id)
        except SchemaRegistryError:
            return "in no subject"
        own = [v for v in found if v.subject == subject] or found
        return ", ".join(f"{v.subject} v{v.version}" for v in own) or "in no subject"

    def _text(self, writer: int | WriterRef) -> str:
        """The writer schema's text, by id or GUID; :class:`Rejected` when the registry
        does not know it, :class:`RegistryOutage` when it cannot say."""
        ref = writer if isinstance(writer, WriterRef) else WriterRef(schema_id=writer)
        schema_id = str(ref)  # for messages: "schema id 3", "schema guid ..."
        try:
            schema = _asking(
                lambda: (
                    self.registry.get_schema_by_guid(ref.guid)
                    if ref.guid is not None
                    else self.registry.get_schema(int(ref.schema_id or 0))
                ),
                f"for {schema_id}",
            )
        except SchemaRegistryError as exc:
            raise Rejected(f"unknown {ref.kind}: {ref.value} ({exc.error_message})") from exc
        if schema.schema_str is None:
            raise Rejected(f"unknown {ref.kind}: {ref.value} (the registry sent no schema)")
        return schema.schema_str

    def schema_id_of(self, guid: str, subject: str) -> int | None:
        """The registry id of the writer schema with GUID ``guid``: the id under which
        ``subject`` (the topic's value subject) holds it, soft-deleted versions too
        (Confluent's answer by GUID carries no id). None when ``subject`` holds no
        schema of that GUID; :class:`RegistryOutage` when the registry cannot say."""
        key = (guid, subject)
        if key in self._ids:
            return self._ids[key]
        try:
            text = self._text(WriterRef(guid=guid))
        except Rejected:
            return None  # an unknown GUID is not cached: it may be registered later
        try:
            found = _asking(
                lambda: self.registry.lookup_schema(subject, Schema(text, "AVRO"), deleted=True),
                f"looking schema guid {guid} up in {subject}",
            )
        except SchemaRegistryError:
            return None
        same = found.guid in (None, "", guid)  # a registry without GUIDs: the text decides
        self._ids[key] = found.schema_id if same else None
        return self._ids[key]

    def writer(self, writer: int | WriterRef) -> Any:
        ref = writer if isinstance(writer, WriterRef) else WriterRef(schema_id=writer)
        parsed = self._writers.get(ref)
        if parsed is None:
            text = self._text(ref)
            parsed = self._writers[ref] = fastavro.parse_schema(json.loads(text))
        return parsed

    def read_columns(
        self, values: pa.Array, at: npt.NDArray[np.int64]
    ) -> tuple[pa.Table | None, npt.NDArray[np.int64]]:
        """The prefix-framed values of ``values`` (a binary array) at rows ``at`` read a
        column at a time (:mod:`consumers.columnar`), as :meth:`decode_plain` reads
        them: (the reader's columns without logical types, None when no row was read;
        the rows they are). Only
        the records of a writer :meth:`decode_plain` reads, and that read exactly this
        way, are read; every other row is left to the caller."""
        starts, ends, data = binary_buffers(values)
        valid = values.is_valid().to_numpy(zero_copy_only=False)
        at = at[valid[at] & (ends[at] - starts[at] >= HEADER)]
        at = at[data[starts[at]] == MAGIC]
        ids = np.zeros(len(at), np.int64)
        for k in range(1, HEADER):
            ids = (ids << 8) | data[starts[at] + k]
        parts, read = [], []
        for schema_id in np.unique(ids).tolist():
            if schema_id not in self._plans:
                self._plans[schema_id] = self._plan(schema_id)
            found = self._plans[schema_id]
            if found is None:
                continue
            rows = at[ids == schema_id]
            try:
                columns, clean = found.read(data, starts[rows] + HEADER, ends[rows])
            except columnar.Unsupported:  # more than one Arrow array holds: left
                continue
            parts.append(pa.table(columns).filter(pa.array(clean)))
            read.append(rows[clean])
        if not parts:
            return None, np.zeros(0, np.int64)
        return pa.concat_tables(parts), np.concatenate(read)

    def _plan(self, schema_id: int) -> columnar.Plan | None:
        """How the records of writer ``schema_id`` read a column at a time, or None
        when :meth:`decode_plain` would not read them (or :mod:`consumers.columnar`
        cannot)."""
        definition = self._plain_definition(schema_id)
        if definition is None:
            return None
        return columnar.plan(_plain(definition), _plain(self._definition))

    def _plain_definition(self, schema_id: int) -> dict[str, Any] | None:
        """The definition of writer ``schema_id`` when its records read plainly: a
        record the registry knows, whose fields of logical types are the reader's;
        None otherwise."""
        try:
            text = self._text(schema_id)
        except Rejected:
            return None
        definition = json.loads(text)
        if not isinstance(definition, dict) or not _same_logical(self._definition, definition):
            return None
        return definition

    def decode_prefixed(self, raw: bytes | None) -> dict[str, Any] | None:
        """The record of a prefix-framed value read as :meth:`decode` reads it, by the
        shortest path (the writer looked up by the prefix's bytes, the body read in
        place); None when the value is anything but a record that reads cleanly (a bad
        frame, an unknown writer, an undecodable body), which :meth:`decode` then
        reads again to say why."""
        return self._read_prefixed(raw, self._by_prefix, self._logical_writer)

    def decode_plain(self, raw: bytes | None) -> dict[str, Any] | None:
        """:meth:`decode_prefixed` without logical types: a decimal comes as its bytes
        (big-endian two's complement of the unscaled value), a timestamp as its number
        (:func:`plain_columns` makes them columns of their types), which fastavro reads
        about twice as fast. Only for a writer whose fields of logical types are the
        reader's (so the plain values mean what the reader's types say); None for any
        other record, which :meth:`decode_prefixed` or :meth:`decode` read instead."""
        return self._read_prefixed(raw, self._plain_by_prefix, self._plain_writer)

    def _read_prefixed(
        self,
        raw: bytes | None,
        found: dict[bytes, tuple[Any, Any] | None],
        find: Callable[[bytes], tuple[Any, Any] | None],
    ) -> dict[str, Any] | None:
        """The record of a prefix-framed ``raw`` read with the (writer, reader) that
        ``found`` holds for its prefix (``find`` tells it the first time; None: not by
        this path), or None when it does not read cleanly."""
        if raw is None or len(raw) < HEADER or raw[0] != MAGIC:
            return None
        prefix = raw[:HEADER]
        try:
            schemas = found[prefix]
        except KeyError:
            schemas = found[prefix] = find(raw)
        if schemas is None:
            return None
        buffer = io.BytesIO(raw)
        buffer.seek(HEADER)
        try:
            record: Any = fastavro.schemaless_reader(buffer, *schemas)
        except Exception:  # fastavro raises several types on bad bytes: decode() says
            return None
        if buffer.tell() != len(raw) or not isinstance(record, dict):
            return None
        return record

    def _logical_writer(self, raw: bytes) -> tuple[Any, Any] | None:
        """(the writer of the prefix of ``raw``, the reader), or None when the
        registry does not know it."""
        try:
            return self.writer(int.from_bytes(raw[1:HEADER], "big")), self.reader
        except Rejected:
            return None

    def _plain_writer(self, raw: bytes) -> tuple[Any, Any] | None:
        """(the writer of the prefix of ``raw`` without its logical types, the reader
        to resolve it to: None when they read alike, field for field), or None when
        its records are not read plainly (unknown, or a logical type not the reader's)."""
        definition = self._plain_definition(int.from_bytes(raw[1:HEADER], "big"))
        if definition is None:
            return None
        alike = _annotations(definition) == _annotations(self._definition)
        return fastavro.parse_schema(_plain(definition)), None if alike else self.plain_reader

    def decode(self, raw: bytes | None, headers: Headers = None) -> dict[str, Any]:
        """The record in either wire format (the writer named by the
        ``__value_schema_id`` header, else by the prefix), or :class:`Rejected` saying
        why it cannot be read."""
        try:
            ref, body = locate(raw, headers)
        except WireFormatError as exc:
            raise Rejected(f"bad header: {exc}") from exc
        writer = self.writer(ref)
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


def _plain(schema: Any) -> Any:
    """``schema`` (JSON) without its logical types: each is read as its Avro type."""
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


def _logical(kind: Any) -> tuple[str, int] | None:
    """(logical type, decimal scale) of a field type (or of the non-null branch of a
    union), None when it has none."""
    if isinstance(kind, list):
        found = [_logical(b) for b in kind]
        return next((f for f in found if f is not None), None)
    if isinstance(kind, dict) and "logicalType" in kind:
        return str(kind["logicalType"]), int(kind.get("scale", 0))
    if isinstance(kind, dict) and isinstance(kind.get("type"), (dict, list)):
        return _logical(kind["type"])
    return None


def _annotations(kind: Any) -> Any:
    """What a schema or a field type says a value is and how it is read (JSON), docs
    and defaults aside: two schemas of equal annotations read every body alike."""
    if isinstance(kind, dict):
        return {k: _annotations(v) for k, v in kind.items() if k not in ("doc", "default")}
    if isinstance(kind, list):
        return [_annotations(v) for v in kind]
    return kind


def _same_logical(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    """Whether every reader field of a logical type is read plainly as that type: the
    writer has the field by that name with the same type (logical annotations
    included), or lacks it and the reader's default is null. No field may be named by
    an alias (the match here is by name)."""
    written = {f["name"]: f for f in writer.get("fields", [])}
    for field in reader.get("fields", []):
        if _logical(field["type"]) is None:
            continue
        if field.get("aliases"):
            return False
        other = written.get(field["name"])
        if other is None:
            if field.get("default", "absent") is not None:
                return False
        elif _annotations(other["type"]) != _annotations(field["type"]):
            return False
    return True


def plain_columns(table: pa.Table, logical: dict[str, tuple[str, int] | None]) -> pa.Table:
    """``table`` of records :meth:`Decoder.decode_plain` read (decimals as binary,
    timestamps as int64 columns) with those columns of their logical types: decimals
    as ``decimal128(38, scale)``, timestamps in UTC. ValueError for a decimal beyond
    38 digits."""
    for i, name in enumerate(table.column_names):
        kind = logical.get(name)
        if kind is None:
            continue
        if kind[0] == "decimal":
            table = table.set_column(i, name, _decimals(table[name], kind[1]))
        elif kind[0] in _TIMESTAMPS:
            table = table.set_column(i, name, table[name].cast(_TIMESTAMPS[kind[0]]))
    return table


_TIMESTAMPS = {
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
}
_DECIMAL_LIMIT = 10**38


def _decimals(column: pa.ChunkedArray, scale: int) -> pa.Array:
    """Avro decimal bytes (big-endian two's complement) as ``decimal128(38, scale)``."""
    values = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    starts, ends, data = binary_buffers(values)
    lengths = ends - starts
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    if lengths.size and int(lengths.max()) > 8:
        return _wide_decimals(values, scale)
    # Up to 8 bytes: the unscaled value fits an int64, read for every row at once.
    padded = np.concatenate([data, np.zeros(8, np.uint8)])
    unscaled = np.zeros(len(values), np.uint64)
    for k in range(8):
        more = lengths > k
        byte = padded[np.where(more, starts + k, 0)].astype(np.uint64)
        unscaled = np.where(more, (unscaled << np.uint64(8)) | byte, unscaled)
    negative = (lengths > 0) & (padded[starts] >= 0x80) & (lengths < 8)
    signed = unscaled.view(np.int64).copy()
    signed[negative] -= np.left_shift(1, 8 * lengths[negative]).astype(np.int64)
    signed[~valid] = 0
    pairs = np.empty((len(values), 2), np.int64)  # little-endian 128 bits: low, high
    pairs[:, 0] = signed
    pairs[:, 1] = signed >> 63
    kind = pa.decimal128(38, scale)
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(kind, len(values), [validity, pa.py_buffer(pairs)])


def _wide_decimals(values: pa.Array, scale: int) -> pa.Array:
    """:func:`_decimals` of values of more than 8 bytes, read one by one."""
    unscaled = [
        None if b is None else int.from_bytes(b, "big", signed=True) for b in values.to_pylist()
    ]
    present = [u for u in unscaled if u is not None]
    if present and max(abs(min(present)), abs(max(present))) >= _DECIMAL_LIMIT:
        raise ValueError("a decimal of more than 38 digits")
    data = pa.py_buffer(b"".join((u or 0).to_bytes(16, "little", signed=True) for u in unscaled))
    kind = pa.decimal128(38, scale)
    if len(present) == len(unscaled):
        return pa.Array.from_buffers(kind, len(unscaled), [None, data])
    # A boolean array's bits, offset 0, are a validity bitmap.
    validity = pa.array([u is not None for u in unscaled], pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(kind, len(unscaled), [validity, data])


def _asking(call: Callable[[], T], what: str) -> T:
    """``call()``, a request to the registry: a :class:`RegistryOutage` when the registry
    cannot answer it (a 5xx, refused credentials, unreachable), said as ``what`` was
    asked; any other :class:`SchemaRegistryError` (the registry does not know it) is
    the caller's to judge."""
    try:
        return call()
    except SchemaRegistryError as exc:
        status = exc.http_status_code
        if status >= 500 or status in (401, 403):
            raise RegistryOutage(
                f"silver: the Schema Registry answered {status} ({exc.error_message}) "
                f"{what}: nothing was committed; run again when it answers"
            ) from exc
        raise
    except Exception as exc:
        if not _transport(exc):
            raise
        raise RegistryOutage(
            f"silver: the Schema Registry cannot be reached ({type(exc).__name__}) "
            f"{what}: nothing was committed; run again when it is back"
        ) from exc
