"""Reconciliation: every Gold KPI against the producer's ledger, exactly.

The ledger counts what the broker acknowledged; Silver drops duplicates and
quarantines what is not the producer's, so for a clean run every number must match
to the cent. Differences are named: which KPI, which key, which column, both values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

__all__ = ["reconcile"]

_COLUMNS = ("events", "view", "cart", "purchase", "units", "revenue")
_GOLD = {
    "events": "events",
    "view": "views",
    "cart": "carts",
    "purchase": "purchases",
    "units": "units",
    "revenue": "revenue",
}


def _minute(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00Z")


def _money(value: Any) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def _compare(
    kpi: str,
    ledger: dict[str, dict[str, Any]],
    gold: dict[str, dict[str, Any]],
    columns: tuple[str, ...],
) -> list[str]:
    problems = []
    for key in sorted(set(ledger) | set(gold)):
        if key not in gold:
            problems.append(f"{kpi}: {key} is in the ledger but not in Gold")
            continue
        if key not in ledger:
            problems.append(f"{kpi}: {key} is in Gold but not in the ledger")
            continue
        for column in columns:
            want = ledger[key][column]
            got = gold[key][_GOLD[column]]
            if column == "revenue":
                want, got = _money(want), _money(got)
            if want != got:
                problems.append(f"{kpi}: {key} {column}: ledger {want}, Gold {got}")
    return problems


def reconcile(ledger: dict[str, Any], kpis: dict[str, pa.Table]) -> list[str]:
    """Every difference between the ledger and Gold; empty when they agree."""
    problems: list[str] = []
    per_minute = {_minute(r["minute"]): r for r in kpis["revenue_per_minute"].to_pylist()}
    problems += _compare("revenue_per_minute", ledger["by_minute"], per_minute, _COLUMNS)
    per_category = {r["category"]: r for r in kpis["funnel_per_category"].to_pylist()}
    problems += _compare("funnel_per_category", ledger["by_category"], per_category, _COLUMNS)
    products = {r["product_id"]: r for r in kpis["product_sales"].to_pylist()}
    problems += _compare(
        "product_sales", ledger["by_product"], products, ("view", "purchase", "units", "revenue")
    )
    funnel = {_minute(r["minute"]): r for r in kpis["funnel_per_minute"].to_pylist()}
    problems += _compare(
        "funnel_per_minute", ledger["by_minute"], funnel, ("view", "cart", "purchase")
    )
    problems += _sold_out(ledger, kpis)
    total_events = sum(r["events"] for r in per_minute.values())
    if total_events != ledger["total_events"]:
        problems.append(f"total events: ledger {ledger['total_events']}, Gold {total_events}")
    total_revenue = _money(sum((Decimal(r["revenue"]) for r in per_minute.values()), Decimal(0)))
    if total_revenue != _money(ledger["total_revenue"]):
        problems.append(f"total revenue: ledger {ledger['total_revenue']}, Gold {total_revenue}")
    return problems


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sold_out(ledger: dict[str, Any], kpis: dict[str, pa.Table]) -> list[str]:
    """Sell-outs while the stream carried stock levels must match the ledger exactly."""
    (tracking,) = kpis["stock_tracking"].to_pylist()
    since = tracking["tracked_since"]
    gold = {r["product_id"]: _iso(r["sold_out_at"]) for r in kpis["sold_out"].to_pylist()}
    expected = {
        product: moment
        for product, moment in ledger.get("sold_out", {}).items()
        if since is not None and moment >= _iso(since)
    }
    problems = []
    for product in sorted(set(expected) | set(gold)):
        if product not in gold:
            problems.append(f"sold_out: {product} sold out at {expected[product]}, not in Gold")
        elif product not in expected:
            problems.append(f"sold_out: {product} is in Gold ({gold[product]}), not the ledger")
        elif gold[product] != expected[product]:
            problems.append(
                f"sold_out: {product}: ledger {expected[product]}, Gold {gold[product]}"
            )
    return problems
