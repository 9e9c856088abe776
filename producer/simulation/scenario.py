"""Scenarios: what a simulated flash sale looks like (read from YAML by
:mod:`producer.simulation.scenario_file`, validated once).

A scenario names a catalog (products, categories with price ranges and brands,
Zipf-like popularity, stock), a user population (devices), a funnel (views per
session, cart and purchase rates, quantities), an optional sale window with a
discount, and a timeline of phases whose rate rules say how many events each
simulated second carries. Every mistake is reported as one line naming the file and
the key (``flash.yaml: funnel.cart_rate: must be between 0 and 1, got 1.5``).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from producer.errors import InvalidOption, ScenarioError

__all__ = [
    "Catalog",
    "CategorySpec",
    "Funnel",
    "Phase",
    "RateRule",
    "Sale",
    "Scenario",
    "parse_duration",
    "parse_instant",
    "starting",
]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_FIRST_YEAR, _LAST_YEAR = 1970, 8999
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object, where: str = "duration") -> float:
    """Seconds from ``90``, ``90s``, ``1.5m``, ``2h`` or ``500ms``."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a duration like 90s, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ScenarioError(f"{where}: expected a duration like 90s or 10m, got {value!r}")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds < 0 or math.isnan(seconds):
        raise ScenarioError(f"{where}: must not be negative, got {value!r}")
    return seconds


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class CategorySpec:
    name: str
    weight: float
    price: tuple[float, float]
    brands: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    """The shop's products: the same in every run of the scenario, whatever its seed."""

    products: int
    first_product_id: int
    popularity_skew: float
    stock: tuple[int, int] | None  # None: unlimited
    categories: tuple[CategorySpec, ...]
    seed: str = ""  # draws the products, prices, brands, stock and popularity


@dataclass(frozen=True)
class Funnel:
    views_per_session: tuple[int, int]
    cart_rate: float
    purchase_rate: float
    quantity: tuple[tuple[int, float], ...]  # (units, weight)


@dataclass(frozen=True)
class Sale:
    id: str
    starts_at: float  # seconds after the scenario start
    ends_at: float
    discount_pct: int


@dataclass(frozen=True)
class RateRule:
    """How many events a second of a phase carries.

    kinds: ``constant`` (r), ``band`` (uniform integer in [lo, hi] each second),
    ``bands`` (one of several bands, chosen by weight each second), ``ramp`` (linear
    from a to b over the phase), ``decay`` (exponential from a to b with a half-life).
    """

    kind: str
    values: tuple[float, ...]
    weights: tuple[float, ...] = ()

    def rate(self, t: float, duration: float | None, rng: random.Random) -> float:
        """The rate at ``t`` seconds into the phase."""
        v = self.values
        if self.kind == "constant":
            return v[0]
        if self.kind == "band":
            return float(rng.randint(int(v[0]), int(v[1])))
        if self.kind == "bands":
            (band,) = rng.choices(range(len(self.weights)), weights=self.weights)
            return float(rng.randint(int(v[2 * band]), int(v[2 * band + 1])))
        if self.kind == "ramp":
            span = duration or 1.0
            return v[0] + (v[1] - v[0]) * min(t / span, 1.0)
        # decay: from v0 toward v1 with half-life v2
        return v[1] + (v[0] - v[1]) * float(0.5 ** (t / v[2]))

    @property
    def peak(self) -> float:
        """The highest rate the rule can give (a decay's third value is its half-life)."""
        return max(self.values[:2] if self.kind == "decay" else self.values)

    def exhausted(self, t: float) -> bool:
        """Whether a phase that runs forever carries no event from ``t`` seconds on:
        its rate is zero now and stays zero (a forever ramp holds its end after 1 s)."""
        v = self.values
        if self.kind in ("constant", "band", "bands"):
            return all(x == 0 for x in v)
        if self.kind == "ramp":
            return t >= 1 and v[1] == 0
        return v[1] == 0 and v[1] + (v[0] - v[1]) * float(0.5 ** (t / v[2])) == 0

    @property
    def integral(self) -> bool:
        """Whether each second's rate is already a whole count (banded rules)."""
        return self.kind in ("band", "bands")


