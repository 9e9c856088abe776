"""One way to stop a long-running command on SIGINT or SIGTERM.

The first signal sets the event the library watches (``produce``, ``simulate``,
``consume``, ``pipeline run`` and ``demo`` all take one): the work stops at its next
check, flushes, and accounts for what it did. A second signal stops at once, as
Ctrl-C usually does; what was committed stays committed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["stop_on_signals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(on_first: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM; the handlers before are restored after.

    ``on_first`` runs when the first signal arrives (for example, to say that the
    command is stopping); a second signal raises ``KeyboardInterrupt``.
    """
    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if on_first is not None:
            on_first()

    previous = {s: signal.signal(s, handle) for s in _SIGNALS}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
