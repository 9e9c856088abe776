"""Avro bodies read a column at a time (consumers.columnar) against fastavro reading
them one by one, resolving the writer to the reader, then ``pa.Table.from_pylist``:
every row read must hold exactly fastavro's values, every body fastavro refuses must
be left unread, and every writer this module cannot resolve exactly gets no plan.
Pure logic: numpy and fastavro, no registry (the Decoder's own use is at the end,
its registry's answers given by id)."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.columnar import Plan, binary_buffers, plan, unread
from consumers.decode import _plain
from producer.contract.catalog import bundled_schemas_dir
from tests.unit.consumers.test_decode_plain import decoder, framed, simulated, writer_text

SCHEMAS = bundled_schemas_dir()
READER = _plain(json.loads((SCHEMAS / "flash_sale_event-v3.avsc").read_text()))
INT32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


def plain_writer(version: int) -> dict[str, Any]:
    return _plain(json.loads(writer_text(version)))


def field_values(kind: Any) -> st.SearchStrategy[Any]:
    """Any value of a (plain) field type."""
    if isinstance(kind, list):
        return st.one_of([field_values(k) for k in kind])
    if isinstance(kind, dict) and kind["type"] == "enum":
        return st.sampled_from(kind["symbols"])
    if isinstance(kind, dict):
        return field_values(kind["type"])
    return {
        "null": st.none(),
        "string": TEXT,
        "bytes": st.binary(max_size=20),
        "int": INT32,
        "long": st.integers(-(2**63), 2**63 - 1),
        "boolean": st.booleans(),
        "double": st.floats(allow_nan=False),
        "float": st.floats(width=32, allow_nan=False),
    }[kind]


def records(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f["name"]: field_values(f["type"]) for f in schema["fields"]})


PARSED: dict[str, Any] = {}


def parsed(schema: dict[str, Any]) -> Any:
    text = json.dumps(schema, sort_keys=True)
    if text not in PARSED:
        PARSED[text] = fastavro.parse_schema(json.loads(text))
    return PARSED[text]


def encode(schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed(schema), datum)
    return body.getvalue()


def read(found: Plan, bodies: list[bytes]) -> tuple[pa.Table, np.ndarray]:
    starts, ends, data = binary_buffers(pa.array(bodies, pa.binary()))
    columns, clean = found.read(data, starts, ends)
    return pa.table(columns), clean


def arrow_schema(found: Plan) -> pa.Schema:
    return pa.schema([(name, kind) for name, kind, _, _ in found.fields])


def fastavro_reads(writer: dict[str, Any], reader: dict[str, Any], body: bytes) -> Any:
    """fastavro's record of ``body``, or None when it does not read it cleanly."""
    buffer = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(buffer, parsed(writer), parsed(reader))
    except Exception:
        return None
    return record if buffer.tell() == len(body) else None


def assert_reads_as_fastavro(
    writer: dict[str, Any], reader: dict[str, Any], bodies: list[bytes]
) -> np.ndarray:
    """Every row read holds fastavro's values; which rows were read."""
    found = plan(writer, reader)
    assert found is not None
    table, clean = read(found, bodies)
    expected = []
    for body, ok in zip(bodies, clean, strict=True):
        record = fastavro_reads(writer, reader, body)
        if ok:
            assert record is not None, body
            expected.append(record)
    assert table.schema == arrow_schema(found)  # the reader's types, whatever the batch
    got = table.filter(pa.array(clean))
    assert got.equals(pa.Table.from_pylist(expected, schema=arrow_schema(found)))
    return clean


