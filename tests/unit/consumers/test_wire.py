"""Both Confluent wire formats, read as the dual deserializer reads them; the header
bytes are made by confluent-kafka's own ``SchemaId``, so the layouts agree."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.schema_registry.common.serde import SchemaId

from consumers.wire import WireFormatError, WriterRef, header_ref, locate, value_headers

GUID = "0f8b2c3a-6e3d-4c1e-9a57-3f0c6b0d9e21"
BODY = b"\x0ahello"


def test_a_prefixed_value_names_its_id() -> None:
    assert locate(b"\x00\x00\x00\x00\x07" + BODY) == (WriterRef(schema_id=7), BODY)


def test_the_header_guid_names_the_writer_and_the_value_is_the_bare_body() -> None:
    headers = [("trace", b"x"), ("__value_schema_id", SchemaId("AVRO", guid=GUID).guid_to_bytes())]
    assert locate(BODY, headers) == (WriterRef(guid=GUID), BODY)


def test_the_header_may_carry_an_id() -> None:
    headers = [("__value_schema_id", SchemaId("AVRO", schema_id=300).id_to_bytes())]
    assert locate(BODY, headers) == (WriterRef(schema_id=300), BODY)


def test_the_header_wins_over_bytes_that_look_like_a_prefix() -> None:
    value = b"\x00\x00\x00\x00\x07" + BODY  # a bare body may start with byte 0
    headers = [("__value_schema_id", SchemaId("AVRO", guid=GUID).guid_to_bytes())]
    assert locate(value, headers) == (WriterRef(guid=GUID), value)


def test_the_key_header_is_not_the_value_header() -> None:
    headers = [("__key_schema_id", SchemaId("AVRO", guid=GUID).guid_to_bytes())]
    assert header_ref(headers) is None
    with pytest.raises(WireFormatError, match="bad magic byte 10"):
        locate(BODY, headers)


def test_a_malformed_header_is_named() -> None:
    with pytest.raises(WireFormatError) as caught:
        header_ref([("__value_schema_id", b"\x01" + uuid.UUID(GUID).bytes[:8])])
    assert str(caught.value) == (
        "__value_schema_id header of 9 bytes is neither byte 1 and a 16-byte GUID nor "
        "byte 0 and a 4-byte id"
    )


def test_a_tombstone_has_no_body_in_either_format() -> None:
    headers = [("__value_schema_id", SchemaId("AVRO", guid=GUID).guid_to_bytes())]
    for hs in (None, headers):
        with pytest.raises(WireFormatError, match="tombstone"):
            locate(None, hs)


def test_refs_read_in_messages() -> None:
    assert str(WriterRef(schema_id=3)) == "schema id 3"
    assert str(WriterRef(guid=GUID)) == f"schema guid {GUID}"


def test_a_bronze_row_gives_back_the_header_it_was_framed_by() -> None:
    guid_row = {"schema_id_in": "header", "schema_id": None, "schema_guid": GUID}
    id_row = {"schema_id_in": "header", "schema_id": 300, "schema_guid": None}
    assert value_headers(guid_row) == [
        ("__value_schema_id", SchemaId("AVRO", guid=GUID).guid_to_bytes())
    ]
    assert value_headers(id_row) == [
        ("__value_schema_id", SchemaId("AVRO", schema_id=300).id_to_bytes())
    ]
    for prefixed in ({"schema_id_in": "prefix", "schema_id": 3}, {"schema_id": 3}):
        assert value_headers(prefixed) == []
    unreadable = value_headers({"schema_id_in": "header"})
    with pytest.raises(WireFormatError, match="header of 0 bytes"):
        locate(BODY, unreadable)
