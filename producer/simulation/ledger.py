"""The ground-truth ledger: what a sink confirmed, tallied the way Gold KPIs are computed.

Only confirmed events are recorded (the producer records an event when the broker
acknowledges it), so the ledger is exactly what downstream jobs can find. Money is
summed as ``Decimal`` and written as exact decimal strings.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from producer.errors import InvalidOption
from producer.events import EventType, FlashSaleEvent

__all__ = ["Ledger", "Tally", "minute_of", "read_ledger"]

_ZERO = Decimal("0.00")


def minute_of(timestamp_ms: int) -> str:
    """The UTC minute an event falls in, as ``2026-11-27T09:01:00Z``."""
    minute = datetime.fromtimestamp(timestamp_ms // 60000 * 60, tz=UTC)
    return minute.strftime("%Y-%m-%dT%H:%M:00Z")


@dataclass
class Tally:
    """Counts per event type, units purchased and revenue, for one slice of events."""

    events: int = 0
    views: int = 0
    carts: int = 0
    purchases: int = 0
    units: int = 0  # quantity purchased
    revenue: Decimal = _ZERO

    def add_many(self, kind: EventType, events: int, quantity: int, revenue: Decimal) -> None:
        """Add ``events`` events of one type, with their total quantity and revenue."""
        self.events += events
        if kind is EventType.VIEW:
            self.views += events
        elif kind is EventType.CART:
            self.carts += events
        elif kind is EventType.PURCHASE:
            self.purchases += events
            self.units += quantity
            self.revenue += revenue

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "view": self.views,
            "cart": self.carts,
            "purchase": self.purchases,
            "units": self.units,
            "revenue": str(self.revenue),
        }


@dataclass
class Ledger:
    """Tallies of confirmed events: overall, by event type, minute, category and product.

    Recording is on the producer's hot path (every delivery report), so it only adds
    to one cell per (minute, product, category, event type); the views by minute,
    category, product and type are summed from those cells when they are asked for.
    """

    meta: dict[str, Any] = field(default_factory=dict)
    sold_out: dict[str, int] = field(default_factory=dict)
    # The catalog's brand of each product (written for the products that sold or were seen).
    brands: dict[str, str | None] = field(default_factory=dict, repr=False)
    # (minute index, product, category, type) -> [events, quantity, revenue]
    _cells: dict[tuple[int, str, str, EventType], list[Any]] = field(
        default_factory=dict, repr=False
    )

    def record(self, event: FlashSaleEvent, sells_out: bool = False) -> None:
        """Count one confirmed event; ``sells_out``: a purchase took the product's last unit."""
        self.record_many((event,), (event.event_id,) if sells_out else ())

    def record_many(
        self, events: Iterable[FlashSaleEvent], sold_out_ids: Container[str] = ()
    ) -> None:
        """Count confirmed events; ``sold_out_ids``: purchases that took a product's last unit."""
        cells = self._cells
        get = cells.get
        purchase = EventType.PURCHASE
        for event in events:
            kind = event.event_type
            key = (event.timestamp_ms // 60000, event.product_id, event.category, kind)
            cell = get(key)
            if cell is None:
                cell = cells[key] = [0, 0, _ZERO]
            cell[0] += 1
            cell[1] += event.quantity
            if kind is purchase:
                cell[2] += event.revenue
                if event.event_id in sold_out_ids:
                    self.sold_out[event.product_id] = event.timestamp_ms

    def _tallies(self, part: int) -> dict[Any, Tally]:
        """Tallies keyed by one part of the cell key (0 minute, 1 product, 2 category)."""
        out: dict[Any, Tally] = {}
        for key, (events, quantity, revenue) in self._cells.items():
            tally = out.get(key[part])
            if tally is None:
                tally = out[key[part]] = Tally()
            tally.add_many(key[3], events, quantity, revenue)
        return out

    @property
    def total(self) -> Tally:
        tally = Tally()
        for key, (events, quantity, revenue) in self._cells.items():
            tally.add_many(key[3], events, quantity, revenue)
        return tally

    @property
    def by_minute(self) -> dict[str, Tally]:
        return {minute_of(m * 60000): t for m, t in self._tallies(0).items()}

    @property
    def by_product(self) -> dict[str, Tally]:
        return self._tallies(1)

    @property
    def by_category(self) -> dict[str, Tally]:
        return self._tallies(2)

    @property
    def by_event_type(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, (events, quantity, revenue) in self._cells.items():
            slot = out.setdefault(key[3].value, {"events": 0, "quantity": 0, "revenue": _ZERO})
            slot["events"] += events
            slot["quantity"] += quantity
            slot["revenue"] += revenue
        return out

    def to_json(self, complete: bool = True) -> dict[str, Any]:
        total = self.total
        funnel = {
            "view": total.views,
            "cart": total.carts,
            "purchase": total.purchases,
            "view_to_cart": _ratio(total.carts, total.views),
            "cart_to_purchase": _ratio(total.purchases, total.carts),
        }
        return {
            **self.meta,
            "complete": complete,
            "total_events": total.events,
            "total_units": total.units,
            "total_revenue": str(total.revenue),
            "by_event_type": {
                k: {**v, "revenue": str(v["revenue"])}
                for k, v in sorted(self.by_event_type.items())
            },
            "by_minute": {k: v.to_json() for k, v in sorted(self.by_minute.items())},
            "by_category": {k: v.to_json() for k, v in sorted(self.by_category.items())},
            "by_product": {k: v.to_json() for k, v in sorted(self.by_product.items())},
            "product_categories": dict(sorted({key[1]: key[2] for key in self._cells}.items())),
            "product_brands": {
                product: self.brands[product]
                for product in sorted({key[1] for key in self._cells})
                if product in self.brands
            },
            "funnel": funnel,
            "sold_out": {
                product: datetime.fromtimestamp(ms / 1000, tz=UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
                for product, ms in sorted(self.sold_out.items(), key=lambda kv: kv[1])
            },
        }

    def write(self, path: Path, complete: bool = True) -> None:
        """Write the ledger as JSON, atomically (a reader never sees half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.to_json(complete), out, indent=2)
                out.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def read_ledger(path: Path) -> dict[str, Any]:
    """A ledger file as written by :meth:`Ledger.write` (the JSON object, as is)."""
    try:
        ledger = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidOption("ledger", f"cannot read: {exc}", path) from exc
    if not isinstance(ledger, dict):
        raise InvalidOption("ledger", "not a ledger: the file holds no JSON object", path)
    missing = [key for key in _REQUIRED if not isinstance(ledger.get(key), _REQUIRED[key])]
    if missing:
        raise InvalidOption("ledger", f"not a ledger: no {', '.join(missing)}", path)
    return ledger


# What a ledger must hold to be reconciled, and of which JSON type.
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "total_events": int,
    "total_revenue": str,
    "by_minute": dict,
    "by_category": dict,
    "by_product": dict,
}


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None