@pytest.mark.parametrize("version", [1, 2, 3])
def test_the_contracts_simulated_records_read_as_fastavro_reads_them(version: int) -> None:
    bodies = [framed(1, writer_text(version), d)[5:] for d in simulated(version, 400)]
    clean = assert_reads_as_fastavro(plain_writer(version), READER, bodies)
    assert clean.all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_records_of_any_writer_version_read_as_fastavro_reads_them(data: Any) -> None:
    version = data.draw(st.sampled_from([1, 2, 3]))
    writer = plain_writer(version)
    batch = data.draw(st.lists(records(writer), min_size=1, max_size=30))
    clean = assert_reads_as_fastavro(writer, READER, [encode(writer, d) for d in batch])
    assert clean.all()


def damaged(body: bytes, how: str, at: int, byte: int) -> bytes:
    at = at % (len(body) + 1)
    if how == "cut":
        return body[:at]
    if how == "extend":
        return body + bytes([byte])
    if how == "insert":
        return body[:at] + bytes([byte]) + body[at:]
    return body[:at] + bytes([byte]) + body[at + 1 :]  # overwrite


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_damaged_body_is_read_as_fastavro_reads_it_or_left_unread(data: Any) -> None:
    version = data.draw(st.sampled_from([1, 2, 3]))
    writer = plain_writer(version)
    batch = data.draw(st.lists(records(writer), min_size=1, max_size=20))
    bodies = []
    for datum in batch:
        how = data.draw(st.sampled_from(["cut", "extend", "insert", "overwrite", "none"]))
        spot, byte = data.draw(st.integers(0, 400)), data.draw(st.integers(0, 255))
        body = encode(writer, datum)
        bodies.append(body if how == "none" else damaged(body, how, spot, byte))
    assert_reads_as_fastavro(writer, READER, bodies)


V3 = simulated(3, 1)[0]


def v3_body(**changes: Any) -> bytes:
    return framed(1, writer_text(3), {**V3, **changes})[5:]


def test_what_fastavro_refuses_or_this_module_cannot_be_sure_of_is_left_unread() -> None:
    good = v3_body()
    writer = plain_writer(3)
    # event_id's length (1 byte: 36 -> 72 zig-zag) starts the body; 0x01 is -1.
    negative_length = b"\x01" + good[1:]
    # event_id's length written the long way: in ten bytes it is read (as fastavro
    # reads it); in eleven, or ten whose last holds more than bit 63, it is not.
    assert good[0] < 0x80
    ten_bytes = bytes([good[0] | 0x80]) + b"\x80" * 8 + b"\x00" + good[1:]
    assert assert_reads_as_fastavro(writer, READER, [ten_bytes]).all()
    eleven_bytes = bytes([good[0] | 0x80]) + b"\x80" * 9 + b"\x00" + good[1:]
    wide_tenth = bytes([good[0] | 0x80]) + b"\x80" * 8 + b"\x02" + good[1:]
    not_utf8 = v3_body(event_id="\u00e9")
    not_utf8 = not_utf8.replace("\u00e9".encode(), b"\xc3\x28", 1)
    bodies = [good, good + b"\x00", good[:-1], negative_length, eleven_bytes, wide_tenth]
    bodies += [not_utf8, b""]
    found = plan(writer, READER)
    assert found is not None
    _, clean = read(found, bodies)
    assert clean.tolist() == [True] + [False] * 7


def test_union_and_enum_indexes_and_ints_out_of_range_are_left_unread() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "u", "type": ["null", "string"]},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["a", "b"]}},
            {"name": "i", "type": "int"},
            {"name": "f", "type": "boolean"},
        ],
    }
    good = encode(schema, {"u": "x", "e": "b", "i": -5, "f": True})
    assert good[0] == 2  # branch 1 (zig-zag 2), then "x"
    union_index = b"\x04" + good[1:]
    enum_index = good[:3] + b"\x04" + good[4:]  # symbol 2 of two
    big = good[:4] + b"\x80\x80\x80\x80\x20" + good[5:]  # 2**31 zig-zag: beyond int32
    boolean = good[:-1] + b"\x02"
    assert_reads_as_fastavro(schema, schema, [good])
    found = plan(schema, schema)
    assert found is not None
    _, clean = read(found, [good, union_index, enum_index, big, boolean])
    assert clean.tolist() == [True, False, False, False, False]
    # A body cut to nothing, then one whose first value (a fixed) starts where it ends.
    fixed_first = record_of(field("f", FIXED_F), field("i", "int"))
    assert assert_reads_as_fastavro(fixed_first, fixed_first, [b"", b"abc\x02"]).tolist() == [
        False,
        True,
    ]
    # A branch out of range, where the bytes after it would read as the next fields.
    pair = record_of({"name": "u", "type": ["null", "int"]}, {"name": "i", "type": "int"})
    found = plan(pair, pair)
    assert found is not None
    _, clean = read(found, [b"\x02\x02\x02", b"\x04\x02"])
    assert clean.tolist() == [True, False]
    assert fastavro_reads(pair, pair, b"\x04\x02") is None