@dataclass(frozen=True)
class Phase:
    name: str
    duration: float | None  # None: forever (last phase only)
    rate: RateRule


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start: datetime
    schema_version: int
    rate_multiplier: float
    catalog: Catalog
    population: int
    first_user_id: int
    devices: tuple[tuple[str, float], ...]
    funnel: Funnel
    sale: Sale | None
    timeline: tuple[Phase, ...]
    source: str = "<built-in>"

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    def with_overrides(
        self,
        schema_version: int | None = None,
        rate_multiplier: float | None = None,
        start: datetime | None = None,
    ) -> Scenario:
        changed = self
        if schema_version is not None:
            if schema_version < 1:
                raise InvalidOption(
                    "schema_version", f"must be a version number (1 or more), got {schema_version}"
                )
            changed = replace(changed, schema_version=schema_version)
        if rate_multiplier is not None:
            if not rate_multiplier > 0:
                raise InvalidOption("rate_multiplier", f"must be positive, got {rate_multiplier}")
            if not math.isfinite(self.peak_rate * rate_multiplier):
                raise InvalidOption(
                    "rate_multiplier", "scales the peak rate beyond any count", rate_multiplier
                )
            changed = replace(changed, rate_multiplier=rate_multiplier)
        if start is not None:
            changed = replace(changed, start=start)
        return changed

    @property
    def peak_rate(self) -> float:
        """The highest events/s any phase can ask for, before the multiplier."""
        return max(p.rate.peak for p in self.timeline)

    def phase_at(self, second: int) -> Phase:
        elapsed = 0.0
        for phase in self.timeline:
            if phase.duration is None or second < elapsed + phase.duration:
                return phase
            elapsed += phase.duration
        return self.timeline[-1]

    def seconds(self, seed: int) -> Iterator[tuple[int, str, int]]:
        """Each simulated second's (index, phase name, event count), forever or to the end.

        Fractional rates carry over from second to second, so a phase at 10.4 events/s
        emits exactly 104 events in 10 s and nothing drifts. A last phase that runs
        forever ends once its rate is zero for good, so no run waits forever on nothing.
        The counts come from their own random stream, so they do not depend on what the
        events draw.
        """
        rng = random.Random(f"{seed}:rates")
        carry = 0.0
        second = 0
        for phase in self.timeline:
            t = 0
            while phase.duration is None or t < phase.duration:
                if phase.duration is None and carry < 1 and phase.rate.exhausted(t):
                    return  # nothing more will ever come: the timeline ends here
                rate = phase.rate.rate(t, phase.duration, rng) * self.rate_multiplier
                if phase.rate.integral and self.rate_multiplier == 1.0:
                    count = int(rate)
                else:
                    carry += rate
                    count = int(carry)
                    carry -= count
                yield second, phase.name, count
                second += 1
                t += 1

    @property
    def total_seconds(self) -> float | None:
        """Length of the timeline, or None when its last phase runs forever."""
        if any(p.duration is None for p in self.timeline):
            return None
        return sum(p.duration or 0.0 for p in self.timeline)


def parse_instant(value: object) -> datetime:
    """An ISO-8601 time with a timezone (``2026-11-27T08:00:00Z``), in UTC; ValueError
    saying what is wrong otherwise."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"expected an ISO-8601 time like 2026-11-27T08:00:00Z, got {value!r}"
            ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"needs a timezone (add Z for UTC), got {value!r}")
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        instant = None
    # Event times are epoch milliseconds written as dates: the years in between leave
    # the run's own time room to pass.
    if instant is None or not _FIRST_YEAR <= instant.year <= _LAST_YEAR:
        raise ValueError(f"must lie in the years {_FIRST_YEAR}-{_LAST_YEAR}, got {value!r}")
    return instant


def starting(scenario: Scenario, start: str | None, *, paced: bool) -> Scenario:
    """The scenario with its clock set: ``start`` is an ISO time, ``scenario`` (the
    file's own start) or ``now`` (the wall clock, to the second). Unset, a paced run
    starts now, so that its event times are live; an unpaced one keeps the scenario's
    start, so that it can be replayed byte for byte."""
    choice = start or ("now" if paced else "scenario")
    if choice == "scenario":
        return scenario
    if choice == "now":
        return scenario.with_overrides(start=datetime.now(UTC).replace(microsecond=0))
    try:
        return scenario.with_overrides(start=parse_instant(choice))
    except ValueError as exc:
        raise InvalidOption("start", f"{exc} (or now, or scenario)") from None
