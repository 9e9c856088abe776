"""Avro bodies of one flat record schema, read a column at a time.

fastavro reads one record per call. Silver reads batches of tens of thousands of
records of the same few writers, so this reads a batch of one writer field by field
instead: each step (a varint, a length, a union branch, the bytes of a string) is one
numpy operation over every record of the batch, and each field ends as an Arrow
array. The result is what fastavro, resolving the writer to the reader, then
``pa.Table.from_pylist`` would give for the same records.

Only what it reads exactly is read here. A record it is not sure of (a body cut short
or with bytes left over, a varint of ten bytes, a union branch or enum index out of
range, an enum symbol the reader lacks, an int beyond 32 bits, a boolean byte other
than 0 or 1, text that is not UTF-8) is marked not read, and the caller reads it as
before, record by record: a record is decoded as fastavro decodes it, or not here.
Writers with anything but primitive, enum and fixed fields and unions of them
(nested records, arrays, maps), or that resolve in ways not listed in :func:`plan`,
get no plan: their records are all left to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["Plan", "Unsupported", "binary_buffers", "plan", "unread"]

Rows = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
# A varint of a long is at most 10 bytes, the tenth holding bit 63 alone; any longer
# one, or a tenth byte of more bits, is left to fastavro.
_VARINT_BYTES = 10
_PAD = 16  # zero bytes after the data, so a read past a body's end stays in the array
_INT32 = (-(2**31), 2**31 - 1)
# The bytes one binary array can hold (its offsets are 32-bit): a batch whose bodies
# are larger is not read here.
OFFSET_LIMIT = 2**31
_ARROW = {
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
    "enum": pa.string(),
    "fixed": pa.binary(),
}
# A writer's primitive -> the reader's primitives it is read as (Avro's promotions that
# keep the value exactly as fastavro returns it).
_PROMOTIONS = {
    "int": ("int", "long"),
    "long": ("long",),
    "float": ("float", "double"),
    "double": ("double",),
    "boolean": ("boolean",),
    "bytes": ("bytes",),
    "string": ("string",),
}


class Unsupported(Exception):
    """A schema, a resolution or a batch this module does not read."""


@dataclass(frozen=True)
class _Kind:
    """A field type: a primitive, an enum or fixed (``name``, ``symbols``, ``size``),
    or a union of ``branches``."""

    type: str
    name: str = ""
    symbols: tuple[str, ...] = ()
    default: str | None = None
    size: int = 0
    branches: tuple[_Kind, ...] = ()


@dataclass(frozen=True)
class _Step:
    """One writer field: its type, the reader field it fills (None: skipped), and for
    each writer branch (a non-union is one branch) that is an enum, the reader's index
    of each writer symbol (-1: left to fastavro)."""

    kind: _Kind
    target: str | None
    symbols: tuple[tuple[int, ...] | None, ...]


@dataclass(frozen=True)
class Plan:
    """How the records of one writer read as the reader's, field by field."""

    steps: tuple[_Step, ...]
    # Reader fields in order: (name, Arrow type, whether a writer field fills it, default).
    fields: tuple[tuple[str, pa.DataType, bool, Any], ...]
    symbols: dict[str, pa.Array]  # the reader's symbols of each enum field

    def read(
        self, data: npt.NDArray[np.uint8], starts: Rows, ends: Rows
    ) -> tuple[dict[str, pa.Array], Mask]:
        """The bodies ``data[starts[i]:ends[i]]`` as the reader's columns (by field
        name, one row per body), and which rows were read (False: left to the caller;
        the columns' values in those rows mean nothing). Unsupported when the
        batch's bodies are too large for one Arrow array (:data:`OFFSET_LIMIT`)."""
        cursor = _Cursor(data, starts, ends)
        n = len(starts)
        columns: dict[str, _Column] = {}
        for step in self.steps:
            column = None
            if step.target is not None:
                column = columns[step.target] = _Column(n)
            cursor.field(step, column)
        clean = cursor.clean & (cursor.pos == cursor.end)
        arrays = {}
        for name, kind, written, default in self.fields:
            column = columns.get(name)
            if not written or column is None:
                arrays[name] = pa.array([default] * n, kind)
                continue
            array, bad = column.array(kind, cursor, self.symbols.get(name))
            clean &= ~bad
            arrays[name] = array
        return arrays, clean


def plan(writer: Any, reader: Any) -> Plan | None:
    """How records of ``writer`` read as ``reader`` (both JSON, without logical
    types), or None when this module does not read them (see the module's doc)."""
    try:
        return _plan(writer, reader)
    except Unsupported:
        return None


def unread(writer: Any, reader: Any) -> str | None:
    """Why records of ``writer`` are not read here as ``reader`` (None: they are)."""
    try:
        _plan(writer, reader)
    except Unsupported as exc:
        return str(exc)
    return None