RESOLVED_WRITER = {
    "type": "record",
    "name": "R",
    "namespace": "n",
    "fields": [
        {"name": "gone", "type": ["null", "string", "long", "double"]},
        {"name": "count", "type": "int"},
        {"name": "ratio", "type": ["null", "double"]},
        {"name": "blob", "type": {"type": "fixed", "name": "F", "size": 3}},
        {"name": "again", "type": "F"},
        {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["x", "new", "y"]}},
        {"name": "flag", "type": "boolean"},
        {"name": "level", "type": "float"},
        {"name": "text", "type": "string"},
        {"name": "maybe_kind", "type": ["null", "K"]},
    ],
}
RESOLVED_READER = {
    "type": "record",
    "name": "R",
    "namespace": "n",
    "fields": [
        {"name": "text", "type": ["null", "string"]},
        {"name": "count", "type": "long"},
        {
            "name": "kind",
            "type": {"type": "enum", "name": "K", "symbols": ["y", "x", "z"], "default": "z"},
        },
        {"name": "ratio", "type": ["null", "double"]},
        {"name": "blob", "type": {"type": "fixed", "name": "F", "size": 3}},
        {"name": "again", "type": "F"},
        {"name": "flag", "type": "boolean"},
        {"name": "level", "type": "float"},
        {"name": "added", "type": "string", "default": "none"},
        {"name": "maybe", "type": ["null", "int"], "default": None},
        {"name": "maybe_kind", "type": ["null", "K"]},
    ],
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "gone": st.one_of(st.none(), TEXT, st.integers(-(2**63), 2**63 - 1), st.floats()),
                "count": INT32,
                "ratio": st.one_of(st.none(), st.floats(allow_nan=False)),
                "blob": st.binary(min_size=3, max_size=3),
                "again": st.binary(min_size=3, max_size=3),
                "kind": st.sampled_from(["x", "new", "y"]),
                "flag": st.booleans(),
                "level": st.floats(width=32, allow_nan=False),
                "text": TEXT,
                "maybe_kind": st.one_of(st.none(), st.sampled_from(["x", "new", "y"])),
            }
        ),
        min_size=1,
        max_size=25,
    )
)
def test_a_writer_resolves_to_the_reader_as_fastavro_resolves_it(batch: list[Any]) -> None:
    """A skipped field of a union of four, an int read as a long, an enum symbol the
    reader lacks (its default), fixed types named again, a field the writer lacks."""
    bodies = [encode(RESOLVED_WRITER, d) for d in batch]
    clean = assert_reads_as_fastavro(RESOLVED_WRITER, RESOLVED_READER, bodies)
    assert clean.all()


