"""What a ledger says besides its tallies, checked against the events themselves: the
funnel and its rates, each product's category and brand, and the sell-outs in time
order, as UTC instants whatever the machine's zone."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from producer.events import EventType
from producer.simulation.engine import Simulation
from producer.simulation.ledger import Ledger, minute_of
from producer.simulation.scenario_file import load_scenario


def test_funnel_categories_and_brands_come_from_the_events() -> None:
    simulation = Simulation(load_scenario("flash-sale"), 9)
    events = list(simulation.events(max_events=3000))
    ledger = Ledger(brands=simulation.brands)
    ledger.record_many(events)
    out = ledger.to_json()
    views, carts, purchases = (
        sum(1 for e in events if e.event_type is kind)
        for kind in (EventType.VIEW, EventType.CART, EventType.PURCHASE)
    )
    assert 0 < purchases < carts < views
    assert out["funnel"] == {
        "view": views,
        "cart": carts,
        "purchase": purchases,
        "view_to_cart": round(carts / views, 6),
        "cart_to_purchase": round(purchases / carts, 6),
    }
    products = sorted({e.product_id for e in events})
    assert list(out["product_categories"]) == products
    assert out["product_categories"] == {e.product_id: e.category for e in events}
    assert out["product_brands"] == {p: simulation.brands[p] for p in products}


def test_a_ledger_of_views_only_has_no_rates() -> None:
    events = [
        e
        for e in Simulation(load_scenario("default"), 1).events(max_events=200)
        if e.event_type is EventType.VIEW
    ]
    ledger = Ledger()
    ledger.record_many(events)
    funnel = ledger.to_json()["funnel"]
    assert (funnel["view_to_cart"], funnel["cart_to_purchase"]) == (0.0, None)


def test_sell_outs_are_utc_instants_in_time_order(monkeypatch: pytest.MonkeyPatch) -> None:
    purchases = [
        e
        for e in Simulation(load_scenario("flash-sale"), 9).events(max_events=3000)
        if e.event_type is EventType.PURCHASE
    ]
    early, late = purchases[0], purchases[-1]
    assert early.timestamp_ms < late.timestamp_ms and early.product_id != late.product_id
    ledger = Ledger()
    ledger.record(late, sells_out=True)
    ledger.record(early, sells_out=True)
    ledger.record(purchases[1])  # not a sell-out unless told
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        sold_out = ledger.to_json()["sold_out"]
        minute = minute_of(late.timestamp_ms)
    finally:
        monkeypatch.undo()
        time.tzset()

    def instant(ms: int) -> str:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    assert list(sold_out.items()) == [
        (early.product_id, instant(early.timestamp_ms)),
        (late.product_id, instant(late.timestamp_ms)),
    ]
    assert minute == datetime.fromtimestamp(late.timestamp_ms / 1000, tz=UTC).strftime(
        "%Y-%m-%dT%H:%M:00Z"
    )
