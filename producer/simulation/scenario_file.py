"""Scenario files: YAML in, a validated :class:`~producer.simulation.scenario.Scenario`
out, and the built-in scenarios that ship with flashsale.

Every mistake is one line naming the file and the dotted key
(``flash.yaml: funnel.cart_rate: must be between 0 and 1, got 1.5``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from producer.errors import ScenarioError
from producer.simulation.scenario import (
    Catalog,
    CategorySpec,
    Funnel,
    Phase,
    RateRule,
    Sale,
    Scenario,
    parse_duration,
    parse_instant,
)

__all__ = ["MAX_PRODUCTS", "builtin_scenarios", "load_scenario", "parse_scenario"]

# The catalog lives in memory (a product is a few hundred bytes): a million is a big
# shop, and a typo of ten zeros is refused in one line instead of filling the memory.
MAX_PRODUCTS = 1_000_000
# The event record's own bounds: price is decimal(10, 2), revenue decimal(12, 2),
# quantity and stock_remaining are Avro ints. 99 units at the highest price still fit
# in revenue. A session is planned whole, so its views are bounded too.
MAX_PRICE = 99_999_999.99
MAX_UNITS = 99
MAX_STOCK = 2**31 - 1
MAX_VIEWS = 1_000


def builtin_scenarios() -> dict[str, str]:
    """Name -> YAML text of the scenarios that ship with flashsale."""
    folder = resources.files("producer.simulation") / "scenarios"
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            found[entry.name[: -len(".yaml")]] = entry.read_text(encoding="utf-8")
    return dict(sorted(found.items()))


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a YAML file by path."""
    builtins = builtin_scenarios()
    if name_or_path in builtins:
        return parse_scenario(builtins[name_or_path], f"{name_or_path} (built-in)")
    path = Path(name_or_path)
    if not path.exists():
        known = ", ".join(builtins)
        raise ScenarioError(
            f"{name_or_path}: no such scenario file or built-in scenario (built-ins: {known})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from exc
    return parse_scenario(text, str(path))


def parse_scenario(text: str, source: str) -> Scenario:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ScenarioError(f"{source}: invalid YAML{where}: {problem}") from exc
    return _Reader(source).scenario(raw)


class _Reader:
    """Validates the YAML tree, naming ``file: dotted.key`` in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {key}: {problem}")

    def mapping(
        self, value: Any, key: str, allowed: set[str], required: set[str]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_kind(value)}")
        for name in value:
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                # A key that would break the one line (a newline in it) is shown quoted.
                shown = name if isinstance(name, str) and name.isprintable() else repr(name)
                raise self.fail(_join(key, shown), f"unknown key (known: {known})")
        for name in sorted(required):
            if name not in value:
                raise self.fail(_join(key, name), "is required")
        return value

    def number(
        self,
        value: Any,
        key: str,
        *,
        integer: bool = False,
        low: float | None = 0,
        high: float | None = None,
        low_open: bool = False,
    ) -> float:
        wanted = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected {wanted}, got {_kind(value)}")
        if integer and not float(value).is_integer():
            raise self.fail(key, f"expected {wanted}, got {value!r}")
        if math.isnan(value) or math.isinf(value):
            raise self.fail(key, f"expected a finite number, got {value!r}")
        if low is not None and (value <= low if low_open else value < low):
            if low == 0 and not low_open:
                raise self.fail(key, f"must not be negative, got {value!r}")
            raise self.fail(
                key, f"must be {'>' if low_open else '>='} {_number(low)}, got {value!r}"
            )
        if high is not None and value > high:
            raise self.fail(key, f"must be at most {_number(high)}, got {value!r}")
        return float(value)

    def probability(self, value: Any, key: str) -> float:
        number = self.number(value, key, low=None)
        if not 0.0 <= number <= 1.0:
            raise self.fail(key, f"must be between 0 and 1, got {value!r}")
        return number

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {_kind(value)}")
        return value

    def pair(
        self,
        value: Any,
        key: str,
        *,
        integer: bool,
        positive: bool = False,
        high: float | None = None,
    ) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(key, f"expected [low, high], got {value!r}")
        bounds: dict[str, Any] = {"integer": integer, "low": 0, "low_open": positive, "high": high}
        first = self.number(value[0], f"{key}[0]", **bounds)
        second = self.number(value[1], f"{key}[1]", **bounds)
        low, high = first, second
        if low > high:
            raise self.fail(key, f"low must not exceed high, got {value!r}")
        return low, high

    def weights(self, value: Any, key: str) -> dict[str, float]:
        if not isinstance(value, dict) or not value:
            raise self.fail(key, f"expected a non-empty mapping of weights, got {_kind(value)}")
        out = {str(k): self.number(v, _join(key, str(k))) for k, v in value.items()}
        if sum(out.values()) <= 0:
            raise self.fail(key, "weights must not all be zero")
        return out

    # ------------------------------------------------------------------ sections

    def scenario(self, raw: Any) -> Scenario:
        top = self.mapping(
            raw,
            "",
            allowed={
                "name",
                "description",
                "start",
                "schema_version",
                "rate_multiplier",
                "catalog",
                "users",
                "funnel",
                "sale",
                "timeline",
            },
            required={"name", "catalog", "users", "funnel", "timeline"},
        )
        version = int(self.number(top.get("schema_version", 2), "schema_version", integer=True))
        if version < 1:  # which versions exist is the schema folder's to say
            raise self.fail("schema_version", f"must be 1 or more, got {version}")
        users = self.mapping(
            top["users"],
            "users",
            allowed={"population", "first_user_id", "devices"},
            required={"population"},
        )
        devices = self.weights(users.get("devices", {"web": 1.0}), "users.devices")
        for device in devices:
            if device not in ("web", "ios", "android", "unknown"):
                raise self.fail(
                    f"users.devices.{device}", "unknown device (known: android, ios, unknown, web)"
                )
        timeline = self.timeline(top["timeline"])
        sale = self.sale(top["sale"]) if top.get("sale") is not None else None
        name = self.text(top["name"], "name")
        multiplier = self.number(top.get("rate_multiplier", 1.0), "rate_multiplier", low_open=True)
        peak = max(p.rate.peak for p in timeline)
        if not math.isfinite(peak * multiplier):
            raise self.fail("rate_multiplier", "scales the peak rate beyond any count")
        return Scenario(
            name=name,
            description=str(top.get("description", "")),
            start=self.start(top.get("start", "2026-11-27T08:00:00Z")),
            schema_version=version,
            rate_multiplier=multiplier,
            catalog=self.catalog(top["catalog"], name),
            population=int(
                self.number(users["population"], "users.population", integer=True, low=1)
            ),
            first_user_id=int(
                self.number(users.get("first_user_id", 10000), "users.first_user_id", integer=True)
            ),
            devices=tuple(devices.items()),
            funnel=self.funnel(top["funnel"]),
            sale=sale,
            timeline=timeline,
            source=self.source,
        )

    def start(self, value: Any) -> datetime:
        try:
            return parse_instant(value)
        except ValueError as exc:
            raise self.fail("start", str(exc)) from None

    def catalog(self, value: Any, name: str) -> Catalog:
        c = self.mapping(
            value,
            "catalog",
            allowed={
                "products",
                "first_product_id",
                "popularity_skew",
                "stock",
                "categories",
                "seed",
            },
            required={"products", "categories"},
        )
        categories_raw = c["categories"]
        if not isinstance(categories_raw, dict) or not categories_raw:
            raise self.fail("catalog.categories", "expected a non-empty mapping of categories")
        categories = []
        for name, spec in categories_raw.items():
            key = f"catalog.categories.{name}"
            s = self.mapping(spec, key, allowed={"weight", "price", "brands"}, required={"price"})
            low, high = self.pair(
                s["price"], f"{key}.price", integer=False, positive=True, high=MAX_PRICE
            )
            brands = s.get("brands", [])
            if not isinstance(brands, list) or not all(isinstance(b, str) for b in brands):
                raise self.fail(f"{key}.brands", f"expected a list of names, got {brands!r}")
            categories.append(
                CategorySpec(
                    name=str(name),
                    weight=self.number(s.get("weight", 1), f"{key}.weight"),
                    price=(low, high),
                    brands=tuple(brands),
                )
            )
        if sum(cat.weight for cat in categories) <= 0:
            raise self.fail("catalog.categories", "weights must not all be zero")
        stock = c.get("stock")
        return Catalog(
            products=int(
                self.number(
                    c["products"], "catalog.products", integer=True, low=1, high=MAX_PRODUCTS
                )
            ),
            first_product_id=int(
                self.number(
                    c.get("first_product_id", 1000), "catalog.first_product_id", integer=True
                )
            ),
            popularity_skew=self.number(c.get("popularity_skew", 1.0), "catalog.popularity_skew"),
            stock=None if stock is None else self.stock(stock),
            categories=tuple(categories),
            seed=self.catalog_seed(c.get("seed", name)),
        )

    def catalog_seed(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
            raise self.fail("catalog.seed", f"expected a number or a name, got {_kind(value)}")
        return str(value)

    def stock(self, value: Any) -> tuple[int, int]:
        low, high = self.pair(value, "catalog.stock", integer=True, high=MAX_STOCK)
        return int(low), int(high)

    def funnel(self, value: Any) -> Funnel:
        f = self.mapping(
            value,
            "funnel",
            allowed={"views_per_session", "cart_rate", "purchase_rate", "quantity"},
            required={"cart_rate", "purchase_rate"},
        )
        views = self.pair(
            f.get("views_per_session", [1, 3]),
            "funnel.views_per_session",
            integer=True,
            positive=True,
            high=MAX_VIEWS,
        )
        quantity_raw = f.get("quantity", {1: 1.0})
        if not isinstance(quantity_raw, dict) or not quantity_raw:
            raise self.fail("funnel.quantity", "expected a mapping of units to weights")
        quantity = []
        for units, weight in quantity_raw.items():
            key = f"funnel.quantity.{units}"
            if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= MAX_UNITS:
                raise self.fail(key, f"units must be an integer from 1 to {MAX_UNITS}")
            quantity.append((units, self.number(weight, key)))
        if sum(w for _, w in quantity) <= 0:
            raise self.fail("funnel.quantity", "weights must not all be zero")
        return Funnel(
            views_per_session=(int(views[0]), int(views[1])),
            cart_rate=self.probability(f["cart_rate"], "funnel.cart_rate"),
            purchase_rate=self.probability(f["purchase_rate"], "funnel.purchase_rate"),
            quantity=tuple(sorted(quantity)),
        )

    def sale(self, value: Any) -> Sale:
        s = self.mapping(
            value,
            "sale",
            allowed={"id", "starts_at", "ends_at", "discount_pct"},
            required={"id", "starts_at", "ends_at"},
        )
        starts = self.duration(s["starts_at"], "sale.starts_at")
        ends = self.duration(s["ends_at"], "sale.ends_at")
        if ends <= starts:
            raise self.fail("sale.ends_at", "must be after sale.starts_at")
        return Sale(
            id=self.text(s["id"], "sale.id"),
            starts_at=starts,
            ends_at=ends,
            discount_pct=int(
                self.number(s.get("discount_pct", 0), "sale.discount_pct", integer=True, high=99)
            ),
        )

    def duration(self, value: Any, key: str) -> float:
        try:
            return parse_duration(value, key)
        except ScenarioError as exc:
            raise ScenarioError(f"{self.source}: {exc}") from None

    def timeline(self, value: Any) -> tuple[Phase, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail("timeline", f"expected a non-empty list of phases, got {_kind(value)}")
        phases = []
        for i, raw in enumerate(value):
            key = f"timeline[{i}]"
            p = self.mapping(
                raw, key, allowed={"phase", "duration", "rate"}, required={"phase", "rate"}
            )
            duration = p.get("duration")
            seconds = None if duration is None else self.duration(duration, f"{key}.duration")
            if seconds is None and i != len(value) - 1:
                raise self.fail(f"{key}.duration", "only the last phase may run forever")
            phases.append(
                Phase(
                    name=self.text(p["phase"], f"{key}.phase"),
                    duration=seconds,
                    rate=self.rate(p["rate"], f"{key}.rate"),
                )
            )
        return tuple(phases)

    def rate(self, value: Any, key: str) -> RateRule:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return RateRule("constant", (self.number(value, key),))
        r = self.mapping(
            value, key, allowed={"constant", "band", "bands", "ramp", "decay"}, required=set()
        )
        if len(r) != 1:
            raise self.fail(key, "expected exactly one of constant, band, bands, ramp, decay")
        ((kind, spec),) = r.items()
        if kind == "constant":
            return RateRule(kind, (self.number(spec, f"{key}.constant"),))
        if kind == "band":
            return RateRule(kind, self.pair(spec, f"{key}.band", integer=True))
        if kind == "ramp":
            return RateRule(kind, self.pair_any_order(spec, f"{key}.ramp"))
        if kind == "decay":
            d = self.mapping(
                spec,
                f"{key}.decay",
                allowed={"from", "to", "half_life"},
                required={"from", "to", "half_life"},
            )
            half_life = self.duration(d["half_life"], f"{key}.decay.half_life")
            if half_life <= 0:
                raise self.fail(f"{key}.decay.half_life", "must be positive")
            return RateRule(
                kind,
                (
                    self.number(d["from"], f"{key}.decay.from"),
                    self.number(d["to"], f"{key}.decay.to"),
                    half_life,
                ),
            )
        if not isinstance(spec, list) or not spec:
            raise self.fail(f"{key}.bands", "expected a non-empty list of {range, weight}")
        values: list[float] = []
        weights: list[float] = []
        for j, band in enumerate(spec):
            bkey = f"{key}.bands[{j}]"
            b = self.mapping(band, bkey, allowed={"range", "weight"}, required={"range", "weight"})
            values += self.pair(b["range"], f"{bkey}.range", integer=True)
            weights.append(self.probability(b["weight"], f"{bkey}.weight"))
        if sum(weights) <= 0:
            raise self.fail(f"{key}.bands", "weights must not all be zero")
        return RateRule(kind, tuple(values), tuple(weights))

    def pair_any_order(self, value: Any, key: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(key, f"expected [from, to], got {value!r}")
        return self.number(value[0], f"{key}[0]"), self.number(value[1], f"{key}[1]")


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"
