"""Hypothesis over scenario files and the offline commands' arguments.

Whatever the input, a run ends in success or in one ``Error: ...`` line with the
exit code of a usage mistake (2) or a failed check (1): never a traceback, never a
hang (pytest-timeout), never memory without end (a subprocess under RLIMIT_AS).
The ``ci`` profile (tests/conftest.py) makes the examples reproducible.
"""

from __future__ import annotations

import copy
import json
import math
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer.cli import main

pytestmark = pytest.mark.timeout(60)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BASE: dict[str, Any] = {
    "name": "fuzz",
    "start": "2026-11-27T08:00:00Z",
    "schema_version": 3,
    "rate_multiplier": 1.0,
    "catalog": {
        "products": 20,
        "first_product_id": 1000,
        "popularity_skew": 1.0,
        "stock": [1, 5],
        "categories": {"shoes": {"weight": 2, "price": [10, 90], "brands": ["a", "b"]}},
    },
    "users": {"population": 50, "first_user_id": 1, "devices": {"web": 1, "ios": 1}},
    "funnel": {
        "views_per_session": [1, 3],
        "cart_rate": 0.5,
        "purchase_rate": 0.5,
        "quantity": {1: 0.8, 2: 0.2},
    },
    "sale": {"id": "s1", "starts_at": "5s", "ends_at": "30s", "discount_pct": 20},
    "timeline": [
        {"phase": "pre", "duration": "10s", "rate": {"band": [2, 6]}},
        {"phase": "surge", "duration": "20s", "rate": {"decay": {"from": 50, "to": 3,
                                                                 "half_life": "5s"}}},
        {"phase": "tail", "rate": {"ramp": [3, 0]}},
    ],
}  # fmt: skip

# The values people (and typos) put where a number, a name or a section belongs.
ODD = st.one_of(
    st.sampled_from(
        [math.nan, math.inf, -math.inf, -1, 0, 10**11, 2**63, 10**400 // 10**300, -(10**11)]
    ),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(min_value=-5, max_value=10**12), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


PATHS = _paths(BASE)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """The base scenario with a few of its values replaced, removed or joined by
    unknown keys."""
    tree = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(PATHS))
        parent = tree
        try:
            for step in path[:-1]:
                parent = parent[step]
            action = draw(st.sampled_from(["set", "set", "delete", "unknown"]))
            if action == "set":
                parent[path[-1]] = draw(ODD)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=6))] = draw(ODD)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change removed or replaced this part: nothing to change
    return tree


def _render(tree: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(tree, default=str)  # NaN and Infinity as JSON writes them
    return yaml.safe_dump(tree, allow_unicode=True)


def _assert_clean(result: Result) -> None:
    """Success, or one ``Error:`` line and a usage (2) or failed-check (1) exit code."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    if result.exit_code != 0:
        assert result.exit_code in (1, 2), result.output
        # One line as a terminal shows it: ends at the only newline (str.splitlines
        # would also split at control characters such as \x1e, which print in place).
        assert result.stderr.startswith("Error: "), result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
        assert "Traceback" not in result.output


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


@FUZZ
@given(tree=scenarios(), as_json=st.booleans())
def test_any_scenario_file_runs_or_is_one_line(
    tmp_path_factory: pytest.TempPathFactory, tree: dict[str, Any], as_json: bool
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    scenario = folder / ("s.json" if as_json else "s.yaml")
    scenario.write_text(_render(tree, as_json))
    out, ledger = folder / "out.jsonl", folder / "ledger.json"
    result = _invoke(
        ["simulate", "--scenario", str(scenario), "--events", "40", "--duration", "1h",
         "--out", str(out), "--ledger", str(ledger)]
    )  # fmt: skip
    _assert_clean(result)
    if result.exit_code == 0:
        lines = out.read_text().splitlines()
        assert len(lines) <= 40
        assert json.loads(ledger.read_text())["total_events"] == len(lines)
    else:
        assert not ledger.exists()  # refused before the first side effect


ARG_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e308", "100000000000", "10m", "1e400",
                     "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z", "now", "", "-"]),
    st.integers().map(str),
    st.floats().map(repr),
    st.text(max_size=6),
)  # fmt: skip

SIMULATE_OPTIONS = ["--scenario", "--seed", "--events", "--duration", "--schema-version",
                    "--rate-multiplier", "--workers", "--worker", "--start",
                    "--run-id"]  # fmt: skip


@FUZZ
@given(
    options=st.lists(st.tuples(st.sampled_from(SIMULATE_OPTIONS), ARG_VALUES), max_size=4),
    out_name=st.sampled_from(["o.jsonl", "o.avro", "o.csv", "", "dir/"]),
)
def test_any_simulate_arguments_run_or_are_one_line(
    tmp_path_factory: pytest.TempPathFactory, options: list[tuple[str, str]], out_name: str
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    args = ["simulate", "--events", "30", "--duration", "10m"]
    for flag, value in options:
        args += [flag, value]
    result = _invoke([*args, "--out", str(folder / out_name)])
    _assert_clean(result)


OFFLINE = [
    ["schemas", "list"],
    ["schemas", "validate"],
    ["schemas", "check"],
    ["schemas", "diff"],
    ["contract", "verify"],
    ["scenarios", "show"],
]


@FUZZ
@given(
    command=st.sampled_from(OFFLINE),
    extra=st.lists(
        st.one_of(ARG_VALUES, st.sampled_from(["--level", "--schemas-dir", "1", "2", "9"])),
        max_size=3,
    ),
)
def test_offline_commands_answer_any_arguments_in_one_line(
    command: list[str], extra: list[str]
) -> None:
    _assert_clean(_invoke([*command, *extra]))


HUGE = [
    ("catalog", "products", 10**11),
    ("users", "population", 10**30),
    ("funnel", "views_per_session", [10**9, 10**9]),
    ("catalog", "stock", [0, 10**21]),
    ("funnel", "quantity", {10**20: 1}),
    ("catalog", "categories", {"x": {"price": [1, 10**15]}}),
]


def _limit_memory() -> None:  # in the child, before it starts
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize(("section", "key", "value"), HUGE)
def test_huge_sizes_are_refused_or_run_in_bounded_memory(
    tmp_path: Path, section: str, key: str, value: Any
) -> None:
    tree = copy.deepcopy(BASE)
    tree[section][key] = value
    scenario = tmp_path / "huge.yaml"
    scenario.write_text(_render(tree, as_json=False))
    done = subprocess.run(
        [sys.executable, "-m", "producer.cli", "simulate", "--scenario", str(scenario),
         "--events", "50", "--out", str(tmp_path / "o.avro")],
        capture_output=True, text=True, timeout=50, preexec_fn=_limit_memory,
    )  # fmt: skip
    assert done.returncode in (0, 2), done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    if done.returncode:
        assert done.stderr.startswith(f"Error: {scenario}: {section}.{key}"), done.stderr