def test_an_enum_symbol_the_reader_lacks_without_a_default_is_left_unread() -> None:
    reader = json.loads(json.dumps(RESOLVED_READER))
    del reader["fields"][2]["type"]["default"]
    base = {"gone": None, "count": 1, "ratio": None, "blob": b"abc", "again": b"def"}
    datum = {**base, "flag": True, "level": 1.5, "text": "t", "maybe_kind": None}
    bodies = [encode(RESOLVED_WRITER, {**datum, "kind": k}) for k in ("x", "new", "y")]
    found = plan(RESOLVED_WRITER, reader)
    assert found is not None
    table, clean = read(found, bodies)
    assert clean.tolist() == [True, False, True]
    assert fastavro_reads(RESOLVED_WRITER, reader, bodies[1]) is None
    assert table["kind"].to_pylist()[::2] == ["x", "y"]


def record_of(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields)}


def field(name: str, kind: Any, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **more}


ENUM_E = {"type": "enum", "name": "E", "symbols": ["x"]}
FIXED_F = {"type": "fixed", "name": "F", "size": 3}
UNREAD = [
    # nested records, arrays and maps are not read here
    (
        record_of(field("a", record_of(field("b", "int"), name="S"))),
        record_of(field("a", record_of(field("b", "int"), name="S"))),
        "type record",
    ),
    (
        record_of(field("a", {"type": "array", "items": "int"})),
        record_of(field("a", {"type": "array", "items": "int"})),
        "type array",
    ),
    (
        record_of(field("a", {"type": "map", "values": "int"})),
        record_of(field("a", {"type": "map", "values": "int"})),
        "type map",
    ),
    (record_of(field("a", "int")), record_of(field("a", "Unknown")), "type Unknown"),
    (record_of(field("a", "int")), record_of(field("a", 5)), "a type that is not JSON Avro"),
    (record_of(field("a", "int")), record_of(field("a", {"type": 5})), "type 5"),
    (record_of(field("a", ["null", ["int"]])), record_of(field("a", "int")), "a union in a union"),
    (record_of(field("a", "int")), record_of(), "a record of no fields"),
    ("int", record_of(field("a", "int")), "not records"),
    # a reader field the writer lacks: without a default, or with one it cannot take
    (
        record_of(field("a", "int")),
        record_of(field("b", "int")),
        "a reader field the writer lacks, without a default",
    ),
    (
        record_of(field("a", "int")),
        record_of(field("a", "int"), field("b", "int", default=None)),
        "a null default of a type that is not null",
    ),
    (
        record_of(field("a", "int")),
        record_of(field("a", "int"), field("b", "bytes", default="\u00ff")),
        "a default of bytes",
    ),
    (
        record_of(field("a", "int")),
        record_of(field("a", "int"), field("b", FIXED_F, default="abc")),
        "a default of bytes",
    ),
    (
        record_of(field("a", "int")),
        record_of(field("a", "int"), field("b", ["null", "int"], default=5)),
        "a default of another branch than the first",
    ),
    (
        record_of(field("a", "int")),
        record_of(field("a", "int"), field("b", ENUM_E, default="zz")),
        "an enum default that is no symbol",
    ),
    # a reader field of no value, or of several value types
    (record_of(field("a", "int")), record_of(field("a", "null")), "a field that is always null"),
    (record_of(field("a", "int")), record_of(field("a", ["null"])), "a field that is always null"),
    (
        record_of(field("a", ["null", "int", "string"])),
        record_of(field("a", ["null", "int", "string"])),
        "a union of several value types",
    ),
    # resolutions not read here
    (record_of(field("a", "float")), record_of(field("a", "double")), "a float read as a double"),
    (record_of(field("a", "string")), record_of(field("a", "bytes")), "a string read as bytes"),
    (record_of(field("a", ENUM_E)), record_of(field("a", "string")), "a enum read as string"),
    (record_of(field("a", "string")), record_of(field("a", ENUM_E)), "a string read as enum"),
    (record_of(field("a", FIXED_F)), record_of(field("a", "bytes")), "a fixed read as bytes"),
    (record_of(field("a", "bytes")), record_of(field("a", FIXED_F)), "a bytes read as fixed"),
    (record_of(field("a", ["null", "int"])), record_of(field("a", "int")), "a null read as int"),
    (
        record_of(field("a", "int")),
        record_of(field("a", "int"), name="Q"),
        "records of other names",
    ),
    (
        record_of(field("a", ENUM_E)),
        record_of(field("a", {**ENUM_E, "name": "G"})),
        "enums of other names",
    ),
    (
        record_of(field("a", FIXED_F)),
        record_of(field("a", {**FIXED_F, "name": "G"})),
        "fixed types that differ",
    ),
    (
        record_of(field("a", FIXED_F)),
        record_of(field("a", {**FIXED_F, "size": 4})),
        "fixed types that differ",
    ),
    (
        record_of(field("a", "int")),
        record_of(field("b", "int", aliases=["a"], default=0)),
        "a field named by an alias",
    ),
]


