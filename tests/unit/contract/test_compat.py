"""Offline compatibility: Avro's checker, levels, transitivity, and reasons naming fields."""

from __future__ import annotations

import copy
import json
from typing import Any

import avro.schema
import pytest

from producer.contract.compat import (
    CompatibilityLevel,
    LabelledSchema,
    check_compatibility,
    check_reader_writer,
)
from tests.conftest import changed_definition, field_of, schema_definition


def labelled(label: str, definition: dict[str, Any]) -> LabelledSchema:
    return LabelledSchema(label, avro.schema.parse(json.dumps(definition)))


V1 = labelled("v1", schema_definition(1))
V2 = labelled("v2", schema_definition(2))


def test_a_changed_type_is_reported_with_field_and_direction() -> None:
    def change(d: dict[str, Any]) -> None:
        field_of(d, "quantity")["type"] = "string"

    v3 = labelled("v3", changed_definition(2, change))
    assert [str(p) for p in check_reader_writer(reader=v3, writer=V2)] == [
        "v3 (reader) cannot read v2 (writer) data: field 'quantity': TYPE_MISMATCH: "
        "reader type: string not compatible with writer type: int"
    ]
    assert [str(p) for p in check_reader_writer(reader=V2, writer=v3)] == [
        "v2 (reader) cannot read v3 (writer) data: field 'quantity': TYPE_MISMATCH: "
        "reader type: int not compatible with writer type: string"
    ]


def test_a_removed_field_without_default_breaks_old_readers() -> None:
    v3 = labelled(
        "v3", changed_definition(2, lambda d: d["fields"].remove(field_of(d, "quantity")))
    )
    problems = check_reader_writer(reader=V2, writer=v3)
    assert [(p.field, p.kind) for p in problems] == [
        ("quantity", "READER_FIELD_MISSING_DEFAULT_VALUE")
    ]
    assert problems[0].message == (
        "reader field 'quantity' has no default and the writer does not have it"
    )
    # The new schema still reads old data: it just ignores the writer's quantity.
    assert check_reader_writer(reader=v3, writer=V2) == []


def test_a_removed_enum_symbol_without_default_breaks_new_readers() -> None:
    def change(d: dict[str, Any]) -> None:
        enum = field_of(d, "event_type")["type"]
        enum["symbols"] = ["unknown", "view", "purchase"]
        del enum["default"]

    v3 = labelled("v3", changed_definition(2, change))
    problems = check_reader_writer(reader=v3, writer=V2)
    assert [(p.field, p.kind, p.message) for p in problems] == [
        (
            "event_type",
            "MISSING_ENUM_SYMBOLS",
            "writer enum symbols {'cart'} are missing from the reader enum (it has no default)",
        )
    ]


def test_an_enum_default_keeps_a_new_symbol_compatible() -> None:
    def change(d: dict[str, Any]) -> None:
        field_of(d, "event_type")["type"]["symbols"].append("wishlist")

    v3 = labelled("v3", changed_definition(2, change))
    report = check_compatibility(v3, [V1, V2], CompatibilityLevel.FULL_TRANSITIVE)
    assert report.compatible


def test_a_renamed_record_is_a_name_mismatch() -> None:
    v3 = labelled("v3", changed_definition(2, lambda d: d.update(name="SaleEvent")))
    problems = check_reader_writer(reader=v3, writer=V2)
    assert [(p.kind, p.location) for p in problems] == [("NAME_MISMATCH", "/name")]
    assert "io.flashsale.events.FlashSaleEvent" in problems[0].message


def only_older_breaks() -> tuple[LabelledSchema, LabelledSchema, LabelledSchema]:
    """v1 lacks `region`; v2 adds it with a default; v3 drops the default."""
    base = schema_definition(1)
    with_default = copy.deepcopy(base)
    with_default["fields"].append(
        {"name": "region", "type": "string", "default": "eu", "doc": "market"}
    )
    required = copy.deepcopy(with_default)
    del field_of(required, "region")["default"]
    return labelled("v1", base), labelled("v2", with_default), labelled("v3", required)


@pytest.mark.parametrize(
    ("level", "compatible", "against"),
    [
        (CompatibilityLevel.NONE, True, ()),
        (CompatibilityLevel.BACKWARD, True, ("v2",)),
        (CompatibilityLevel.BACKWARD_TRANSITIVE, False, ("v1", "v2")),
        (CompatibilityLevel.FORWARD, True, ("v2",)),
        (CompatibilityLevel.FORWARD_TRANSITIVE, True, ("v1", "v2")),
        (CompatibilityLevel.FULL, True, ("v2",)),
        (CompatibilityLevel.FULL_TRANSITIVE, False, ("v1", "v2")),
    ],
)
def test_levels_and_transitivity(
    level: CompatibilityLevel, compatible: bool, against: tuple[str, ...]
) -> None:
    v1, v2, v3 = only_older_breaks()
    report = check_compatibility(v3, [v1, v2], level)
    assert report.compatible is compatible
    assert report.checked_against == against
    if not compatible:
        assert report.messages() == [
            "v3 (reader) cannot read v1 (writer) data: field 'region': "
            "READER_FIELD_MISSING_DEFAULT_VALUE: reader field 'region' has no default "
            "and the writer does not have it"
        ]


def test_level_names_parse_case_insensitively() -> None:
    assert CompatibilityLevel.parse("full_transitive") is CompatibilityLevel.FULL_TRANSITIVE
    with pytest.raises(ValueError, match="unknown compatibility level 'SIDEWAYS'"):
        CompatibilityLevel.parse("SIDEWAYS")
