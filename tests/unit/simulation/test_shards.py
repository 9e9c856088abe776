"""Shards: each process simulates its own users and its own share of every product's stock."""

from __future__ import annotations

from collections import Counter

import pytest

from consumers.reconcile import merge_ledgers
from producer.errors import InvalidOption
from producer.events import EventType, FlashSaleEvent
from producer.simulation.engine import Simulation
from producer.simulation.ledger import Ledger
from producer.simulation.scenario_file import load_scenario

SEED = 5
SHARDS = 3


def shard(index: int, shards: int = SHARDS, scenario: str = "flash-sale") -> Simulation:
    return Simulation(load_scenario(scenario), SEED, shards=shards, shard=index, run_id="r1")


@pytest.fixture(scope="module")
def sale() -> list[tuple[Simulation, list[FlashSaleEvent]]]:
    # The whole flash sale (a few minutes of it), in three shards: stock sells out.
    runs = []
    for index in range(SHARDS):
        simulation = shard(index)
        runs.append((simulation, list(simulation.events(max_seconds=240))))
    return runs


def test_stock_shares_add_up_to_the_shops_stock_and_are_never_oversold(
    sale: list[tuple[Simulation, list[FlashSaleEvent]]],
) -> None:
    shop = Simulation(load_scenario("flash-sale"), SEED).stock
    assert shop is not None
    assert all(simulation.catalog_stock == shop for simulation, _ in sale)
    # Each shard opens with its fixed share of every product; the shares add up.
    shares = [shard(i).stock for i in range(SHARDS)]
    assert [sum(units) for units in zip(*shares, strict=True)] == shop  # type: ignore[arg-type]
    assert shares == [shard(i).stock for i in range(SHARDS)]
    index = {p.product_id: p.index for p in sale[0][0].products}
    sold: Counter[str] = Counter()
    for (simulation, events), opening in zip(sale, shares, strict=True):
        assert simulation.stock is not None and opening is not None
        own: Counter[str] = Counter()
        for e in events:
            if e.event_type is EventType.PURCHASE:
                own[e.product_id] += e.quantity
                sold[e.product_id] += e.quantity
                assert own[e.product_id] <= opening[index[e.product_id]]
        for product, units in own.items():
            assert units == opening[index[product]] - simulation.stock[index[product]]
    for product, units in sold.items():
        assert units <= shop[index[product]]
    # The sale does sell out in every shard, so the shares were really used up.
    assert all(len(simulation.sold_out) >= 3 for simulation, _ in sale)


def test_shards_have_their_own_users_and_ids_that_never_collide(
    sale: list[tuple[Simulation, list[FlashSaleEvent]]],
) -> None:
    population = load_scenario("flash-sale").population
    first = load_scenario("flash-sale").first_user_id
    ids: set[str] = set()
    sessions: dict[str, int] = {}
    for simulation, events in sale:
        assert events
        assert {(int(e.user_id) - first) % SHARDS for e in events} == {simulation.shard}
        assert all(0 <= int(e.user_id) - first < population for e in events)
        ids |= {e.event_id for e in events}
        for e in events:
            assert sessions.setdefault(str(e.session_id), simulation.shard) == simulation.shard
        assert all(e.stock_remaining is None for e in events)  # no shard knows the shop's
    assert len(ids) == sum(len(events) for _, events in sale)


def test_shards_split_the_events_and_are_reproducible_from_the_seed() -> None:
    runs = [list(shard(i, scenario="default").events(max_events=1000)) for i in range(SHARDS)]
    assert [len(r) for r in runs] == [334, 333, 333]
    again = list(shard(1, scenario="default").events(max_events=1000))
    assert again == runs[1]
    other = list(
        Simulation(load_scenario("default"), SEED + 1, shards=SHARDS, shard=1, run_id="r1").events(
            max_events=1000
        )
    )
    assert other != runs[1]
    # Every second's events are split: together the shards emit the timeline's counts.
    per_second: Counter[int] = Counter()
    for events in runs:
        per_second.update(e.timestamp_ms // 1000 for e in events)
    whole = list(Simulation(load_scenario("default"), SEED).events(max_events=1000))
    assert per_second == Counter(e.timestamp_ms // 1000 for e in whole)


def test_one_shard_is_the_unsharded_run() -> None:
    scenario = load_scenario("flash-sale")
    one = Simulation(scenario, SEED, shards=1, shard=0, run_id="r1").events(max_events=3000)
    plain = Simulation(scenario, SEED, run_id="r1").events(max_events=3000)
    assert list(one) == list(plain)


@pytest.mark.parametrize(
    ("shards", "index", "workers", "message"),
    [
        (0, 0, 1, "shards: must be at least 1, got 0"),
        (2, 2, 1, "shard: must be between 0 and 1, got 2"),
        (2, 0, 2, "shards: cannot be combined with workers"),
    ],
)
def test_invalid_shards_are_refused(shards: int, index: int, workers: int, message: str) -> None:
    with pytest.raises(InvalidOption) as caught:
        Simulation(load_scenario("default"), 1, shards=shards, shard=index, workers=workers)
    assert str(caught.value).startswith(message)


def test_shard_ledgers_add_up_and_a_sell_out_is_the_last_shards(
    sale: list[tuple[Simulation, list[FlashSaleEvent]]],
) -> None:
    ledgers = []
    for simulation, events in sale:
        ledger = Ledger(meta={"run_id": "r1", "shards": SHARDS, "shard": simulation.shard})
        ledger.record_many(events, simulation.sold_out_ids)
        ledgers.append(ledger.to_json())
    merged = merge_ledgers(ledgers)
    assert merged["total_events"] == sum(len(events) for _, events in sale)
    assert merged["runs"] == ["r1"]
    everywhere = set.intersection(*(set(s.sold_out) for s, _ in sale))
    assert everywhere  # some product sold out in every shard
    assert set(merged["sold_out"]) == everywhere
    for product in everywhere:
        assert merged["sold_out"][product] == max(ledger["sold_out"][product] for ledger in ledgers)
