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
    "DEFAULT_TOPIC",
    "FIELDS_ADDED",
    "LATEST_VERSION",
    "Device",
    "EventType",
    "FlashSaleEvent",
    "avro_positions",
    "fields_of",
    "products_topic",
]

# The topic of the contract; its subjects are <topic>-value and <topic>-key.
DEFAULT_TOPIC = "flash_sale_events"


def products_topic(topic: str) -> str:
    """The topic of the shop's catalog that goes with the events topic ``topic``:
    ``flash_sale_events`` gives ``flash_sale_products``, any other ``T`` gives
    ``T-products``."""
    if topic.endswith("_events"):
        return topic[: -len("_events")] + "_products"
    return f"{topic}-products"


# The one table of schema versions: the Avro fields each version added that the event
# carries and the simulator fills. A run of an older version leaves the later fields
# at their schema defaults, so its events equal what the newest reader decodes.
#
# Adding a version (see schemas/README.md): a new .avsc in schemas/ is all it takes
# when the simulator has nothing to say about its new fields (optional fields with
# defaults): they are written with their schema defaults, and versions past this
# table carry the fields of the newest entry. To fill a new field, add it here, to
# FlashSaleEvent (with the schema's default) and where the engine builds the event.
FIELDS_ADDED: dict[int, tuple[str, ...]] = {
    1: (
        "event_id",
        "event_source",
        "user_id",
        "product_id",
        "category",
        "brand",
        "event_type",
        "quantity",
        "price",
        "revenue",
        "timestamp",
    ),
    2: ("session_id", "sale_id", "list_price", "discount_pct", "currency", "device"),
    3: ("stock_remaining",),
}
LATEST_VERSION = max(FIELDS_ADDED)  # the newest version whose fields the event knows

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
        """The Avro datum of this event for schema ``version``: the fields the event
        carries for that version (:func:`fields_of`). A field of the schema missing
        here is one the event does not know; Avro writers fill in its default."""
        datum: dict[str, Any] = {name: self[_POSITION[name]] for name in _ordered(version)}
        for name in _ENUMS:
            if name in datum:
                datum[name] = datum[name].value
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


def fields_of(version: int) -> frozenset[str]:
    """The Avro fields the event carries for schema ``version`` (every field of the
    table up to it; a version past the table carries what the newest entry does)."""
    if version < 1:
        raise ValueError(f"schema versions start at 1, got {version}")
    return frozenset(name for v, names in FIELDS_ADDED.items() if v <= version for name in names)


def _ordered(version: int) -> tuple[str, ...]:
    found = _ORDERED.get(version)
    if found is None:
        carried = fields_of(version)
        found = _ORDERED[version] = tuple(n for n in _POSITION if n in carried)
    return found


def avro_positions(names: Iterable[str]) -> list[int | None]:
    """Where the value of each Avro field named sits in a :class:`FlashSaleEvent`, or
    None for a field the event does not carry (it is written with its default).

    ``event[i]`` for these positions gives, in schema order, the values ``to_avro``
    would put in its dict (enums as their ``str`` enum members).
    """
    return [_POSITION.get(name) for name in names]


# Avro field name -> position in the event, in the order of the table above.
_POSITION: dict[str, int] = {
    name: FlashSaleEvent._fields.index(_EVENT_FIELD.get(name, name))
    for names in FIELDS_ADDED.values()
    for name in names
}
_ENUMS = ("event_type", "device")
_ORDERED: dict[int, tuple[str, ...]] = {}
