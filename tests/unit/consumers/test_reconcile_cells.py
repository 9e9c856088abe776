"""Reconciliation cell by cell, on Gold tables held in memory: a Gold that agrees with
the ledger gives no difference, and each cell changed by the smallest step (one event,
one cent, a rate past the rounding tolerance, a category, a millisecond) gives exactly
one difference naming table, row, column and both values, while every total stays
equal where the change allows. Pure logic: no Delta table, no engine."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from consumers.reconcile import _spikes, merge_ledgers, reconcile, spikes_of

M0, QUIET, M1, M2 = (f"2026-11-27T09:0{i}:00Z" for i in range(4))


def tally(events: int, view: int, cart: int, purchase: int, units: int, revenue: str) -> dict:
    return {
        "events": events,
        "view": view,
        "cart": cart,
        "purchase": purchase,
        "units": units,
        "revenue": revenue,
    }


LEDGER: dict[str, Any] = {
    "run_id": "r1",
    "total_events": 9,
    "total_revenue": "25.50",
    "by_minute": {
        M0: tally(4, 2, 1, 1, 2, "20.00"),
        M1: tally(3, 1, 1, 1, 1, "5.50"),
        M2: tally(2, 2, 0, 0, 0, "0.00"),
    },
    "by_category": {"shoes": tally(6, 3, 1, 2, 3, "25.50"), "hats": tally(3, 2, 1, 0, 0, "0.00")},
    "by_product": {"p1": tally(6, 3, 1, 2, 3, "25.50"), "p2": tally(3, 2, 1, 0, 0, "0.00")},
    "product_categories": {"p1": "shoes", "p2": "hats"},
    "product_brands": {"p1": "acme", "p2": None},
    "sold_out": {"p1": "2026-11-27T09:01:30.250Z"},
}

# Spikes of the minutes with events (4, 3, 2), worked by hand: Gold computes spikes over
# the minutes that had events (the mean of those before, the deviation floored at 1).
SPIKES = {
    M0: (None, None, 0),
    M1: (4.0, -1.0, 0),
    M2: (3.5, -1.5, 0),
}


def when(minute: str) -> datetime:
    return datetime.fromisoformat(minute.replace("Z", "+00:00"))


def rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def rows_of(part: dict[str, dict[str, Any]], key: str, keyed: Callable[[str], Any]) -> list:
    return [
        {
            key: keyed(k),
            "events": t["events"],
            "views": t["view"],
            "carts": t["cart"],
            "purchases": t["purchase"],
            "units": t["units"],
            "revenue": Decimal(t["revenue"]),
            "view_to_cart": rate(t["cart"], t["view"]),
            "cart_to_purchase": rate(t["purchase"], t["cart"]),
        }
        for k, t in sorted(part.items())
    ]


def agreeing_gold() -> dict[str, list[dict[str, Any]]]:
    """The Gold tables (as rows) that the ledger above determines, with a quiet minute."""
    minutes = {**LEDGER["by_minute"], QUIET: tally(0, 0, 0, 0, 0, "0.00")}
    per_minute = rows_of(minutes, "minute", when)
    products = [
        {
            **row,
            "category": LEDGER["product_categories"][row["product_id"]],
            "brand": LEDGER["product_brands"][row["product_id"]],
        }
        for row in rows_of(LEDGER["by_product"], "product_id", str)
    ]
    return {
        "revenue_per_minute": per_minute,
        "funnel_per_minute": copy.deepcopy(per_minute),
        "funnel_per_category": rows_of(LEDGER["by_category"], "category", str),
        "product_sales": products,
        "product_funnel": copy.deepcopy(products),
        "sold_out": [
            {
                "product_id": "p1",
                "category": "shoes",
                "sold_out_at": datetime(2026, 11, 27, 9, 1, 30, 250_000, tzinfo=UTC),
            }
        ],
        "stock_tracking": [{"tracked_since": datetime(2026, 11, 27, 9, 0, tzinfo=UTC)}],
        "spikes": [
            {
                "minute": when(m),
                "events": minutes[m]["events"],
                "baseline": b,
                "z_score": z,
                "is_spike": s,
            }
            for m, (b, z, s) in SPIKES.items()
        ],
    }


def differences(
    change: Callable[[dict[str, list[dict[str, Any]]]], object] = lambda gold: None,
    ledger: dict[str, Any] | None = None,
) -> list[str]:
    gold = agreeing_gold()
    change(gold)
    tables = {name: pa.Table.from_pylist(rows) for name, rows in gold.items()}
    return reconcile(copy.deepcopy(LEDGER) if ledger is None else ledger, tables)


def row(gold: dict[str, list[dict[str, Any]]], table: str, index: int) -> dict[str, Any]:
    return gold[table][index]


def test_a_gold_that_agrees_has_no_difference() -> None:
    assert differences() == []


CELLS: dict[str, tuple[Callable[[dict[str, list[dict[str, Any]]]], object], str]] = {
    "a view moved to another minute": (
        lambda g: (
            row(g, "revenue_per_minute", 0).update(views=1, events=3),
            row(g, "revenue_per_minute", 2).update(views=2, events=4),
        ),
        "",  # four differences, checked below
    ),
    "one cent more revenue": (
        lambda g: row(g, "revenue_per_minute", 2).update(revenue=Decimal("5.51")),
        f"revenue_per_minute: {M1} revenue: ledger 5.50, Gold 5.51",
    ),
    "a unit more in a minute": (
        lambda g: row(g, "revenue_per_minute", 0).update(units=3),
        f"revenue_per_minute: {M0} units: ledger 2, Gold 3",
    ),
    "a cart more in the funnel of a minute": (
        lambda g: row(g, "funnel_per_minute", 3).update(carts=1),
        f"funnel_per_minute: {M2} carts: ledger 0, Gold 1",
    ),
    "a conversion rate past the tolerance": (
        lambda g: row(g, "funnel_per_minute", 0).update(view_to_cart=0.500002),
        f"funnel_per_minute: {M0} view_to_cart: ledger 0.5, Gold 0.500002",
    ),
    "a rate where the ledger has none": (
        lambda g: row(g, "funnel_per_minute", 3).update(cart_to_purchase=0.0),
        f"funnel_per_minute: {M2} cart_to_purchase: ledger None, Gold 0.0",
    ),
    "no rate where the ledger has one": (
        lambda g: row(g, "funnel_per_category", 1).update(view_to_cart=None),
        "funnel_per_category: shoes view_to_cart: ledger 0.333333, Gold None",
    ),
    "a cart counted as a purchase in a category": (
        lambda g: row(g, "funnel_per_category", 0).update(carts=0, purchases=1),
        "",  # two differences, checked below
    ),
    "one cent of a category's revenue": (
        lambda g: row(g, "funnel_per_category", 1).update(revenue=Decimal("25.49")),
        "funnel_per_category: shoes revenue: ledger 25.50, Gold 25.49",
    ),
    "an event more in a category": (
        lambda g: row(g, "funnel_per_category", 0).update(events=4),
        "funnel_per_category: hats events: ledger 3, Gold 4",
    ),
    "a product's views": (
        lambda g: row(g, "product_sales", 1).update(views=3),
        "product_sales: p2 views: ledger 2, Gold 3",
    ),
    "a product's units": (
        lambda g: row(g, "product_sales", 0).update(units=2),
        "product_sales: p1 units: ledger 3, Gold 2",
    ),
    "a category swapped": (
        lambda g: row(g, "product_sales", 0).update(category="hats"),
        "product_sales: p1 category: ledger shoes, Gold hats",
    ),
    "a brand given where the catalog has none": (
        lambda g: row(g, "product_funnel", 1).update(brand="acme"),
        "product_funnel: p2 brand: ledger None, Gold acme",
    ),
    "a product's carts in its funnel": (
        lambda g: row(g, "product_funnel", 1).update(carts=2),
        "product_funnel: p2 carts: ledger 1, Gold 2",
    ),
    "a product's views in its funnel": (
        lambda g: row(g, "product_funnel", 0).update(views=4),
        "product_funnel: p1 views: ledger 3, Gold 4",
    ),
    "a product's rate in its funnel": (
        lambda g: row(g, "product_funnel", 1).update(view_to_cart=0.4),
        "product_funnel: p2 view_to_cart: ledger 0.5, Gold 0.4",
    ),
    "a brand in the product sales": (
        lambda g: row(g, "product_sales", 0).update(brand="other"),
        "product_sales: p1 brand: ledger acme, Gold other",
    ),
    "a product's category in its funnel": (
        lambda g: row(g, "product_funnel", 0).update(category="hats"),
        "product_funnel: p1 category: ledger shoes, Gold hats",
    ),
    "a product no run sold": (
        lambda g: g["product_sales"].append({**row(g, "product_sales", 0), "product_id": "p9"}),
        "product_sales: p9 is in Gold but no ledger explains it",
    ),
    "a product missing from its funnel": (
        lambda g: g["product_funnel"].pop(),
        "product_funnel: p2 is in the ledger but not in Gold",
    ),
    "a sell-out a millisecond late": (
        lambda g: row(g, "sold_out", 0).update(
            sold_out_at=datetime(2026, 11, 27, 9, 1, 30, 251_000, tzinfo=UTC)
        ),
        "sold_out: p1 sold_out_at: ledger 2026-11-27T09:01:30.250Z, Gold 2026-11-27T09:01:30.251Z",
    ),
    "a sell-out dropped": (
        lambda g: g["sold_out"].pop(),
        "sold_out: p1 sold out at 2026-11-27T09:01:30.250Z, not in Gold",
    ),
    "a sell-out no ledger has": (
        lambda g: g["sold_out"].append(
            {**row(g, "sold_out", 0), "product_id": "p2", "category": "hats"}
        ),
        "sold_out: p2 is in Gold (2026-11-27T09:01:30.250Z) but no ledger explains it",
    ),
    "a sell-out under another category": (
        lambda g: row(g, "sold_out", 0).update(category="hats"),
        "sold_out: p1 category: ledger shoes, Gold hats",
    ),
    "a minute flagged as a spike": (
        lambda g: row(g, "spikes", 2).update(is_spike=1),
        f"spikes: {M2} is_spike: ledger 0, Gold 1",
    ),
    "a spike's events": (
        lambda g: row(g, "spikes", 2).update(events=3),
        f"spikes: {M2} events: ledger 2, Gold 3",
    ),
    "a baseline off": (
        lambda g: row(g, "spikes", 1).update(baseline=4.003),
        f"spikes: {M1} baseline: ledger 4.0, Gold 4.003",
    ),
    "a baseline for the first minute": (
        lambda g: row(g, "spikes", 0).update(baseline=0.0),
        f"spikes: {M0} baseline: ledger None, Gold 0.0",
    ),
    "a z-score off": (
        lambda g: row(g, "spikes", 2).update(z_score=-1.497),
        f"spikes: {M2} z_score: ledger -1.5, Gold -1.497",
    ),
    "a z-score for the first minute": (
        lambda g: row(g, "spikes", 0).update(z_score=0.0),
        f"spikes: {M0} z_score: ledger nan, Gold 0.0",
    ),
    "a minute missing from the spikes": (
        lambda g: g["spikes"].pop(1),
        f"spikes: {M1} is in the ledger but not in Gold",
    ),
    "a quiet minute with an event": (
        lambda g: row(g, "revenue_per_minute", 1).update(events=1, views=1),
        "",  # two differences, checked below
    ),
}

MANY = {
    "a view moved to another minute": [
        f"revenue_per_minute: {M0} events: ledger 4, Gold 3",
        f"revenue_per_minute: {M0} views: ledger 2, Gold 1",
        f"revenue_per_minute: {M1} events: ledger 3, Gold 4",
        f"revenue_per_minute: {M1} views: ledger 1, Gold 2",
    ],
    "a cart counted as a purchase in a category": [
        "funnel_per_category: hats carts: ledger 1, Gold 0",
        "funnel_per_category: hats purchases: ledger 0, Gold 1",
    ],
    "a quiet minute with an event": [
        f"revenue_per_minute: {QUIET} events: ledger 0, Gold 1",
        f"revenue_per_minute: {QUIET} views: ledger 0, Gold 1",
    ],
}


@pytest.mark.parametrize("case", list(CELLS))
def test_one_changed_cell_is_named(case: str) -> None:
    change, expected = CELLS[case]
    assert differences(change) == MANY.get(case, [expected])


def test_rates_within_the_rounding_tolerance_agree() -> None:
    def nudge(gold: dict[str, list[dict[str, Any]]]) -> None:
        row(gold, "funnel_per_minute", 0).update(view_to_cart=0.5000005)
        row(gold, "product_funnel", 0).update(cart_to_purchase=1.9999995)
        row(gold, "spikes", 1).update(baseline=4.0015, z_score=-0.9985)
        row(gold, "funnel_per_minute", 3).update(view_to_cart=1e-6)  # exactly the tolerance

    assert differences(nudge) == []


def test_gold_keys_in_other_time_zones_and_money_scales_agree() -> None:
    plus_one = timezone(timedelta(hours=1))

    def restate(gold: dict[str, list[dict[str, Any]]]) -> None:
        for table in ("revenue_per_minute", "funnel_per_minute", "spikes"):
            for r in gold[table]:
                r["minute"] = r["minute"].astimezone(plus_one)
        row(gold, "sold_out", 0)["sold_out_at"] = datetime(
            2026, 11, 27, 10, 1, 30, 250_400, tzinfo=plus_one
        )
        row(gold, "revenue_per_minute", 2)["revenue"] = Decimal("5.5")

    assert differences(restate) == []


def test_a_sell_out_before_stock_was_tracked_is_not_expected() -> None:
    def late_tracking(gold: dict[str, list[dict[str, Any]]]) -> None:
        gold["stock_tracking"] = [{"tracked_since": datetime(2026, 11, 27, 9, 2, tzinfo=UTC)}]
        gold["sold_out"] = []

    assert differences(late_tracking) == []

    def untracked(gold: dict[str, list[dict[str, Any]]]) -> None:
        gold["stock_tracking"] = []
        gold["sold_out"] = []

    assert differences(untracked) == []


def test_a_sell_out_at_the_moment_tracking_starts_is_expected() -> None:
    def tracked_then(gold: dict[str, list[dict[str, Any]]]) -> None:
        gold["stock_tracking"] = [
            {"tracked_since": datetime(2026, 11, 27, 9, 1, 30, 250_000, tzinfo=UTC)}
        ]
        gold["sold_out"] = []

    assert differences(tracked_then) == [
        "sold_out: p1 sold out at 2026-11-27T09:01:30.250Z, not in Gold"
    ]


def test_a_ledger_without_catalog_or_sell_outs_checks_the_counts_only() -> None:
    ledger = copy.deepcopy(LEDGER)
    del ledger["product_categories"], ledger["product_brands"], ledger["sold_out"]

    def no_sell_outs(gold: dict[str, list[dict[str, Any]]]) -> None:
        gold["sold_out"] = []
        row(gold, "product_sales", 0).update(category="anything", brand="any")

    assert differences(no_sell_outs, ledger) == []


def test_the_ledger_side_of_a_row_only_one_side_has() -> None:
    ledger = copy.deepcopy(LEDGER)
    ledger["by_category"]["bags"] = tally(1, 1, 0, 0, 0, "0.00")
    assert differences(ledger=ledger) == [
        "funnel_per_category: bags is in the ledger but not in Gold"
    ]


# --------------------------------------------------------------------------- spikes


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([4, 3, 2, 0], [(None, math.nan, 0), (4.0, -1.0, 0), (3.5, -1.5, 0), (3.0, -3.0, 0)]),
        ([2, 4, 30], [(None, math.nan, 0), (2.0, 2.0, 0), (3.0, 27.0, 1)]),
        # the deviation floored at 10% of the mean: 100 over a flat 100 is z = 5
        (
            [100, 100, 100, 150],
            [(None, math.nan, 0), (100.0, 0.0, 0), (100.0, 0.0, 0), (100.0, 5.0, 1)],
        ),
        # a z-score of exactly 3 is a spike
        ([100, 100, 130], [(None, math.nan, 0), (100.0, 0.0, 0), (100.0, 3.0, 1)]),
        # baseline and z rounded to 3 places; the population deviation (not the sample's)
        ([1, 1, 4, 9], [(None, math.nan, 0), (1.0, 0.0, 0), (1.0, 3.0, 1), (2.0, 4.95, 1)]),
    ],
)
def test_spikes_by_hand(events: list[int], expected: list[tuple[float | None, float, int]]) -> None:
    got = spikes_of(events)
    assert [(b, s) for b, _, s in got] == [(b, s) for b, _, s in expected]
    for (_, z, _), (_, want, _) in zip(got, expected, strict=True):
        assert (math.isnan(z) and math.isnan(want)) or z == want


def test_the_baseline_is_the_ten_minutes_before() -> None:
    *_, (baseline, z, flag) = spikes_of([0] + [10] * 10 + [10])
    assert (baseline, z, flag) == (10.0, 0.0, 0)
    *_, (baseline, z, flag) = spikes_of([1, 2, 2])
    assert baseline == 1.5 and z == 0.5
    *_, (baseline, _, _) = spikes_of([1, 1, 2, 0])
    assert baseline == 1.333


# --------------------------------------------------------------------------- several runs


def run_ledger(run: str | None, events: int, **extra: Any) -> dict[str, Any]:
    revenue = f"{events}.25"
    t = tally(events, 0, 0, events, events, revenue)
    ledger = {
        "total_events": events,
        "total_revenue": revenue,
        "by_minute": {M0: t},
        "by_category": {"shoes": t},
        "by_product": {"p1": t},
        **extra,
    }
    if run is not None:
        ledger["run_id"] = run
    return ledger


def test_ledgers_add_up_per_cell_and_a_replay_counts_once() -> None:
    merged = merge_ledgers(
        [
            run_ledger(
                "a",
                2,
                sold_out={"p1": "2026-11-27T09:05:00.000Z"},
                product_categories={"p1": "shoes"},
            ),
            run_ledger(
                "b",
                3,
                sold_out={"p1": "2026-11-27T09:04:00.000Z", "p2": "x"},
                product_brands={"p1": "acme"},
            ),
            run_ledger("a", 1),  # a replay cut short: the larger ledger of run a counts
            run_ledger(None, 4),
            run_ledger(None, 5),  # two ledgers without run ids are two runs
        ]
    )
    assert merged["runs"] == ["#3", "#4", "a", "b"]
    assert merged["total_events"] == 2 + 3 + 4 + 5
    assert merged["total_revenue"] == "15.00"
    for part, key in (("by_minute", M0), ("by_category", "shoes"), ("by_product", "p1")):
        assert merged[part][key] == {
            "events": 14,
            "view": 0,
            "cart": 0,
            "purchase": 14,
            "units": 14,
            "revenue": Decimal("15.00"),
        }
    assert merged["sold_out"] == {"p1": "2026-11-27T09:04:00.000Z", "p2": "x"}
    assert merged["product_categories"] == {"p1": "shoes"}
    assert merged["product_brands"] == {"p1": "acme"}


def test_the_larger_ledger_of_a_run_counts_whichever_comes_first() -> None:
    for order in ([1, 3], [3, 1]):
        merged = merge_ledgers([run_ledger("a", n) for n in order])
        assert (merged["runs"], merged["total_events"]) == (["a"], 3)


def test_a_merged_ledger_reconciles_with_the_gold_of_its_runs() -> None:
    first = copy.deepcopy(LEDGER)
    second = copy.deepcopy(LEDGER)
    second["run_id"] = "r2"
    for part in ("by_minute", "by_category", "by_product"):
        for key in second[part]:
            second[part][key] = tally(0, 0, 0, 0, 0, "0.00")
    second["sold_out"] = {"p1": "2026-11-27T09:01:45.000Z"}
    merged = merge_ledgers([first, second])
    assert differences(ledger=merged) == []


def test_minutes_and_moments_are_read_in_utc_whatever_the_machine_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert differences() == []
        assert differences(CELLS["a sell-out a millisecond late"][0]) == [
            CELLS["a sell-out a millisecond late"][1]
        ]
    finally:
        monkeypatch.undo()
        time.tzset()


def test_sell_outs_of_a_ledger_without_catalog_are_still_checked() -> None:
    ledger = copy.deepcopy(LEDGER)
    del ledger["product_categories"]
    assert differences(ledger=ledger) == []
    assert differences(CELLS["a sell-out dropped"][0], ledger) == [CELLS["a sell-out dropped"][1]]


def test_every_sell_out_is_checked_after_one_missing() -> None:
    ledger = copy.deepcopy(LEDGER)
    ledger["sold_out"] = {"p0": "2026-11-27T09:01:00.000Z", **ledger["sold_out"]}
    assert differences(CELLS["a sell-out under another category"][0], ledger) == [
        "sold_out: p0 sold out at 2026-11-27T09:01:00.000Z, not in Gold",
        "sold_out: p1 category: ledger shoes, Gold hats",
    ]


def spike_rows(*rows: tuple[str, int, float | None, float | None, int]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"minute": when(m), "events": e, "baseline": b, "z_score": z, "is_spike": s}
            for m, e, b, z, s in rows
        ]
    )


def test_a_score_at_the_tolerance_agrees_and_a_flag_at_the_threshold_may_differ() -> None:
    # events 100, 100, 130: z is 0 in the second minute and exactly 3 in the third, where
    # another engine may round the flag either way.
    minutes = {M0: {"events": 100}, M1: {"events": 100}, M2: {"events": 130}}
    gold = spike_rows(
        (M0, 100, None, None, 0), (M1, 100, 100.0, 0.002, 0), (M2, 130, 100.0, 3.0, 0)
    )
    assert _spikes(minutes, gold) == []
    gold = spike_rows(
        (M0, 100, None, None, 1), (M1, 100, 100.003, 0.0025, 0), (M2, 130, 100.0, 3.0, 1)
    )
    assert _spikes(minutes, gold) == [
        f"spikes: {M0} is_spike: ledger 0, Gold 1",
        f"spikes: {M1} baseline: ledger 100.0, Gold 100.003",
        f"spikes: {M1} z_score: ledger 0.0, Gold 0.0025",
    ]
