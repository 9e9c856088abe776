"""Pacing with an injected clock: exact counts per window, no drift, at 5/s to 20,000/s."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from producer.simulation.engine import Simulation
from producer.simulation.pacing import Pacer, paced
from producer.simulation.scenario_file import builtin_scenarios, load_scenario


class FakeClock:
    """Wall time that moves only when the pacer sleeps (plus a fixed cost per event)."""

    def __init__(self, cost_per_event: float = 0.0) -> None:
        self.now = 1000.0
        self.cost = cost_per_event
        self.sleeps = 0

    def clock(self) -> float:
        self.now += self.cost
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds * 1.001 + 0.0002  # sleeps overshoot a little, as real ones do


def constant_rate(tmp_path: Path, rate: float, seconds: int) -> Simulation:
    tree = yaml.safe_load(builtin_scenarios()["default"])
    tree["timeline"] = [{"phase": "steady", "duration": f"{seconds}s", "rate": rate}]
    path = tmp_path / "steady.yaml"
    path.write_text(yaml.safe_dump(tree))
    return Simulation(load_scenario(str(path)), seed=3)


def emission_windows(
    simulation: Simulation, speed: float, clock: FakeClock, window: float
) -> Counter[int]:
    pacer = Pacer(speed, clock=clock.clock, sleep=clock.sleep)
    start = clock.now
    windows: Counter[int] = Counter()
    for _ in paced(simulation.events(), pacer, simulation.scenario.start_ms):
        windows[int((clock.now - start) // window)] += 1
    return windows


@pytest.mark.parametrize("rate", [5, 10, 1000, 20_000])
def test_every_ten_second_window_holds_the_rate(tmp_path: Path, rate: int) -> None:
    seconds = 60 if rate >= 1000 else 600
    clock = FakeClock(cost_per_event=1e-6)
    windows = emission_windows(constant_rate(tmp_path, rate, seconds), 1.0, clock, 10.0)
    full = [windows[w] for w in range(seconds // 10)]
    for count in full:
        assert abs(count - rate * 10) <= rate * 10 * 0.02, full
    assert clock.sleeps > 0


def test_a_long_run_does_not_drift(tmp_path: Path) -> None:
    clock = FakeClock(cost_per_event=0.003)  # each event costs real time too
    windows = emission_windows(constant_rate(tmp_path, 10, 600), 1.0, clock, 600.0)
    assert abs(windows[0] - 6000) <= 60
    assert sum(windows.values()) == 6000


def test_speed_compresses_wall_time(tmp_path: Path) -> None:
    clock = FakeClock()
    windows = emission_windows(constant_rate(tmp_path, 10, 600), 60.0, clock, 1.0)
    # 600 simulated seconds at 60x take 10 wall seconds, 600 events each.
    assert [windows[w] for w in range(10)] == [600] * 10


def test_max_rate_never_sleeps(tmp_path: Path) -> None:
    clock = FakeClock()
    emission_windows(constant_rate(tmp_path, 1000, 10), None, clock, 1.0)  # type: ignore[arg-type]
    assert clock.sleeps == 0


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed must be positive, got 0"):
        Pacer(0)
