"""Pacing: release simulated time at a chosen speed of wall time, without drift.

Each event is due at ``start + event_offset / speed`` on the wall clock, computed
from the run's start rather than from the previous event, so rounding and sleep
overshoot never accumulate: a long run at 10 events/s emits 600 events a minute,
whatever the machine does in between. The pacer sleeps only when it is ahead by more
than its granularity, so at high rates events go out in small bursts that keep every
window's count on target. The clock and the sleep are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from producer.events import FlashSaleEvent

__all__ = ["Pacer", "paced"]


class Pacer:
    """Holds a stream of simulated instants to ``speed`` x wall time (None: no waiting)."""

    def __init__(
        self,
        speed: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        granularity: float = 0.002,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self.granularity = granularity
        self._wall_start: float | None = None

    def wait_for(self, offset_s: float) -> None:
        """Return when simulated offset ``offset_s`` (seconds since the run's start) is due."""
        if self.speed is None:
            return
        now = self.clock()
        if self._wall_start is None:
            self._wall_start = now - offset_s / self.speed
        ahead = self._wall_start + offset_s / self.speed - now
        if ahead > self.granularity:
            self.sleep(ahead)


def paced(
    events: Iterable[FlashSaleEvent], pacer: Pacer, start_ms: int
) -> Iterator[FlashSaleEvent]:
    """``events``, each released when its event time is due."""
    wait = pacer.wait_for
    for event in events:
        wait((event.timestamp_ms - start_ms) / 1000.0)
        yield event
