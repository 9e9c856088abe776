"""Typed flash-sale events: one immutable record per event, for every schema version.

:class:`FlashSaleEvent` carries the fields of the newest schema; the fields that
later versions added have the same defaults as in the ``.avsc`` files, so an event
read from older data looks exactly like what the newest reader would decode. It is a
``NamedTuple``
rather than a frozen dataclass because it is built hundreds of thousands of times a
second by the simulator, and a frozen dataclass costs about four times as much to
create; it is just as immutable and typed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

__all__ = [
    "LATEST_VERSION",
    "SUPPORTED_VERSIONS",
    "Device",
    "EventType",
    "FlashSaleEvent",
    "avro_positions",
]

SUPPORTED_VERSIONS = (1, 2, 3)
LATEST_VERSION = SUPPORTED_VERSIONS[-1]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Avro field names that the event spells differently.
_EVENT_FIELD = {"timestamp": "timestamp_ms"}
_MILLISECOND = timedelta(milliseconds=1)


class EventType(str, enum.Enum):
    """Funnel step; ``unknown`` is what an old reader sees for a symbol it lacks."""

    UNKNOWN = "unknown"
    VIEW = "view"
    CART = "cart"
    PURCHASE = "purchase"


class Device(str, enum.Enum):
    """Client platform (schema v2)."""

    UNKNOWN = "unknown"
    WEB = "web"
    IOS = "ios"
    ANDROID = "android"


class FlashSaleEvent(NamedTuple):
    """One shopper interaction; field names and defaults are those of the schema."""

    event_id: str
    user_id: str
    product_id: str
    category: str
    event_type: EventType
    quantity: int
    price: Decimal
    revenue: Decimal
    timestamp_ms: int
    brand: str | None = None
    event_source: str = "flash_sale"
    # Added in v2; the defaults are the schema's.
    session_id: str | None = None
    sale_id: str | None = None
    list_price: Decimal | None = None
    discount_pct: int = 0
    currency: str = "USD"
    device: Device = Device.UNKNOWN
    # Added in v3.
    stock_remaining: int | None = None

    @property
    def timestamp(self) -> datetime:
        """Event time as a timezone-aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    @property
    def key(self) -> str:
        """The record key: the user id."""
        return self.user_id

    def to_avro(self, version: int = LATEST_VERSION) -> dict[str, Any]:
        """The Avro datum of this event for schema ``version`` (fields of that version only)."""
        datum: dict[str, Any] = {
            "event_id": self.event_id,
            "event_source": self.event_source,
            "user_id": self.user_id,
            "product_id": self.product_id,
            "category": self.category,
            "brand": self.brand,
            "event_type": self.event_type.value,
            "quantity": self.quantity,
            "price": self.price,
            "revenue": self.revenue,
            "timestamp": self.timestamp_ms,
        }
        if version >= 2:
            datum["session_id"] = self.session_id
            datum["sale_id"] = self.sale_id
            datum["list_price"] = self.list_price
            datum["discount_pct"] = self.discount_pct
            datum["currency"] = self.currency
            datum["device"] = self.device.value
            if version == 3:
                datum["stock_remaining"] = self.stock_remaining
            elif version != 2:
                raise ValueError(f"unknown schema version {version}")
        elif version != 1:
            raise ValueError(f"unknown schema version {version}")
        return datum

    @classmethod
    def from_avro(cls, datum: dict[str, Any]) -> FlashSaleEvent:
        """Build an event from a decoded Avro datum of any version."""
        ts = datum["timestamp"]
        if isinstance(ts, datetime):
            if ts.tzinfo is None:
                raise ValueError("timestamp is naive; the contract's time is UTC")
            ts_ms = (ts - _EPOCH) // _MILLISECOND
        else:
            ts_ms = int(ts)
        return cls(
            event_id=datum["event_id"],
            user_id=datum["user_id"],
            product_id=datum["product_id"],
            category=datum["category"],
            event_type=EventType(datum["event_type"]),
            quantity=datum["quantity"],
            price=datum["price"],
            revenue=datum["revenue"],
            timestamp_ms=ts_ms,
            brand=datum.get("brand"),
            event_source=datum.get("event_source", "flash_sale"),
            session_id=datum.get("session_id"),
            sale_id=datum.get("sale_id"),
            list_price=datum.get("list_price"),
            discount_pct=datum.get("discount_pct", 0),
            currency=datum.get("currency", "USD"),
            device=Device(datum.get("device", Device.UNKNOWN.value)),
            stock_remaining=datum.get("stock_remaining"),
        )


def avro_positions(names: Iterable[str]) -> list[int]:
    """Where the value of each Avro field named sits in a :class:`FlashSaleEvent`.

    ``event[i]`` for these positions gives, in schema order, the values ``to_avro``
    would put in its dict (enums as their ``str`` enum members).
    """
    fields = FlashSaleEvent._fields
    positions = []
    for name in names:
        attribute = _EVENT_FIELD.get(name, name)
        if attribute not in fields:
            raise ValueError(f"the event has no field for the Avro field {name!r}")
        positions.append(fields.index(attribute))
    return positions
