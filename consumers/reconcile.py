"""Reconciliation: the Gold tables, as they stand, against the producers' ledgers.

A ledger counts what the broker acknowledged for one run; ledgers of several runs
into one topic add up (a replay, a ledger with a run id seen before, counts once: its
records are duplicates that Silver drops). Silver drops duplicates and quarantines
what is not the producer's, so for clean runs every number Gold holds must match the
ledgers exactly: every table, row and column the ledgers determine, spikes included
(recomputed from the ledgers' per-minute counts). Each difference is named: which
table, which row, which column, both values; so is every Gold row no ledger explains.
What a ledger does not determine is not compared: ``session_funnel`` (the ledger
counts no sessions), ``sell_out_times`` beyond the sell-outs themselves, and
``stock_tracking``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

__all__ = ["COMPARED_TABLES", "merge_ledgers", "reconcile", "spikes_of"]

# The Gold tables the ledgers determine, which :func:`reconcile` compares; each of its
# differences starts with one of these names.
COMPARED_TABLES = (
    "revenue_per_minute",
    "funnel_per_minute",
    "funnel_per_category",
    "product_sales",
    "product_funnel",
    "sold_out",
    "spikes",
)

_TALLY = ("events", "view", "cart", "purchase", "units", "revenue")
_ZERO_TALLY = {**dict.fromkeys(_TALLY, 0), "revenue": "0.00"}
# Ledger tally key -> Gold column.
_GOLD = {
    "events": "events",
    "view": "views",
    "cart": "carts",
    "purchase": "purchases",
    "units": "units",
    "revenue": "revenue",
}
_RATE_TOLERANCE = 1e-6  # Gold rounds rates to 6 places; engines may round a tie either way
_SCORE_TOLERANCE = 2e-3  # baseline and z-score are rounded to 3 places


def merge_ledgers(ledgers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One ledger for several runs into one topic: their tallies added up.

    Ledgers that share a run id and a share of it (``worker`` of ``workers``, ``shard``
    of ``shards``) describe one run (a replay sends the same records again), so only
    the largest of them counts; the shares of one run add up. A shard sells from its
    own share of the stock, so a product of a sharded run sold out when its last shard
    did, and only if every shard did. The earliest sell-out of a product across runs is
    its sell-out, as in Gold.
    """
    by_run: dict[tuple[str, int, int, int, int], dict[str, Any]] = {}
    for i, ledger in enumerate(ledgers):
        run = (
            str(ledger.get("run_id") or f"#{i}"),
            int(ledger.get("worker", 0)),
            int(ledger.get("workers", 1)),
            int(ledger.get("shard", 0)),
            int(ledger.get("shards", 1)),
        )
        if run not in by_run or ledger["total_events"] > by_run[run]["total_events"]:
            by_run[run] = ledger
    # run id -> product -> the sell-out moment of each shard that sold it out
    shard_sold_out: dict[tuple[str, int], dict[str, list[str]]] = {}
    merged: dict[str, Any] = {
        "runs": sorted({run[0] for run in by_run}),
        "total_events": 0,
        "total_revenue": Decimal("0.00"),
        "by_minute": {},
        "by_category": {},
        "by_product": {},
        "sold_out": {},
        "product_categories": {},
        "product_brands": {},
    }
    for run, ledger in by_run.items():
        merged["total_events"] += ledger["total_events"]
        merged["total_revenue"] += Decimal(ledger["total_revenue"])
        for part in ("by_minute", "by_category", "by_product"):
            for key, tally in ledger[part].items():
                into = merged[part].setdefault(key, dict.fromkeys(_TALLY, 0))
                for column in _TALLY:
                    into[column] = (
                        Decimal(into[column]) + Decimal(tally[column])
                        if column == "revenue"
                        else into[column] + tally[column]
                    )
        shards = (run[0], run[4])
        for product, moment in ledger.get("sold_out", {}).items():
            shard_sold_out.setdefault(shards, {}).setdefault(product, []).append(moment)
        merged["product_categories"].update(ledger.get("product_categories", {}))
        merged["product_brands"].update(ledger.get("product_brands", {}))
    for (_, count), products in shard_sold_out.items():
        for product, moments in products.items():
            if len(moments) < count:
                continue  # a shard still had some of it
            known = merged["sold_out"].get(product)
            moment = max(moments)
            merged["sold_out"][product] = moment if known is None else min(known, moment)
    merged["total_revenue"] = str(merged["total_revenue"])
    return merged


