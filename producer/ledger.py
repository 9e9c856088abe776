"""The ground-truth ledger: what a sink confirmed, tallied the way Gold KPIs are computed.

Only confirmed events are recorded (the producer records an event when the broker
acknowledges it), so the ledger is exactly what downstream jobs can find. Money is
summed as ``Decimal`` and written as exact decimal strings.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from producer.events import EventType, FlashSaleEvent

__all__ = ["Ledger", "Tally", "minute_of"]

_ZERO = Decimal("0.00")


def minute_of(timestamp_ms: int) -> str:
    """The UTC minute an event falls in, as ``2026-11-27T09:01:00Z``."""
    minute = datetime.fromtimestamp(timestamp_ms // 60000 * 60, tz=timezone.utc)
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

    def add(self, event: FlashSaleEvent) -> None:
        self.events += 1
        kind = event.event_type
        if kind is EventType.VIEW:
            self.views += 1
        elif kind is EventType.CART:
            self.carts += 1
        elif kind is EventType.PURCHASE:
            self.purchases += 1
            self.units += event.quantity
            self.revenue += event.revenue

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
    """Tallies of confirmed events: overall, by event type, minute, category and product."""

    meta: dict[str, Any] = field(default_factory=dict)
    total: Tally = field(default_factory=Tally)
    by_event_type: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_minute: dict[str, Tally] = field(default_factory=dict)
    by_category: dict[str, Tally] = field(default_factory=dict)
    by_product: dict[str, Tally] = field(default_factory=dict)
    sold_out: dict[str, int] = field(default_factory=dict)
    _minutes: dict[int, str] = field(default_factory=dict, repr=False)

    def record(self, event: FlashSaleEvent, sells_out: bool = False) -> None:
        """Count one confirmed event; ``sells_out`` when it took its product's last unit."""
        self.total.add(event)
        if sells_out:
            self.sold_out[event.product_id] = event.timestamp_ms
        kind = self.by_event_type.get(event.event_type.value)
        if kind is None:
            kind = self.by_event_type[event.event_type.value] = {
                "events": 0,
                "quantity": 0,
                "revenue": _ZERO,
            }
        kind["events"] += 1
        kind["quantity"] += event.quantity
        kind["revenue"] += event.revenue
        minute_index = event.timestamp_ms // 60000
        minute = self._minutes.get(minute_index)
        if minute is None:
            minute = self._minutes[minute_index] = minute_of(event.timestamp_ms)
        for table, key in (
            (self.by_minute, minute),
            (self.by_category, event.category),
            (self.by_product, event.product_id),
        ):
            tally = table.get(key)
            if tally is None:
                tally = table[key] = Tally()
            tally.add(event)

    def to_json(self, complete: bool = True) -> dict[str, Any]:
        funnel = {
            "view": self.total.views,
            "cart": self.total.carts,
            "purchase": self.total.purchases,
            "view_to_cart": _ratio(self.total.carts, self.total.views),
            "cart_to_purchase": _ratio(self.total.purchases, self.total.carts),
        }
        return {
            **self.meta,
            "complete": complete,
            "total_events": self.total.events,
            "total_units": self.total.units,
            "total_revenue": str(self.total.revenue),
            "by_event_type": {
                k: {**v, "revenue": str(v["revenue"])}
                for k, v in sorted(self.by_event_type.items())
            },
            "by_minute": {k: v.to_json() for k, v in sorted(self.by_minute.items())},
            "by_category": {k: v.to_json() for k, v in sorted(self.by_category.items())},
            "by_product": {k: v.to_json() for k, v in sorted(self.by_product.items())},
            "funnel": funnel,
            "sold_out": {
                product: datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
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


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None
