"""The flash-sale simulator: shoppers in sessions moving through a funnel, on a simulated clock.

Each simulated second carries the number of events its phase asks for (see
:meth:`Scenario.seconds`). Each event slot either starts a new session or advances
an open one, so sessions interleave as they do on a real site. A session is planned
when it starts: a few product views (products drawn by Zipf-like popularity), maybe a
cart of the last viewed product, maybe a purchase of exactly that cart.

Stock: purchases take units from the product's stock. When a product has sold out,
shoppers still view it, but nobody can put it in a cart or buy it: a planned cart of
a sold-out product ends the session after its views, and a planned purchase that
the remaining stock cannot cover is dropped (the cart stays abandoned). The moment
the last unit sells is recorded (``sold_out``, ``sold_out_ids``), and the next slot
is filled by another session, so the event rate is unaffected. From schema v3 on,
every event carries the product's stock left after it (``stock_remaining``).

Identity: the catalog (products, categories, brands, prices, stock, popularity) is
the shop's, drawn from the scenario's catalog seed, so every run of a scenario sells
the same products whatever its seed; the run's seed drives the shoppers. Every run
has a run id (random unless given); event and session ids are derived from it and a
sequence number, so they are unique across runs, and a run given the id of an
earlier one is a replay of it: the same ids, true duplicates.

Same scenario + seed + schema version + run id gives the same events, byte for byte:
all randomness comes from ``random.Random`` streams seeded from the catalog seed and
the seed, and timestamps come from the simulated clock.

``workers``/``worker`` select the events of one share of the users (give every
worker the same run id); every worker simulates the whole population (stock is
shared, so that is the only way to be exact) and emits only its share, so N workers
together emit exactly the events of one process, while the costly part, serializing
and producing, is split N ways.

``shards``/``shard`` split the run itself: shard I of N simulates only its own users
(user indexes ≡ I mod N), its share of every second's events and of ``max_events``,
and sells from its own share of every product's stock, so N shards cost what one
process costs and together emit the scenario's traffic (N processes, N times the
rate). The shares are fixed: shard I's share of an amount A is ``(A + k) // N`` for a
k of 0..N-1 that rotates with I (and with the product, for stock), so the shares add
up to A exactly. Event and session ids interleave (sequence number n of shard I is
``(n - 1) * N + I + 1``), so they never collide across shards of one run; each shard
draws from its own random streams. A shard knows only its share of the stock, so a
sharded run of schema v3 or later leaves ``stock_remaining`` empty, and a product's
sell-out (in the ledger) is when its last shard sold out. One shard of one (the
default) is the unsharded run, event for event.
"""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from bisect import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate

from producer.errors import InvalidOption
from producer.events import Device, EventType, FlashSaleEvent, fields_of
from producer.simulation.scenario import Scenario

__all__ = ["Product", "Simulation", "check_run_id", "new_run_id"]

_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")
_VIEW, _CART, _PURCHASE = EventType.VIEW, EventType.CART, EventType.PURCHASE


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def new_run_id() -> str:
    """A fresh run id: 12 random hex digits."""
    return uuid.uuid4().hex[:12]


def check_run_id(run_id: str) -> None:
    """A run id is 1 to 64 letters, digits and ``._:-``, starting with a letter or digit."""
    if not _RUN_ID.match(run_id):
        raise InvalidOption(
            "run_id",
            "must be 1-64 letters, digits or ._:- (starting with one of the first)",
            run_id,
        )


@dataclass(frozen=True)
class Product:
    index: int
    product_id: str
    category: str
    brand: str | None
    list_price: Decimal
    sale_price: Decimal


@dataclass
class _Session:
    session_id: str
    user_index: int
    device: Device
    steps: list[tuple[EventType, int, int]]  # (type, product index, quantity), in order
    position: int = 0