def reconcile(ledger: dict[str, Any], gold: dict[str, pa.Table]) -> list[str]:
    """Every difference between the (merged) ledger and the Gold tables; empty when
    they agree."""
    problems: list[str] = []
    # A minute without events is a zero row in Gold's per-minute tables.
    quiet = {_minute(r["minute"]): _ZERO_TALLY for r in gold["revenue_per_minute"].to_pylist()}
    minutes = {**quiet, **ledger["by_minute"]}
    categories = ledger.get("product_categories", {})
    brands = ledger.get("product_brands", {})
    rows = _keyed(gold["revenue_per_minute"], "minute")
    problems += _compare("revenue_per_minute", minutes, rows, _TALLY)
    rows = _keyed(gold["funnel_per_minute"], "minute")
    problems += _compare("funnel_per_minute", minutes, rows, ("view", "cart", "purchase"))
    problems += _rates("funnel_per_minute", minutes, rows)
    rows = _keyed(gold["funnel_per_category"], "category")
    problems += _compare("funnel_per_category", ledger["by_category"], rows, _TALLY)
    problems += _rates("funnel_per_category", ledger["by_category"], rows)
    rows = _keyed(gold["product_sales"], "product_id")
    problems += _compare(
        "product_sales", ledger["by_product"], rows, ("view", "purchase", "units", "revenue")
    )
    problems += _attribute("product_sales", "category", categories, rows)
    problems += _attribute("product_sales", "brand", brands, rows)
    rows = _keyed(gold["product_funnel"], "product_id")
    problems += _compare("product_funnel", ledger["by_product"], rows, _TALLY[1:])
    problems += _rates("product_funnel", ledger["by_product"], rows)
    problems += _attribute("product_funnel", "category", categories, rows)
    problems += _attribute("product_funnel", "brand", brands, rows)
    problems += _sold_out(ledger, gold)
    problems += _spikes(ledger["by_minute"], gold["spikes"])
    return problems


# --------------------------------------------------------------------------- tables


