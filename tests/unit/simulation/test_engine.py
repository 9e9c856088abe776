"""The simulator: rates, funnel statistics, popularity skew, causality, stock, determinism."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import replace
from decimal import Decimal
from itertools import islice

import fastavro
import pytest

from producer.contract.catalog import SchemaCatalog
from producer.errors import InvalidOption
from producer.events import EventType, FlashSaleEvent
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario

SEED = 20261127  # fixed: every statistical check below is reproducible


@pytest.fixture(scope="module")
def default_run() -> list[FlashSaleEvent]:
    return list(Simulation(load_scenario("default"), SEED).events(max_seconds=3600))


@pytest.fixture(scope="module")
def sale_run() -> tuple[Simulation, list[FlashSaleEvent]]:
    simulation = Simulation(load_scenario("flash-sale"), SEED)
    return simulation, list(simulation.events(max_seconds=900))


def test_default_seconds_fall_in_the_original_bands_with_its_proportions() -> None:
    counts = [c for _, _, c in islice(load_scenario("default").seconds(SEED), 3600)]
    normal = [c for c in counts if 5 <= c <= 15]
    spike = [c for c in counts if 40 <= c <= 80]
    assert len(normal) + len(spike) == 3600  # every second inside one of the bands
    assert abs(len(spike) / 3600 - 0.2) < 0.02
    assert set(normal) == set(range(5, 16))
    assert min(spike) <= 42 and max(spike) >= 78


def test_events_per_second_are_the_timelines_counts(default_run: list[FlashSaleEvent]) -> None:
    per_second = Counter(e.timestamp_ms // 1000 for e in default_run)
    start = load_scenario("default").start_ms // 1000
    planned = [c for _, _, c in islice(load_scenario("default").seconds(SEED), 3600)]
    assert [per_second.get(start + i, 0) for i in range(3600)] == planned


def sessions(events: list[FlashSaleEvent]) -> dict[str, list[FlashSaleEvent]]:
    grouped: dict[str, list[FlashSaleEvent]] = defaultdict(list)
    for e in events:
        assert e.session_id is not None
        grouped[e.session_id].append(e)
    return grouped


def test_funnel_conversion_matches_the_configuration(default_run: list[FlashSaleEvent]) -> None:
    funnel = load_scenario("default").funnel
    grouped = sessions(default_run)
    # Sessions still open when the run stops have not had their chance to convert.
    closed = [
        s for s in grouped.values() if s[-1].timestamp_ms < default_run[-1].timestamp_ms - 60_000
    ]
    with_cart = [s for s in closed if any(e.event_type is EventType.CART for e in s)]
    with_purchase = [s for s in with_cart if any(e.event_type is EventType.PURCHASE for e in s)]
    assert len(closed) > 20_000
    assert abs(len(with_cart) / len(closed) - funnel.cart_rate) < 0.01
    assert abs(len(with_purchase) / len(with_cart) - funnel.purchase_rate) < 0.015
    views = Counter(sum(e.event_type is EventType.VIEW for e in s) for s in closed)
    assert set(views) == set(range(funnel.views_per_session[0], funnel.views_per_session[1] + 1))


def test_quantities_follow_the_configured_weights(default_run: list[FlashSaleEvent]) -> None:
    carts = [e.quantity for e in default_run if e.event_type is EventType.CART]
    shares = {q: n / len(carts) for q, n in Counter(carts).items()}
    for units, weight in load_scenario("default").funnel.quantity:
        assert abs(shares[units] - weight) < 0.015


def test_product_popularity_is_zipf_like(default_run: list[FlashSaleEvent]) -> None:
    views = Counter(e.product_id for e in default_run if e.event_type is EventType.VIEW)
    ranked = [n for _, n in views.most_common()]
    total = sum(ranked)
    harmonic = sum(1 / r for r in range(1, 101))  # skew 1.0 over 100 products
    assert abs(ranked[0] / total - 1 / harmonic) < 0.01
    assert 8 < ranked[0] / ranked[9] < 12.5  # rank 1 vs rank 10: about 10^1


def test_categories_follow_their_weights() -> None:
    simulation = Simulation(load_scenario("flash-sale"), SEED)
    shares = Counter(p.category for p in simulation.products)
    # weights 3:3:2:2:1 over 200 products
    assert abs(shares["electronics"] / 200 - 3 / 11) < 0.07
    assert abs(shares["toys"] / 200 - 1 / 11) < 0.05


def test_a_product_keeps_one_price_category_and_brand(
    sale_run: tuple[Simulation, list[FlashSaleEvent]],
) -> None:
    _, events = sale_run
    seen: dict[str, tuple[str, str | None, Decimal | None]] = {}
    for e in events:
        assert seen.setdefault(e.product_id, (e.category, e.brand, e.list_price)) == (
            e.category,
            e.brand,
            e.list_price,
        )


def test_every_event_keeps_the_revenue_identity(
    sale_run: tuple[Simulation, list[FlashSaleEvent]], default_run: list[FlashSaleEvent]
) -> None:
    for e in [*sale_run[1], *default_run]:
        if e.event_type is EventType.PURCHASE:
            assert e.revenue == e.quantity * e.price
        else:
            assert e.revenue == Decimal("0.00")
        assert e.price.as_tuple().exponent == -2


def test_discounts_apply_inside_the_sale_window_only(
    sale_run: tuple[Simulation, list[FlashSaleEvent]],
) -> None:
    scenario = load_scenario("flash-sale")
    assert scenario.sale is not None
    for e in sale_run[1]:
        second = (e.timestamp_ms - scenario.start_ms) // 1000
        if scenario.sale.starts_at <= second < scenario.sale.ends_at:
            assert e.sale_id == scenario.sale.id and e.discount_pct == 40
            assert e.list_price is not None
            assert e.price == (e.list_price * 60 / 100).quantize(Decimal("0.01"))
        else:
            assert (e.sale_id, e.discount_pct, e.price) == (None, 0, e.list_price)


def test_no_purchase_without_a_prior_cart_of_that_product_in_the_session(
    sale_run: tuple[Simulation, list[FlashSaleEvent]], default_run: list[FlashSaleEvent]
) -> None:
    for run in (sale_run[1], default_run):
        purchases = 0
        for session in sessions(run).values():
            users = {e.user_id for e in session}
            assert len(users) == 1
            carted: set[tuple[str, int]] = set()
            for e in session:
                if e.event_type is EventType.CART:
                    carted.add((e.product_id, e.quantity))
                elif e.event_type is EventType.PURCHASE:
                    purchases += 1
                    assert (e.product_id, e.quantity) in carted
        assert purchases > 1000


def test_stock_is_never_oversold_and_sold_out_products_stop_selling(
    sale_run: tuple[Simulation, list[FlashSaleEvent]],
) -> None:
    simulation, events = sale_run
    initial = Simulation(load_scenario("flash-sale"), SEED).stock
    assert initial is not None
    by_id = {p.product_id: p.index for p in simulation.products}
    sold: Counter[str] = Counter()
    for e in events:
        if e.event_type is EventType.PURCHASE:
            sold[e.product_id] += e.quantity
            assert sold[e.product_id] <= initial[by_id[e.product_id]]
    assert len(simulation.sold_out) >= 5  # the sale really does sell out
    for product_id, moment in simulation.sold_out.items():
        assert sold[product_id] == initial[by_id[product_id]]
        later = [e for e in events if e.product_id == product_id and e.timestamp_ms > moment]
        assert all(e.event_type is EventType.VIEW for e in later)
        assert later, "shoppers keep viewing a sold-out product"


def test_the_surge_is_tens_of_times_the_base_rate() -> None:
    per_second = [c for _, _, c in islice(load_scenario("flash-sale").seconds(SEED), 300)]
    base = sum(per_second[:120]) / 120
    peak = max(per_second[120:190])
    assert peak / base > 30
    assert per_second[125] > 20 * base  # ramped up within the first seconds


def test_event_ids_are_unique(default_run: list[FlashSaleEvent]) -> None:
    assert len({e.event_id for e in default_run}) == len(default_run)


def avro_bytes(events: list[FlashSaleEvent], schema: object, version: int) -> list[bytes]:
    out = []
    for e in events:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schema, e.to_avro(version))
        out.append(buffer.getvalue())
    return out


@pytest.mark.parametrize("version", [1, 2])
def test_same_seed_and_run_id_same_bytes(catalog: SchemaCatalog, version: int) -> None:
    scenario = load_scenario("flash-sale").with_overrides(schema_version=version)
    first = list(Simulation(scenario, 99, run_id="r1").events(max_events=20_000))
    second = list(Simulation(scenario, 99, run_id="r1").events(max_events=20_000))
    schema = catalog.get(version).parsed
    assert avro_bytes(first, schema, version) == avro_bytes(second, schema, version)
    other = list(Simulation(scenario, 100, run_id="r2").events(max_events=100))
    assert [e.event_id for e in other] != [e.event_id for e in first[:100]]


def test_event_ids_are_unique_across_runs_and_a_run_id_replays() -> None:
    scenario = load_scenario("flash-sale")
    runs = [
        list(Simulation(scenario, seed, run_id=run_id).events(max_events=5000))
        for seed, run_id in ((1, "a"), (1, "b"), (2, "c"), (1, "a"))
    ]
    first, same_seed, other_seed, replay = ({e.event_id for e in r} for r in runs)
    assert len(first) == 5000
    assert not first & same_seed and not first & other_seed and not same_seed & other_seed
    assert replay == first and runs[3] == runs[0]  # the same run id: true duplicates
    sessions = [{e.session_id for e in r} for r in runs[:3]]
    assert not sessions[0] & sessions[1] and not sessions[0] & sessions[2]
    # Without a run id each run draws a fresh one.
    assert Simulation(scenario, 1).run_id != Simulation(scenario, 1).run_id


def test_the_catalog_is_the_shops_whatever_the_seed() -> None:
    scenario = load_scenario("flash-sale")
    one, two = Simulation(scenario, 1), Simulation(scenario, 2)
    assert one.products == two.products and one.stock == two.stock
    # The run's seed drives the shoppers, not the shop.
    first = list(one.events(max_events=500))
    assert [e.user_id for e in first] != [e.user_id for e in two.events(max_events=500)]
    for event in first:  # an event's product is the catalog's product
        product = next(p for p in one.products if p.product_id == event.product_id)
        assert (event.category, event.brand) == (product.category, product.brand)
    # A scenario may name its own catalog seed: another shop, another catalog.
    other_shop = replace(scenario, catalog=replace(scenario.catalog, seed="another-shop"))
    assert Simulation(other_shop, 1).products != one.products


def test_a_malformed_run_id_is_refused_by_name() -> None:
    with pytest.raises(InvalidOption, match=r"^run_id a b: must be 1-64 letters"):
        Simulation(load_scenario("default"), 1, run_id="a b")


def test_workers_split_users_into_the_same_multiset() -> None:
    scenario = load_scenario("flash-sale")
    whole = list(Simulation(scenario, 5, run_id="w").events(max_events=30_000))
    parts = [
        list(Simulation(scenario, 5, workers=4, worker=i, run_id="w").events(max_events=30_000))
        for i in range(4)
    ]
    assert sorted(e for part in parts for e in part) == sorted(whole)
    user_sets = [{e.user_id for e in part} for part in parts]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not user_sets[i] & user_sets[j]
    assert all(len(part) > 5000 for part in parts)
