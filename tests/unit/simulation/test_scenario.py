"""Scenario files: the built-ins load, and every kind of mistake is one exact line."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest
import yaml

from producer.errors import ScenarioError
from producer.simulation.scenario import parse_duration
from producer.simulation.scenario_file import builtin_scenarios, load_scenario

MINIMAL = """
name: tiny
catalog:
  products: 10
  categories:
    books: {price: [5, 50]}
users:
  population: 100
funnel:
  cart_rate: 0.5
  purchase_rate: 0.5
timeline:
  - phase: steady
    duration: 60s
    rate: 10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def edited(change: str, value: object) -> str:
    """MINIMAL with the dotted key ``change`` set to ``value`` (None deletes it)."""
    tree = yaml.safe_load(MINIMAL)
    *parents, last = change.split(".")
    node = tree
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return yaml.safe_dump(tree)


def test_builtins_load() -> None:
    assert set(builtin_scenarios()) == {"default", "flash-sale"}
    for name in builtin_scenarios():
        assert load_scenario(name).name == name


def test_a_minimal_file_loads(tmp_path: Path) -> None:
    scenario = load_scenario(str(write(tmp_path, MINIMAL)))
    assert scenario.total_seconds == 60
    assert scenario.schema_version == 2


@pytest.mark.parametrize(
    ("change", "value", "message"),
    [
        (
            "colour",
            "red",
            "colour: unknown key (known: catalog, description, funnel, name, "
            "rate_multiplier, sale, schema_version, start, timeline, users)",
        ),
        ("funnel.cart_rate", 1.5, "funnel.cart_rate: must be between 0 and 1, got 1.5"),
        ("funnel.purchase_rate", -0.1, "funnel.purchase_rate: must be between 0 and 1, got -0.1"),
        (
            "funnel.cart_rate",
            "often",
            "funnel.cart_rate: expected a number, got the string 'often'",
        ),
        ("timeline.0.rate", -5, "timeline[0].rate: must not be negative, got -5"),
        (
            "timeline.0.rate",
            {"band": [15, 5]},
            "timeline[0].rate.band: low must not exceed high, got [15, 5]",
        ),
        (
            "timeline.0.rate",
            {"warp": 9},
            "timeline[0].rate.warp: unknown key (known: band, bands, constant, decay, ramp)",
        ),
        (
            "timeline.0.duration",
            "soon",
            "timeline[0].duration: expected a duration like 90s or 10m, got 'soon'",
        ),
        ("users.population", 0, "users.population: must be >= 1, got 0"),
        ("users.population", 2.5, "users.population: expected an integer, got 2.5"),
        ("users", None, "users: is required"),
        ("catalog.products", True, "catalog.products: expected an integer, got a boolean"),
        (
            "catalog.products",
            10**11,
            "catalog.products: must be at most 1,000,000, got 100000000000",
        ),
        (
            "catalog.categories.books.price",
            [50, 5],
            "catalog.categories.books.price: low must not exceed high, got [50, 5]",
        ),
        (
            "catalog.categories.books.colour",
            "red",
            "catalog.categories.books.colour: unknown key (known: brands, price, weight)",
        ),
        ("schema_version", 0, "schema_version: must be 1 or more, got 0"),
        (
            "start",
            "2026-11-27T08:00:00",
            "start: needs a timezone (add Z for UTC), got '2026-11-27T08:00:00'",
        ),
        ("rate_multiplier", 0, "rate_multiplier: must be > 0, got 0"),
        (
            "sale",
            {"id": "s", "starts_at": "60s", "ends_at": "30s"},
            "sale.ends_at: must be after sale.starts_at",
        ),
    ],
)
def test_each_kind_of_mistake_is_one_exact_line(
    tmp_path: Path, change: str, value: object, message: str
) -> None:
    path = write(tmp_path, edited(change, value))
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(path))
    assert str(err.value) == f"{path}: {message}"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ncatalog: [unclosed\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(path))
    assert str(err.value).startswith(f"{path}: invalid YAML at line 3:")


def test_only_the_last_phase_may_run_forever(tmp_path: Path) -> None:
    tree = yaml.safe_load(MINIMAL)
    tree["timeline"] = [
        {"phase": "a", "duration": None, "rate": 1},
        {"phase": "b", "duration": "1s", "rate": 1},
    ]
    path = write(tmp_path, yaml.safe_dump(tree))
    with pytest.raises(ScenarioError, match=r"timeline\[0\].duration: only the last phase"):
        load_scenario(str(path))


def test_unknown_scenario_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario("black-friday")
    assert str(err.value) == (
        "black-friday: no such scenario file or built-in scenario (built-ins: default, flash-sale)"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("500ms", 0.5), (30, 30.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_fractional_rates_carry_over_without_drift(tmp_path: Path) -> None:
    tree = yaml.safe_load(MINIMAL)
    tree["timeline"] = [{"phase": "p", "duration": "600s", "rate": 10.4}]
    scenario = load_scenario(str(write(tmp_path, yaml.safe_dump(tree))))
    counts = [count for _, _, count in scenario.seconds(seed=1)]
    assert sum(counts) == 6240
    assert set(counts) == {10, 11}


def test_the_rate_multiplier_scales_every_phase() -> None:
    scenario = load_scenario("flash-sale").with_overrides(rate_multiplier=0.5)
    full = load_scenario("flash-sale")
    half = sum(c for _, _, c in islice(scenario.seconds(3), 600))
    whole = sum(c for _, _, c in islice(full.seconds(3), 600))
    assert abs(half - whole / 2) <= 1


def test_a_paced_run_starts_now_and_an_unpaced_one_at_the_scenarios_start() -> None:
    from datetime import UTC, datetime

    from producer.errors import InvalidOption
    from producer.simulation.scenario import starting

    scenario = load_scenario("flash-sale")
    before = datetime.now(UTC).replace(microsecond=0)
    live = starting(scenario, None, paced=True)
    assert before <= live.start <= datetime.now(UTC)
    assert starting(scenario, None, paced=False) == scenario  # replayable
    assert starting(scenario, "scenario", paced=True) == scenario
    fixed = starting(scenario, "2030-01-01T00:00:00Z", paced=True)
    assert fixed.start == datetime(2030, 1, 1, tzinfo=UTC)
    assert starting(scenario, "now", paced=False).start >= before
    with pytest.raises(InvalidOption) as err:
        starting(scenario, "soon", paced=True)
    assert str(err.value) == (
        "start: expected an ISO-8601 time like 2026-11-27T08:00:00Z, got 'soon' "
        "(or now, or scenario)"
    )
