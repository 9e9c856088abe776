"""Reasons that name the right field however deep it sits (inside a union, an array, a
map), one reason per broken field, and reports that say what was judged against what."""

from __future__ import annotations

import json
from typing import Any

import avro.schema
import pytest

from producer.contract.compat import (
    CompatibilityLevel,
    Incompatibility,
    LabelledSchema,
    _explain,
    _field_at,
    _reader_field_location,
    check_compatibility,
    check_reader_writer,
)


def labelled(label: str, definition: dict[str, Any]) -> LabelledSchema:
    return LabelledSchema(label, avro.schema.parse(json.dumps(definition)))


def order(leaf: str) -> dict[str, Any]:
    """A record whose nested fields (in a union, an array and a map) are of type ``leaf``."""

    def record(name: str, *fields: tuple[str, Any]) -> dict[str, Any]:
        return {
            "type": "record",
            "name": name,
            "fields": [{"name": n, "type": t} for n, t in fields],
        }

    geo = ("geo", ["null", record("Geo", ("lat", "double"))])
    return {
        "type": "record",
        "name": "Order",
        "fields": [
            {"name": "id", "type": "string"},
            {
                "name": "addr",
                "type": ["null", record("Addr", ("street", "string"), ("zip", leaf), geo)],
            },
            {"name": "lines", "type": {"type": "array", "items": record("Line", ("sku", leaf))}},
            {"name": "tags", "type": {"type": "map", "values": record("Tag", ("v", leaf))}},
        ],
    }


ORDER = labelled("r", order("int")).schema


def test_each_broken_nested_field_is_one_reason_at_its_own_location() -> None:
    problems = check_reader_writer(labelled("r", order("int")), labelled("w", order("string")))
    mismatch = "reader type: int not compatible with writer type: string"
    assert [(p.location, p.field, p.kind, p.message) for p in problems] == [
        ("/fields/1", "addr", "TYPE_MISMATCH", mismatch),
        ("/fields/1", "addr", "MISSING_UNION_BRANCH", "reader union lacking writer type: RECORD"),
        ("/fields/2/type/items/fields/0", "lines.sku", "TYPE_MISMATCH", mismatch),
        ("/fields/3/type/values/fields/0", "tags.v", "TYPE_MISMATCH", mismatch),
    ]
    assert str(problems[2]) == (
        f"r (reader) cannot read w (writer) data: field 'lines.sku': TYPE_MISMATCH: {mismatch}"
    )


def one_field(kind: Any, name: str = "R", *more: dict[str, Any]) -> LabelledSchema:
    fields = [{"name": "x", "type": kind}, *more]
    return labelled(name, {"type": "record", "name": name, "fields": fields})


def test_a_field_broken_two_ways_names_both_kinds() -> None:
    (problem,) = check_reader_writer(
        one_field({"type": "fixed", "name": "E", "size": 2}),
        one_field({"type": "fixed", "name": "F", "size": 3}),
    )
    assert (problem.kind, problem.message) == (
        "FIXED_SIZE_MISMATCH, NAME_MISMATCH",
        "expected: 3, found: 2; expected: F",
    )


def test_a_renamed_record_and_a_missing_field_are_two_reasons() -> None:
    reader = one_field("int", "R", {"name": "y", "type": "int"})
    problems = check_reader_writer(reader, one_field("int", "S"))
    assert [str(p) for p in problems] == [
        "R (reader) cannot read S (writer) data: at /name: NAME_MISMATCH: "
        "record name differs from the writer's (expected: S)",
        "R (reader) cannot read S (writer) data: field 'y': READER_FIELD_MISSING_DEFAULT_VALUE: "
        "reader field 'y' has no default and the writer does not have it",
    ]


def test_every_message_of_a_field_is_kept() -> None:
    def one(kind: Any) -> LabelledSchema:
        return labelled(
            "x", {"type": "record", "name": "R", "fields": [{"name": "x", "type": kind}]}
        )

    (problem,) = check_reader_writer(one(["null", "int"]), one(["null", "string", "boolean"]))
    assert (problem.location, problem.field, problem.kind) == (
        "/fields/0",
        "x",
        "MISSING_UNION_BRANCH",
    )
    assert problem.message == (
        "reader union lacking writer type: BOOLEAN; reader union lacking writer type: STRING"
    )


@pytest.mark.parametrize(
    ("location", "field"),
    [
        ("/fields/0", "id"),
        ("fields/0", "id"),
        ("/fields/0/type/symbols", "id"),
        ("/fields/1/type/1/fields/1/type", "addr.zip"),
        ("/fields/1/type/1/fields/0", "addr.street"),
        ("/fields/1/type/1/fields/7", "addr"),
        ("/fields/1/type/1/fields/2/type/1/fields/0/type", "addr.geo.lat"),
        ("/fields/2/type/items/fields/0/type", "lines.sku"),
        ("/fields/3/type/values/fields/0", "tags.v"),
        ("/fields/4", None),
        ("/fields", None),
        ("/name", None),
        ("/", None),
    ],
)
def test_a_location_becomes_the_dotted_path_of_its_field(location: str, field: str | None) -> None:
    assert _field_at(ORDER, location) == field


def test_only_a_set_of_enum_symbols_is_explained() -> None:
    assert _explain("{'B'}") == (
        "writer enum symbols {'B'} are missing from the reader enum (it has no default)"
    )
    for message in ("{'B'", "reader type: {x}", "plain"):
        assert _explain(message) == message


def test_a_missing_reader_field_is_found_by_name_else_the_root() -> None:
    assert _reader_field_location(ORDER, "tags") == "/fields/3"
    assert _reader_field_location(ORDER, "nope") == "/"
    assert _reader_field_location(avro.schema.parse('"string"'), "id") == "/"


def test_a_problem_without_a_field_is_placed_by_its_location() -> None:
    problem = Incompatibility("v2", "v1", "NAME_MISMATCH", "/name", None, "differs")
    assert (
        str(problem) == "v2 (reader) cannot read v1 (writer) data: at /name: NAME_MISMATCH: differs"
    )


def test_a_report_names_its_level_the_new_schema_and_only_the_latest_when_not_transitive() -> None:
    versions = [labelled(f"v{i}", order("int")) for i in (1, 2, 3)]
    new = labelled("v4", order("int"))
    report = check_compatibility(new, versions, CompatibilityLevel.BACKWARD)
    assert (report.level, report.new, report.checked_against) == (
        CompatibilityLevel.BACKWARD,
        "v4",
        ("v3",),
    )
    report = check_compatibility(new, versions, CompatibilityLevel.FULL_TRANSITIVE)
    assert report.checked_against == ("v1", "v2", "v3")
    assert report.compatible and report.messages() == []


def test_an_unknown_level_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as refused:
        CompatibilityLevel.parse(" sideways ")
    assert str(refused.value) == (
        "unknown compatibility level ' sideways ' (known: NONE, BACKWARD, BACKWARD_TRANSITIVE,"
        " FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE)"
    )
