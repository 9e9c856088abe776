"""Typed events through fastavro: round trips, pinned bytes, and the v1 <-> v2 evolution."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.contract.catalog import SchemaCatalog
from producer.events import LATEST_VERSION, Device, EventType, FlashSaleEvent, fields_of

GOLDEN_EVENT = FlashSaleEvent(
    event_id="00000000-0000-4000-8000-000000000001",
    user_id="10042",
    product_id="1007",
    category="electronics",
    event_type=EventType.PURCHASE,
    quantity=2,
    price=Decimal("199.99"),
    revenue=Decimal("399.98"),
    timestamp_ms=1764072000123,
    brand="Acme",
)

# The Avro binary body of GOLDEN_EVENT under v1. If this changes, every consumer's
# decoder sees different bytes: that is a contract break, not a refactoring.
GOLDEN_V1_HEX = (
    "4830303030303030302d303030302d343030302d383030302d303030303030303030303031"
    "14666c6173685f73616c650a3130303432083130303716656c656374726f6e696373020841"
    "636d650604044e1f06009c3ef6a994aed766"
)


def encode(schema: Any, datum: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, datum)
    return out.getvalue()


def decode(writer: Any, reader: Any, data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(data), writer, reader)
    return result


def money(scale_max: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal("0"), max_value=Decimal(10**scale_max), places=2, allow_nan=False
    )


events = st.builds(
    FlashSaleEvent,
    event_id=st.uuids().map(str),
    user_id=st.integers(10000, 99999).map(str),
    product_id=st.integers(1000, 1099).map(str),
    category=st.sampled_from(["electronics", "fashion", "home", "books"]),
    event_type=st.sampled_from([EventType.VIEW, EventType.CART, EventType.PURCHASE]),
    quantity=st.integers(1, 5),
    price=money(7),
    revenue=money(9),
    timestamp_ms=st.integers(0, 4102444800000),
    brand=st.one_of(st.none(), st.text(max_size=20)),
    session_id=st.one_of(st.none(), st.uuids().map(str)),
    sale_id=st.one_of(st.none(), st.just("bf-2026")),
    list_price=st.one_of(st.none(), money(7)),
    discount_pct=st.integers(0, 90),
    currency=st.sampled_from(["USD", "EUR"]),
    device=st.sampled_from(list(Device)),
    stock_remaining=st.one_of(st.none(), st.integers(0, 10_000)),
)


def as_written_by(event: FlashSaleEvent, version: int) -> FlashSaleEvent:
    """What a writer of ``version`` can carry: the later fields at their defaults."""
    if version < 3:
        event = event._replace(stock_remaining=None)
    if version < 2:
        event = event._replace(
            session_id=None,
            sale_id=None,
            list_price=None,
            discount_pct=0,
            currency="USD",
            device=Device.UNKNOWN,
        )
    return event


@pytest.mark.parametrize("version", [1, 2, 3])
@given(event=events)
def test_round_trip_through_each_version(
    catalog: SchemaCatalog, version: int, event: FlashSaleEvent
) -> None:
    schema = catalog.get(version).parsed
    decoded = FlashSaleEvent.from_avro(decode(schema, None, encode(schema, event.to_avro(version))))
    assert decoded == as_written_by(event, version)


def test_golden_v1_bytes_are_pinned(catalog: SchemaCatalog) -> None:
    assert encode(catalog.get(1).parsed, GOLDEN_EVENT.to_avro(1)).hex() == GOLDEN_V1_HEX


def test_decoded_timestamp_is_timezone_aware_utc(catalog: SchemaCatalog) -> None:
    schema = catalog.get(1).parsed
    datum = decode(schema, None, encode(schema, GOLDEN_EVENT.to_avro(1)))
    assert datum["timestamp"] == datetime(2025, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
    assert GOLDEN_EVENT.timestamp == datum["timestamp"]


def test_v1_data_read_with_the_v2_reader_gets_the_defaults(catalog: SchemaCatalog) -> None:
    v1, v2 = catalog.get(1).parsed, catalog.get(2).parsed
    datum = decode(v1, v2, encode(v1, GOLDEN_EVENT.to_avro(1)))
    assert {k: datum[k] for k in list(datum)[11:]} == {
        "session_id": None,
        "sale_id": None,
        "list_price": None,
        "discount_pct": 0,
        "currency": "USD",
        "device": "unknown",
    }


def test_v2_data_read_with_the_v1_reader_drops_the_new_fields(catalog: SchemaCatalog) -> None:
    v1, v2 = catalog.get(1).parsed, catalog.get(2).parsed
    event = GOLDEN_EVENT._replace(session_id="s-1", sale_id="bf", device=Device.IOS)
    datum = decode(v2, v1, encode(v2, event.to_avro(2)))
    assert list(datum) == catalog.get(1).field_names


@given(event=events)
def test_both_readers_agree_on_shared_fields(catalog: SchemaCatalog, event: FlashSaleEvent) -> None:
    v1, v2 = catalog.get(1).parsed, catalog.get(2).parsed
    shared = catalog.get(1).field_names
    for writer, version in ((v1, 1), (v2, 2)):
        data = encode(writer, event.to_avro(version))
        as_v1 = decode(writer, v1, data)
        as_v2 = decode(writer, v2, data)
        assert {k: as_v1[k] for k in shared} == {k: as_v2[k] for k in shared}


def test_a_version_before_the_first_is_refused() -> None:
    for version in (0, -1):
        with pytest.raises(ValueError, match=f"schema versions start at 1, got {version}"):
            GOLDEN_EVENT.to_avro(version)


def test_each_version_carries_the_fields_of_the_table_up_to_it(catalog: SchemaCatalog) -> None:
    # The table and the released files agree: v1..v3 carry exactly their schema's fields.
    for schema in catalog.versions():
        assert list(GOLDEN_EVENT.to_avro(schema.version)) == schema.field_names
    # A version past the table carries the newest entry's fields; the writer fills the rest.
    assert GOLDEN_EVENT.to_avro(LATEST_VERSION + 1) == GOLDEN_EVENT.to_avro(LATEST_VERSION)
    assert fields_of(1) < fields_of(2) < fields_of(3) == fields_of(4)


def test_the_key_is_the_user_id() -> None:
    assert GOLDEN_EVENT.key == "10042"
