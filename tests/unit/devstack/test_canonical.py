"""Confluent's canonical Avro text, pinned by the strings its own tests expect
(confluentinc/schema-registry ``avro-serializer/.../AvroSchemaTest.java``)."""

from __future__ import annotations

import pytest

from devstack.registry.canonical import canonical_text, named_types


@pytest.mark.parametrize("normalize", [False, True])
def test_record_attributes_in_javas_order(normalize: bool) -> None:
    # AvroSchemaTest.testNormalization
    sent = {
        "type": "record",
        "name": "myrecord",
        "doc": 'hi"there',
        "fields": [{"type": "string", "name": "f1", "doc": 'bye"now'}],
    }
    assert canonical_text(sent, normalize) == (
        '{"type":"record","name":"myrecord","doc":"hi\\"there",'
        '"fields":[{"name":"f1","type":"string","doc":"bye\\"now"}]}'
    )


@pytest.mark.parametrize("normalize", [False, True])
def test_properties_of_primitives_and_named_references_are_kept(normalize: bool) -> None:
    # AvroSchemaTest.testNormalizationPreservesMetadataForPrimitiveTypes
    value = {
        "connect.name": "some.scope.Value",
        "fields": [
            {
                "name": "created_at",
                "type": {
                    "connect.name": "io.debezium.time.Timestamp",
                    "connect.version": 1,
                    "type": "long",
                },
            },
            {"name": "normal_long", "type": "long"},
        ],
        "name": "Value",
        "type": "record",
    }
    sent = {
        "connect.name": "some.scope.Envelope",
        "fields": [
            {"default": None, "name": "before", "type": ["null", value]},
            {"default": None, "name": "after", "type": ["null", "Value"]},
        ],
        "name": "Envelope",
        "namespace": "some.scope",
        "type": "record",
    }
    assert canonical_text(sent, normalize) == (
        '{"type":"record","name":"Envelope","namespace":"some.scope","fields":['
        '{"name":"before","type":["null",{"type":"record","name":"Value","fields":['
        '{"name":"created_at","type":{"type":"long",'
        '"connect.name":"io.debezium.time.Timestamp","connect.version":1}},'
        '{"name":"normal_long","type":"long"}],"connect.name":"some.scope.Value"}],'
        '"default":null},'
        '{"name":"after","type":["null","Value"],"default":null}],'
        '"connect.name":"some.scope.Envelope"}'
    )


def test_a_primitive_is_its_name() -> None:
    for sent in ("int", {"type": "int"}, {"type": "int", "doc": "dropped, as Java Avro does"}):
        assert canonical_text(sent) == '"int"'
    assert canonical_text({"type": "int", "logicalType": "date"}) == (
        '{"type":"int","logicalType":"date"}'
    )


def test_namespaces_are_written_only_where_they_change() -> None:
    sent = {
        "type": "record",
        "name": "a.b.R",
        "fields": [
            {
                "name": "e",
                "type": {
                    "type": "enum",
                    "name": "E",
                    "namespace": "c",
                    "symbols": ["X"],
                    "default": "X",
                },
            },
            {"name": "again", "type": "c.E"},
            {
                "name": "inner",
                "type": {"type": "record", "name": "S", "fields": [{"name": "up", "type": "R"}]},
            },
        ],
    }
    assert canonical_text(sent) == (
        '{"type":"record","name":"R","namespace":"a.b","fields":['
        '{"name":"e","type":{"type":"enum","name":"E","namespace":"c","symbols":["X"],'
        '"default":"X"}},'
        '{"name":"again","type":"c.E"},'
        '{"name":"inner","type":{"type":"record","name":"S","fields":['
        '{"name":"up","type":"R"}]}}]}'
    )


def test_normalize_sorts_properties_aliases_and_json_values() -> None:
    sent = {
        "type": "record",
        "name": "R",
        "z.prop": {"b": 1, "a": 2},
        "aliases": ["Y", "X"],
        "a.prop": 1,
        "fields": [{"name": "f", "type": "int", "default": 0, "aliases": ["q", "p"]}],
    }
    plain, normalized = canonical_text(sent), canonical_text(sent, normalize=True)
    assert plain == (
        '{"type":"record","name":"R","fields":[{"name":"f","type":"int","default":0,'
        '"aliases":["q","p"]}],"z.prop":{"b":1,"a":2},"a.prop":1,"aliases":["Y","X"]}'
    )
    assert normalized == (
        '{"type":"record","name":"R","fields":[{"name":"f","type":"int","default":0,'
        '"aliases":["p","q"]}],"a.prop":1,"z.prop":{"a":2,"b":1},"aliases":["X","Y"]}'
    )


def test_referenced_types_are_written_out_where_first_used() -> None:
    # What Java Avro writes for a schema parsed with its references resolved.
    sub = {
        "type": "record",
        "name": "Sub",
        "namespace": "other",
        "fields": [{"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A"]}}],
    }
    main = {
        "type": "record",
        "name": "Main",
        "namespace": "ns",
        "fields": [{"name": "a", "type": "other.Sub"}, {"name": "b", "type": "other.E"}],
    }
    inline = named_types(sub)
    assert sorted(inline) == ["other.E", "other.Sub"]
    assert canonical_text(main, inline=inline) == (
        '{"type":"record","name":"Main","namespace":"ns","fields":['
        '{"name":"a","type":{"type":"record","name":"Sub","namespace":"other","fields":['
        '{"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}}]}},'
        '{"name":"b","type":"other.E"}]}'
    )
    assert canonical_text(main) == (
        '{"type":"record","name":"Main","namespace":"ns","fields":['
        '{"name":"a","type":"other.Sub"},{"name":"b","type":"other.E"}]}'
    )