def _plan(writer: Any, reader: Any) -> Plan:
    if not (_is_record(writer) and _is_record(reader)):
        raise Unsupported("not records")
    if _fullname(writer, "") != _fullname(reader, ""):
        raise Unsupported("records of other names")
    if not reader["fields"]:
        raise Unsupported("a record of no fields")
    space = {"writer": writer.get("namespace", ""), "reader": reader.get("namespace", "")}
    named: dict[str, dict[str, _Kind]] = {"writer": {}, "reader": {}}
    wanted: dict[str, _Kind] = {}
    fields = []
    for field in reader["fields"]:
        if field.get("aliases"):
            raise Unsupported("a field named by an alias")
        kind = _kind(field["type"], space["reader"], named["reader"])
        wanted[field["name"]] = kind
    written = {f["name"] for f in writer["fields"]}
    symbols = {}
    for field in reader["fields"]:
        kind = wanted[field["name"]]
        value = _value_kind(kind)
        if value is None:
            raise Unsupported("a field that is always null")
        if value.type == "enum":
            symbols[field["name"]] = pa.array(value.symbols, pa.string())
        default = None
        if field["name"] not in written:
            if "default" not in field:
                raise Unsupported("a reader field the writer lacks, without a default")
            default = _default(kind, field["default"])
        fields.append((field["name"], _ARROW[value.type], field["name"] in written, default))
    steps = []
    for field in writer["fields"]:
        kind = _kind(field["type"], space["writer"], named["writer"])
        target = wanted.get(field["name"])
        branches = kind.branches if kind.type == "union" else (kind,)
        if target is None:
            steps.append(_Step(kind, None, (None,) * len(branches)))
            continue
        maps = []
        for branch in branches:
            found = _resolve(branch, target)
            maps.append(_symbol_map(branch, found) if found is not None else None)
        steps.append(_Step(kind, field["name"], tuple(maps)))
    return Plan(tuple(steps), tuple(fields), symbols)