@dataclass
class Simulation:
    """A seeded run of a scenario; iterate :meth:`events` to get its events in order."""

    scenario: Scenario
    seed: int
    workers: int = 1
    worker: int = 0
    shards: int = 1
    shard: int = 0
    run_id: str = field(default_factory=lambda: new_run_id())
    products: list[Product] = field(init=False)
    stock: list[int] | None = field(init=False)  # this shard's stock left, by product index
    # The shop's stock of each product as the run opens (all shards together).
    catalog_stock: list[int] | None = field(init=False)
    sold_out: dict[str, int] = field(init=False, default_factory=dict)
    # Event ids of the purchases that took a product's last unit.
    sold_out_ids: set[str] = field(init=False, default_factory=set)
    seconds_done: int = field(init=False, default=0)
    current_phase: str = field(init=False, default="")
    current_count: int = field(init=False, default=0)  # events planned for the current second
    current_second: int = field(init=False, default=0)  # simulated seconds since the start

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InvalidOption("workers", f"must be at least 1, got {self.workers}")
        if not 0 <= self.worker < self.workers:
            raise InvalidOption(
                "worker", f"must be between 0 and {self.workers - 1}, got {self.worker}"
            )
        if self.shards < 1:
            raise InvalidOption("shards", f"must be at least 1, got {self.shards}")
        if not 0 <= self.shard < self.shards:
            raise InvalidOption(
                "shard", f"must be between 0 and {self.shards - 1}, got {self.shard}"
            )
        if self.shards > 1 and self.workers > 1:
            raise InvalidOption("shards", "cannot be combined with workers")
        if self.shards > self.scenario.population:
            raise InvalidOption(
                "shards",
                f"must not exceed the scenario's population ({self.scenario.population} users)",
                self.shards,
            )
        check_run_id(self.run_id)
        rng = random.Random(f"{self.scenario.catalog.seed}:catalog")
        self.products = self._build_catalog(rng)
        stock = self.scenario.catalog.stock
        self.stock = (
            None if stock is None else [rng.randint(stock[0], stock[1]) for _ in self.products]
        )
        self.catalog_stock = None if self.stock is None else list(self.stock)
        if self.stock is not None and self.shards > 1:
            self.stock = [
                self.share(units, (self.shard + index) % self.shards)
                for index, units in enumerate(self.stock)
            ]
        skew = self.scenario.catalog.popularity_skew
        # Popularity: rank r (1-based) has weight 1 / r^skew; ranks are shuffled over
        # products so popularity is not tied to the product id order.
        ranks = list(range(1, len(self.products) + 1))
        rng.shuffle(ranks)
        self._product_cum = list(accumulate(1.0 / r**skew for r in ranks))
        devices = self.scenario.devices
        self._devices = [Device(name) for name, _ in devices]
        self._device_cum = list(accumulate(w for _, w in devices))
        quantity = self.scenario.funnel.quantity
        self._quantities = [units for units, _ in quantity]
        self._quantity_cum = list(accumulate(w for _, w in quantity))
        digest = hashlib.sha256(f"flashsale-run:{self.run_id}".encode()).hexdigest()
        # UUID-shaped ids (version 4 layout): 20 hex digits fixed by the run, 12 counting.
        self._id_prefix = f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-"
        self._session_prefix = f"s-{digest[:8]}-"

    def share(self, amount: int, rank: int | None = None) -> int:
        """This shard's fixed share of ``amount`` (the N shares add up to it exactly)."""
        n = self.shards
        rank = self.shard if rank is None else rank
        return (amount + n - 1 - rank) // n

    @property
    def brands(self) -> dict[str, str | None]:
        """Product id -> the catalog's brand."""
        return {p.product_id: p.brand for p in self.products}

    def _build_catalog(self, rng: random.Random) -> list[Product]:
        catalog = self.scenario.catalog
        categories = catalog.categories
        cum = list(accumulate(c.weight for c in categories))
        discount = self.scenario.sale.discount_pct if self.scenario.sale else 0
        products = []
        for i in range(catalog.products):
            spec = categories[bisect(cum, rng.random() * cum[-1])]
            cents = rng.randint(round(spec.price[0] * 100), round(spec.price[1] * 100))
            list_price = (Decimal(cents) / 100).quantize(_CENT)
            sale_price = (list_price * (100 - discount) / 100).quantize(_CENT)
            brand = spec.brands[rng.randrange(len(spec.brands))] if spec.brands else None
            products.append(
                Product(
                    i, str(catalog.first_product_id + i), spec.name, brand, list_price, sale_price
                )
            )
        return products

    # ------------------------------------------------------------------ the run

    def events(
        self,
        max_events: int | None = None,
        max_seconds: float | None = None,
        on_second: Callable[[int], bool] | None = None,
    ) -> Iterator[FlashSaleEvent]:
        """The run's events (of this worker's users), in event-time order.

        Stops after ``max_events`` events of the whole run (all workers together) or
        when simulated time reaches ``max_seconds``, whichever comes first, or at the
        end of the timeline, or when ``on_second`` (called as each simulated second
        begins, events or not) returns False: a run whose seconds are empty still
        keeps pace and still stops when asked.
        """
        scenario = self.scenario
        shards, shard = self.shards, self.shard
        sharded = shards > 1
        rng = random.Random(f"{self.seed}:events" + (f":{shard}/{shards}" if sharded else ""))
        rand = rng.random
        randint = rng.randint
        funnel = scenario.funnel
        views_low, views_high = funnel.views_per_session
        cart_rate, purchase_rate = funnel.cart_rate, funnel.purchase_rate
        mean_steps = (views_low + views_high) / 2 + cart_rate * (1 + purchase_rate)
        new_session_share = 1.0 / mean_steps
        products = self.products
        product_cum = self._product_cum
        product_total = product_cum[-1]
        quantities, quantity_cum = self._quantities, self._quantity_cum
        quantity_total = quantity_cum[-1]
        devices, device_cum = self._devices, self._device_cum
        device_total = device_cum[-1]
        population, first_user = scenario.population, scenario.first_user_id
        # A shard's users: indexes shard, shard + N, shard + 2N, ... below the population.
        last_user = (population - 1 - shard) // shards
        stock = self.stock
        sold_out = self.sold_out
        sold_out_ids = self.sold_out_ids
        workers, worker = self.workers, self.worker
        carried = fields_of(scenario.schema_version)
        v2 = "session_id" in carried
        v3 = "stock_remaining" in carried and not sharded
        sale = scenario.sale
        sale_start = sale.starts_at if sale else 0.0
        sale_end = sale.ends_at if sale else 0.0
        sale_id = sale.id if sale else None
        discount = sale.discount_pct if sale else 0
        id_prefix = self._id_prefix
        session_prefix = self._session_prefix
        start_ms = scenario.start_ms
        event_cls = FlashSaleEvent
        unknown_device = Device.UNKNOWN
        zero = _ZERO

        open_sessions: list[_Session] = []
        sessions_started = 0
        emitted = 0
        limit = -1 if max_events is None else self.share(max_events)
        planned = 0  # events of the whole run planned so far (all shards)

        for second, phase, count in scenario.seconds(self.seed):
            if max_seconds is not None and second >= max_seconds:
                return
            if on_second is not None and not on_second(second):
                return
            if sharded:
                before = self.share(planned)
                planned += count
                count = self.share(planned) - before
            self.current_phase = phase
            self.current_count = count
            self.current_second = second
            in_sale = sale is not None and sale_start <= second < sale_end
            sale_now = sale_id if in_sale and v2 else None
            discount_now = discount if in_sale and v2 else 0
            base_ms = start_ms + second * 1000
            for slot in range(count):
                if emitted == limit:
                    return
                ts = base_ms + (slot * 1000) // count
                while True:
                    # Pick the session this slot advances: a new one, or an open one.
                    if not open_sessions or rand() < new_session_share:
                        sessions_started += 1
                        session = self._plan(
                            rng,
                            f"{session_prefix}{(sessions_started - 1) * shards + shard + 1:x}",
                            randint(0, last_user) * shards + shard,
                            devices[bisect(device_cum, rand() * device_total)],
                            randint(views_low, views_high),
                            cart_rate,
                            purchase_rate,
                            product_cum,
                            product_total,
                            quantities[bisect(quantity_cum, rand() * quantity_total)],
                        )
                        open_sessions.append(session)
                        index = len(open_sessions) - 1
                    else:
                        index = int(rand() * len(open_sessions))
                        session = open_sessions[index]
                    kind, product_index, quantity = session.steps[session.position]
                    session.position += 1
                    possible = True
                    if stock is not None and kind is not _VIEW:
                        left = stock[product_index]
                        if kind is _CART:
                            possible = left > 0
                        elif left >= quantity:
                            left -= quantity
                            stock[product_index] = left
                            if left == 0:
                                sold_out[products[product_index].product_id] = ts
                                # The id this purchase is about to get (see below).
                                sold_out_ids.add(f"{id_prefix}{emitted * shards + shard + 1:012x}")
                        else:
                            possible = False
                    if not possible or session.position == len(session.steps):
                        # Done, or sold out: a cart or purchase that stock cannot cover
                        # does not happen, the session ends, and another fills the slot.
                        open_sessions[index] = open_sessions[-1]
                        open_sessions.pop()
                    if possible:
                        break

                emitted += 1
                if workers > 1 and session.user_index % workers != worker:
                    continue
                product = products[product_index]
                price = product.sale_price if in_sale else product.list_price
                revenue = price * quantity if kind is _PURCHASE else zero
                # An older version's run leaves the fields added later at their defaults.
                yield event_cls(
                    f"{id_prefix}{(emitted - 1) * shards + shard + 1:012x}",
                    str(first_user + session.user_index),
                    product.product_id,
                    product.category,
                    kind,
                    quantity,
                    price,
                    revenue,
                    ts,
                    product.brand,
                    "flash_sale",
                    session.session_id if v2 else None,
                    sale_now,
                    product.list_price if v2 else None,
                    discount_now,
                    "USD",
                    session.device if v2 else unknown_device,
                    stock[product_index] if v3 and stock is not None else None,
                )
            self.seconds_done = second + 1

    @staticmethod
    def _plan(
        rng: random.Random,
        session_id: str,
        user_index: int,
        device: Device,
        views: int,
        cart_rate: float,
        purchase_rate: float,
        product_cum: list[float],
        product_total: float,
        quantity: int,
    ) -> _Session:
        rand = rng.random
        steps: list[tuple[EventType, int, int]] = []
        product = 0
        for _ in range(views):
            product = bisect(product_cum, rand() * product_total)
            steps.append((_VIEW, product, 1))
        if rand() < cart_rate:
            steps.append((_CART, product, quantity))
            if rand() < purchase_rate:
                steps.append((_PURCHASE, product, quantity))
        return _Session(session_id, user_index, device, steps)
