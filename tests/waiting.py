"""Waiting in tests for what another process does: a condition, polled until a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Return once ``condition()`` holds; fail the test when it still does not after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), "timed out"