def _minute(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00Z")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(value: Any) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def _keyed(table: pa.Table, key: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for row in table.to_pylist():
        value = row[key]
        rows[_minute(value) if isinstance(value, datetime) else str(value)] = row
    return rows


def _compare(
    table: str,
    ledger: dict[str, dict[str, Any]],
    gold: dict[str, dict[str, Any]],
    columns: Iterable[str],
) -> list[str]:
    problems = _unmatched(table, ledger, gold)
    for key in sorted(set(ledger) & set(gold)):
        for column in columns:
            want, got = ledger[key][column], gold[key][_GOLD[column]]
            if column == "revenue":
                want, got = _money(want), _money(got)
            if want != got:
                problems.append(f"{table}: {key} {_GOLD[column]}: ledger {want}, Gold {got}")
    return problems


def _unmatched(table: str, ledger: dict[str, Any], gold: dict[str, Any]) -> list[str]:
    """The rows one side has and the other lacks, in key order."""
    return [
        f"{table}: {key} is in the ledger but not in Gold"
        if key not in gold
        else f"{table}: {key} is in Gold but no ledger explains it"
        for key in sorted(set(ledger) ^ set(gold))
    ]


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def _rates(
    table: str, ledger: dict[str, dict[str, Any]], gold: dict[str, dict[str, Any]]
) -> list[str]:
    problems = []
    for key in sorted(set(ledger) & set(gold)):
        tally, row = ledger[key], gold[key]
        for column, want in (
            ("view_to_cart", _rate(tally["cart"], tally["view"])),
            ("cart_to_purchase", _rate(tally["purchase"], tally["cart"])),
        ):
            got = row[column]
            if (want is None) != (got is None) or (
                want is not None and got is not None and abs(want - got) > _RATE_TOLERANCE
            ):
                problems.append(f"{table}: {key} {column}: ledger {want}, Gold {got}")
    return problems


def _attribute(
    table: str, column: str, expected: dict[str, Any], gold: dict[str, dict[str, Any]]
) -> list[str]:
    """A product's ``column`` (category, brand) in Gold against the ledger's catalog."""
    return [
        f"{table}: {product} {column}: ledger {expected[product]}, Gold {row[column]}"
        for product, row in sorted(gold.items())
        if product in expected and row[column] != expected[product]
    ]


def _sold_out(ledger: dict[str, Any], gold: dict[str, pa.Table]) -> list[str]:
    """Sell-outs while the stream carried stock levels must match the ledger exactly."""
    tracking = gold["stock_tracking"].to_pylist()
    since = tracking[0]["tracked_since"] if tracking else None
    rows = {r["product_id"]: r for r in gold["sold_out"].to_pylist()}
    expected = {
        product: moment
        for product, moment in ledger.get("sold_out", {}).items()
        if since is not None and moment >= _iso(since)
    }
    categories = ledger.get("product_categories", {})
    problems = []
    for product in sorted(set(expected) | set(rows)):
        if product not in rows:
            problems.append(f"sold_out: {product} sold out at {expected[product]}, not in Gold")
            continue
        got = _iso(rows[product]["sold_out_at"])
        if product not in expected:
            problems.append(f"sold_out: {product} is in Gold ({got}) but no ledger explains it")
        elif got != expected[product]:
            problems.append(
                f"sold_out: {product} sold_out_at: ledger {expected[product]}, Gold {got}"
            )
        category = rows[product]["category"]
        if product in categories and category != categories[product]:
            problems.append(
                f"sold_out: {product} category: ledger {categories[product]}, Gold {category}"
            )
    return problems


# --------------------------------------------------------------------------- spikes


def spikes_of(events_per_minute: Sequence[int]) -> list[tuple[float | None, float, int]]:
    """(baseline, z-score, is_spike) of each minute, as ``gold_sql/spikes.sql`` defines
    them: the mean and population deviation of the previous ten minutes, the deviation
    floored at 10% of the mean and at 1."""
    out: list[tuple[float | None, float, int]] = []
    for i, events in enumerate(events_per_minute):
        window = events_per_minute[max(0, i - 10) : i]
        if not window:
            out.append((None, math.nan, 0))
            continue
        baseline = sum(window) / len(window)
        deviation = math.sqrt(sum((x - baseline) ** 2 for x in window) / len(window))
        z = (events - baseline) / max(deviation, 0.1 * baseline, 1.0)
        out.append((round(baseline, 3), round(z, 3), int(z >= 3.0)))
    return out


def _spikes(minutes: dict[str, dict[str, Any]], table: pa.Table) -> list[str]:
    keys = sorted(minutes)
    expected = dict(zip(keys, spikes_of([minutes[k]["events"] for k in keys]), strict=True))
    gold = _keyed(table, "minute")
    problems = _unmatched("spikes", expected, gold)
    for key in sorted(set(expected) & set(gold)):
        row, (baseline, z, flag) = gold[key], expected[key]
        if row["events"] != minutes[key]["events"]:
            problems.append(
                f"spikes: {key} events: ledger {minutes[key]['events']}, Gold {row['events']}"
            )
        if not _close(baseline, row["baseline"]):
            problems.append(f"spikes: {key} baseline: ledger {baseline}, Gold {row['baseline']}")
        if not _close(None if baseline is None else z, row["z_score"]):
            problems.append(f"spikes: {key} z_score: ledger {z}, Gold {row['z_score']}")
        # A score this close to the threshold may round either way in another engine.
        if row["is_spike"] != flag and (baseline is None or abs(z - 3.0) > _SCORE_TOLERANCE):
            problems.append(f"spikes: {key} is_spike: ledger {flag}, Gold {row['is_spike']}")
    return problems


def _close(want: float | None, got: float | None) -> bool:
    if want is None or got is None:
        return want is None and got is None
    return abs(want - got) <= _SCORE_TOLERANCE
