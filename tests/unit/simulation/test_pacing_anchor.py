"""Where pacing starts and when it sleeps, with a clock that stands still: the first
instant goes out at once (however late in the run it falls), each later one is due
``offset / speed`` seconds after it, and a wait no longer than the granularity is not
slept."""

from __future__ import annotations

import pytest

from producer.simulation.pacing import Pacer


class StillClock:
    """Wall time that stands at ``now``; the sleeps asked are recorded, not taken."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.mark.parametrize("speed", [1.0, 2.0, 0.5])
def test_a_run_whose_first_instant_is_late_starts_at_once(speed: float) -> None:
    clock = StillClock()
    pacer = Pacer(speed, clock=clock.clock, sleep=clock.sleep)
    pacer.wait_for(5.0)  # the first five simulated seconds were empty
    assert clock.sleeps == []
    pacer.wait_for(6.0)
    assert clock.sleeps == [pytest.approx(1.0 / speed)]


def test_a_wait_of_exactly_the_granularity_is_not_slept() -> None:
    clock = StillClock()
    pacer = Pacer(1.0, clock=clock.clock, sleep=clock.sleep, granularity=0.25)
    pacer.wait_for(0.0)
    pacer.wait_for(0.25)
    assert clock.sleeps == []
    pacer.wait_for(0.5)
    assert clock.sleeps == [0.5]


def test_without_a_speed_nothing_waits() -> None:
    clock = StillClock()
    pacer = Pacer(None, clock=clock.clock, sleep=clock.sleep)
    pacer.wait_for(0.0)
    pacer.wait_for(3600.0)
    assert clock.sleeps == []


@pytest.mark.parametrize("speed", [0.0, -1.0])
def test_a_speed_must_be_positive(speed: float) -> None:
    with pytest.raises(ValueError, match=f"speed must be positive, got {speed}"):
        Pacer(speed)