def _is_record(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "record"


def _fullname(schema: dict[str, Any], space: str) -> str:
    name = str(schema["name"])
    if "." in name:
        return name
    space = str(schema.get("namespace", space) or "")
    return f"{space}.{name}" if space else name


def _kind(schema: Any, space: str, named: dict[str, _Kind]) -> _Kind:
    """A field type as a :class:`_Kind` (``named``: the enums and fixed types defined
    so far, by full name, for a type named again)."""
    if isinstance(schema, list):
        branches = tuple(_kind(b, space, named) for b in schema)
        if any(b.type == "union" for b in branches):
            raise Unsupported("a union in a union")
        return _Kind("union", branches=branches)
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _Kind(schema)
        full = schema if "." in schema else (f"{space}.{schema}" if space else schema)
        if full in named:
            return named[full]
        raise Unsupported(f"type {schema}")
    if not isinstance(schema, dict):
        raise Unsupported("a type that is not JSON Avro")
    kind = schema.get("type")
    if kind in _PRIMITIVES:
        return _Kind(str(kind))
    if kind == "enum":
        full = _fullname(schema, space)
        default = schema.get("default")
        symbols = tuple(str(s) for s in schema["symbols"])
        found = named[full] = _Kind(
            "enum", full, symbols, None if default is None else str(default)
        )
        return found
    if kind == "fixed":
        full = _fullname(schema, space)
        found = named[full] = _Kind("fixed", full, size=int(schema["size"]))
        return found
    if isinstance(kind, (dict, list, str)):
        return _kind(kind, space, named)  # {"type": <a type>}
    raise Unsupported(f"type {kind}")


def _value_kind(kind: _Kind) -> _Kind | None:
    """The kind of a reader field's values: itself, or the one branch of a union that
    is not null (None: only null)."""
    if kind.type != "union":
        return None if kind.type == "null" else kind
    values = [b for b in kind.branches if b.type != "null"]
    if len(values) > 1:
        raise Unsupported("a union of several value types")
    return values[0] if values else None


def _default(kind: _Kind, default: Any) -> Any:
    """A reader default as its column holds it (a union's default is its first
    branch's)."""
    first = kind.branches[0] if kind.type == "union" else kind
    if default is None:
        if first.type != "null":
            raise Unsupported("a null default of a type that is not null")
        return None
    if first.type == "null":
        raise Unsupported("a default of another branch than the first")
    if first.type in ("bytes", "fixed"):
        raise Unsupported("a default of bytes")
    if first.type == "enum" and default not in first.symbols:
        raise Unsupported("an enum default that is no symbol")
    return default


def _resolve(branch: _Kind, target: _Kind) -> _Kind | None:
    """The reader kind a writer branch reads as (None: it is null, and the reader
    takes null), as fastavro resolves it: a reader union takes the first branch that
    matches. Unsupported when it does not read here."""
    options = target.branches if target.type == "union" else (target,)
    for option in options:
        if branch.type == "null" or option.type == "null":
            if branch.type == option.type:
                return None
            continue
        if branch.type == "enum" and option.type == "enum":
            if branch.name != option.name:
                raise Unsupported("enums of other names")
            return option
        if branch.type == "fixed" and option.type == "fixed":
            if branch.name != option.name or branch.size != option.size:
                raise Unsupported("fixed types that differ")
            return option
        if option.type in _PROMOTIONS.get(branch.type, ()):
            if (branch.type, option.type) == ("float", "double"):
                raise Unsupported("a float read as a double")  # fastavro's float32 value
            return option
    raise Unsupported(f"a {branch.type} read as {target.type}")


def _symbol_map(branch: _Kind, target: _Kind) -> tuple[int, ...] | None:
    """For an enum, the reader's index of each writer symbol (the reader's default for
    one it lacks; -1 when it has none)."""
    if branch.type != "enum":
        return None
    fallback = target.symbols.index(target.default) if target.default is not None else -1
    return tuple(
        target.symbols.index(s) if s in target.symbols else fallback for s in branch.symbols
    )


class _Column:
    """A reader field's values as they are read, one slot per row."""

    def __init__(self, n: int) -> None:
        self.valid = np.zeros(n, np.bool_)
        self.values: npt.NDArray[Any] | None = None  # numbers, booleans or enum indices
        self.starts = np.zeros(n, np.int64)  # bytes and text: where each value starts
        self.lengths = np.zeros(n, np.int64)

    def _packed(self, cursor: _Cursor) -> pa.Array:
        """The bytes of each row's value, copied next to each other (a binary array;
        a row without one is empty). Rows and their values lie in the data in order,
        so the data read as [value 0, what lies between, value 1, ...] is a binary
        array, and Arrow takes every other value out of it."""
        n = len(self.valid)
        first = np.where(self.valid, self.starts, cursor.origin)
        bounds = np.empty(2 * n, np.int64)
        bounds[0::2] = first
        bounds[1::2] = first + np.where(self.valid, self.lengths, 0)
        if n == 0:
            return pa.array([], pa.binary())
        if bounds[-1] >= OFFSET_LIMIT:
            raise Unsupported("a batch of over 2 GiB")
        spread = pa.Array.from_buffers(
            pa.binary(),
            2 * n - 1,
            [None, pa.py_buffer(bounds.astype(np.int32)), pa.py_buffer(cursor.data)],
        )
        return spread.take(pa.array(np.arange(0, 2 * n, 2, dtype=np.int64)))

    def numbers(self, n: int, dtype: Any) -> npt.NDArray[Any]:
        if self.values is None:
            self.values = np.zeros(n, dtype)
        return self.values

    def array(
        self, kind: pa.DataType, cursor: _Cursor, symbols: pa.Array | None
    ) -> tuple[pa.Array, Mask]:
        """The column as Arrow (``kind``), and the rows whose value it cannot hold
        (text that is not UTF-8), which are left to fastavro."""
        n = len(self.valid)
        bad = np.zeros(n, np.bool_)
        mask = ~self.valid
        if symbols is not None:
            indices = pa.array(self.numbers(n, np.int64), pa.int64(), mask=mask)
            return symbols.take(indices), bad
        if pa.types.is_binary(kind) or pa.types.is_string(kind):
            array = pa.Array.from_buffers(
                kind, n, [_validity(self.valid), *self._packed(cursor).buffers()[1:]]
            )
            if pa.types.is_string(kind):
                bad = _not_utf8(array)
            return array, bad
        if self.values is None:  # no row has a value
            return pa.nulls(n, kind), bad
        return pa.array(self.values, kind, mask=mask), bad


def _validity(valid: Mask) -> pa.Buffer | None:
    """An Arrow validity bitmap of ``valid`` (None when every row is valid)."""
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _not_utf8(array: pa.Array) -> Mask:
    """The rows of a text column that are not UTF-8 (fastavro refuses them)."""
    bad = np.zeros(len(array), np.bool_)
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        raw = array.view(pa.binary())
        for i, value in enumerate(raw.to_pylist()):
            if value is None:
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                bad[i] = True
    return bad


class _Cursor:
    """Where each row's body is read next, and whether it still reads cleanly."""

    def __init__(self, data: npt.NDArray[np.uint8], starts: Rows, ends: Rows) -> None:
        self.data = np.concatenate([data, np.zeros(_PAD, np.uint8)])
        self.origin = starts.astype(np.int64)  # where each row's body starts
        self.pos = self.origin.copy()
        self.end = ends.astype(np.int64)
        self.clean = self.pos <= self.end

    def live(self, at: Rows) -> Rows:
        """The rows of ``at`` still read cleanly."""
        return at[self.clean[at]]

    def field(self, step: _Step, column: _Column | None) -> None:
        """Reads the writer field ``step`` of every clean row into ``column``."""
        at = np.flatnonzero(self.clean).astype(np.int64)
        branches = step.kind.branches if step.kind.type == "union" else (step.kind,)
        if step.kind.type == "union":
            chosen = self.long(at)
            self.fail(at[(chosen < 0) | (chosen >= len(branches))])
            live = self.clean[at]
            at, chosen = at[live], chosen[live]
            groups = [at[chosen == b] for b in range(len(branches))]
        else:
            groups = [at]
        for branch, rows, symbols in zip(branches, groups, step.symbols, strict=True):
            if rows.size:
                self.value(branch, rows, symbols, column)

    def value(
        self,
        branch: _Kind,
        at: Rows,
        symbols: tuple[int, ...] | None,
        column: _Column | None,
    ) -> None:
        """Reads a value of ``branch`` at rows ``at`` into ``column`` (an enum's index
        mapped to the reader's by ``symbols``)."""
        kind = branch.type
        if kind == "null":
            return
        n = len(self.pos)
        if kind in ("bytes", "string", "fixed"):
            if kind == "fixed":
                size = np.full(len(at), branch.size, np.int64)
            else:
                size = self.long(at)
                self.fail(at[size < 0])
            starts = self.pos[at].copy()
            self.pos[at] += np.maximum(size, 0)
            self.fail(at[self.pos[at] > self.end[at]])
            if column is not None:
                ok = self.clean[at]
                at = at[ok]
                column.starts[at], column.lengths[at], column.valid[at] = starts[ok], size[ok], True
            return
        if kind in ("float", "double", "boolean"):
            width = {"float": 4, "double": 8, "boolean": 1}[kind]
            starts = self.pos[at]
            self.pos[at] += width
            self.fail(at[self.pos[at] > self.end[at]])
            raw = self.data[starts[:, None] + np.arange(width)]
            if kind == "boolean":
                flag = raw[:, 0]
                self.fail(at[flag > 1])
                values: npt.NDArray[Any] = flag.astype(np.bool_)
                dtype: Any = np.bool_
            else:
                dtype = "<f4" if kind == "float" else "<f8"
                values = np.ascontiguousarray(raw).view(dtype).ravel()
            if column is not None:
                ok = self.clean[at]
                column.numbers(n, dtype)[at[ok]] = values[ok]
                column.valid[at[ok]] = True
            return
        number = self.long(at)
        if kind == "int":
            self.fail(at[(number < _INT32[0]) | (number > _INT32[1])])
        if kind == "enum":
            self.fail(at[(number < 0) | (number >= len(branch.symbols))])
            if symbols is not None:
                index = np.asarray(symbols, np.int64)[np.clip(number, 0, len(symbols) - 1)]
                self.fail(at[index < 0])
                number = index
        if column is not None:
            ok = self.clean[at]
            column.numbers(n, np.int64)[at[ok]] = number[ok]
            column.valid[at[ok]] = True

    def fail(self, at: Rows) -> None:
        self.clean[at] = False

    def long(self, at: Rows) -> Rows:
        """The zig-zag varint at each row of ``at`` (the cursor moves past it); a row
        whose varint runs past its body or beyond 64 bits fails."""
        start = self.pos[at]
        byte = self.data[start]  # most varints are one byte: read for every row at once
        value = (byte & 0x7F).astype(np.uint64)
        length = np.ones(len(at), np.int64)
        live = np.flatnonzero(byte >= 0x80)
        for k in range(1, _VARINT_BYTES if live.size else 1):
            byte = self.data[start[live] + k]
            if k == _VARINT_BYTES - 1:
                self.fail(at[live[byte > 1]])
            value[live] |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)
            more = byte >= 0x80
            length[live[~more]] = k + 1
            live = live[more]
            if not live.size:
                break
        self.fail(at[live])
        self.pos[at] = start + length
        self.fail(at[self.pos[at] > self.end[at]])
        half = (value >> np.uint64(1)).astype(np.int64)
        return half ^ -((value & np.uint64(1)).astype(np.int64))


def binary_buffers(
    values: pa.Array,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """(where each value starts, where it ends, the bytes) of a binary array, without
    copying the bytes (a null value is empty)."""
    width = np.int64 if pa.types.is_large_binary(values.type) else np.int32
    _, offsets_buffer, data_buffer = values.buffers()
    window = slice(values.offset, values.offset + len(values) + 1)
    offsets = np.asarray(np.frombuffer(offsets_buffer, width)[window], np.int64)
    data = np.zeros(0, np.uint8) if data_buffer is None else np.frombuffer(data_buffer, np.uint8)
    return offsets[:-1], offsets[1:], data