@pytest.mark.parametrize(("writer", "reader", "why"), UNREAD)
def test_writers_this_module_cannot_resolve_exactly_get_no_plan(
    writer: Any, reader: dict[str, Any], why: str
) -> None:
    assert plan(writer, reader) is None
    assert unread(writer, reader) == why


def test_named_types_are_found_by_their_full_names() -> None:
    """A type named again by its short name in its namespace, by its full name, in a
    union, and in a record without a namespace."""
    spaced = {
        "type": "record",
        "name": "R",
        "namespace": "n.m",
        "fields": [
            field("k", {"type": "enum", "name": "K", "symbols": ["a", "b"]}),
            field("f", {"type": "fixed", "name": "F", "size": 2}),
            field("k2", "n.m.K"),
            field("f2", ["null", "F"]),
            field("k3", ["null", "K"]),
            field("o", {"type": "enum", "name": "O", "namespace": "a.b", "symbols": ["o"]}),
            field("o2", "a.b.O"),
        ],
    }
    plain = record_of(field("e", ENUM_E), field("e2", "E"), field("e3", ["null", "E"]))
    for schema, datum in [
        (spaced, {"k": "b", "f": b"xy", "k2": "a", "f2": b"zz", "k3": None}),
        (spaced, {"k": "a", "f": b"xy", "k2": "b", "f2": None, "k3": "b"}),
        (plain, {"e": "x", "e2": "x", "e3": "x"}),
    ]:
        if schema is spaced:
            datum = {**datum, "o": "o", "o2": "o"}
        assert unread(schema, schema) is None
        assert assert_reads_as_fastavro(schema, schema, [encode(schema, datum)]).all()


def test_the_decoder_reads_only_the_rows_of_writers_it_plans_for() -> None:
    """Tombstones, short or unframed values, unknown writers and writers whose logical
    types are not the reader's are left to the caller; the rest read as decode_plain."""
    other = json.loads(writer_text(3))
    for field in other["fields"]:
        if field["name"] == "price":
            field["type"] = {**field["type"], "scale": 3}
    texts = {1: writer_text(1), 3: writer_text(3), 9: json.dumps(other)}
    decoding = decoder(texts)
    v1, v3 = simulated(1, 3), simulated(3, 3)
    values = [
        framed(1, texts[1], v1[0]),
        None,
        b"\x00\x00",
        b"\x01" + framed(3, texts[3], v3[0])[1:],
        framed(3, texts[3], v3[1]),
        framed(4, texts[3], v3[2]),  # id 4: not in the registry
        framed(9, texts[9], {**v3[2], "price": v3[2]["price"].quantize(0)}),
        framed(1, texts[1], v1[1]),
        framed(3, texts[3], v3[0]) + b"\x00",
        framed(3, texts[3], v3[2]),
    ]
    table, rows = decoding.read_columns(pa.array(values, pa.binary()), np.arange(9, dtype=np.int64))
    assert sorted(rows.tolist()) == [0, 4, 7]  # row 9 is not asked for
    assert table is not None
    plain = [decoding.decode_plain(values[i]) for i in rows.tolist()]
    names = [f["name"] for f in READER["fields"]]
    assert table.select(names).to_pylist() == [{n: p[n] for n in names} for p in plain]
    nothing, none = decoding.read_columns(pa.array([None, b"\x00"], pa.binary()), np.arange(2))
    assert nothing is None
    assert none.size == 0


def test_decimals_up_to_eight_bytes_read_at_once_equal_reading_them_one_by_one() -> None:
    from consumers.decode import _decimals, _wide_decimals

    rng = np.random.default_rng(5)
    values: list[bytes | None] = [
        bytes(rng.integers(0, 256, int(rng.integers(0, 9)), dtype=np.uint8)) for _ in range(3000)
    ]
    values += [None, b"", b"\x80", b"\x7f", b"\xff" * 8, b"\x80" + b"\x00" * 7, b"\x00\x80"]
    column = pa.chunked_array([pa.array(values[:1000], pa.binary()), pa.array(values[1000:])])
    whole = column.combine_chunks()
    assert _decimals(column, 2).equals(_wide_decimals(whole, 2))
    window = whole.slice(17, 900)  # an array that starts inside its buffers
    assert _decimals(pa.chunked_array([window]), 3).equals(_wide_decimals(window, 3))


def test_an_empty_batch_and_an_empty_body_read() -> None:
    """No rows give empty columns of the reader's types; a writer of no fields writes
    empty bodies, which read as the reader's defaults."""
    found = plan(plain_writer(3), READER)
    assert found is not None
    table, clean = read(found, [])
    assert table.num_rows == 0 and clean.size == 0
    assert table.schema == arrow_schema(found)
    reader = record_of({"name": "a", "type": "int", "default": 3})
    assert assert_reads_as_fastavro(record_of(), reader, [b"", b""]).all()
    assert plan(record_of(), record_of()) is None  # a record of no fields: not read here


def test_a_batch_beyond_what_one_arrow_array_holds_is_left_unread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Checked with the limit lowered to this batch's size: the batch is refused, whole,
    exactly when its text reaches the limit (the last text value's end is at it or
    beyond), and the Decoder then leaves every row of it."""
    from consumers import columnar

    texts = {3: writer_text(3)}
    values = [framed(3, texts[3], d) for d in simulated(3, 4)]
    bodies = [v[5:] for v in values]
    found = plan(plain_writer(3), READER)
    assert found is not None

    def refused(limit: int) -> bool:
        monkeypatch.setattr(columnar, "OFFSET_LIMIT", limit)
        try:
            read(found, bodies)
        except columnar.Unsupported:
            return True
        return False

    size = len(b"".join(bodies))
    assert not refused(size + 1)
    reach = next(limit for limit in range(size, 0, -1) if refused(limit))
    # The last record's last text field ends within its last few bytes.
    assert size - 20 < reach <= size
    assert refused(1) and refused(reach) and not refused(reach + 1)
    monkeypatch.setattr(columnar, "OFFSET_LIMIT", reach)
    with pytest.raises(columnar.Unsupported, match=r"^a batch of over 2 GiB$"):
        read(found, bodies)
    monkeypatch.setattr(columnar, "OFFSET_LIMIT", reach)
    table, rows = decoder(texts).read_columns(pa.array(values, pa.binary()), np.arange(4))
    assert table is None
    assert rows.size == 0


def test_the_buffers_of_binary_and_large_binary_arrays() -> None:
    for kind in (pa.binary(), pa.large_binary()):
        starts, ends, data = binary_buffers(pa.array([b"ab", None, b"", b"cde"], kind).slice(1))
        assert (starts.tolist(), ends.tolist(), bytes(data[starts[0] : ends[-1]])) == (
            [2, 2, 2],
            [2, 2, 5],
            b"cde",
        )
    starts, ends, data = binary_buffers(pa.array([b"", None], pa.binary()))
    assert (starts.tolist(), ends.tolist(), data.size, data.dtype) == ([0, 0], [0, 0], 0, np.uint8)
