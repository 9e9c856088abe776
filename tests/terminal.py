"""Run the real CLI on a pseudo-terminal, as a user at a terminal would, and read the
screen it leaves with a VT100 emulator (pyte).

The command's stdin, stdout and stderr are the pty's slave end, sized ``columns`` x
``lines`` (TERM=xterm, COLUMNS and LINES set as a shell does); everything it writes,
escape sequences included, is read from the master end until it exits.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyte


@dataclass
class TerminalRun:
    code: int
    raw: str  # every byte written, escape sequences included, decoded
    screen: list[str]  # the screen and its scrollback as the run left them, right-trimmed

    @property
    def text(self) -> str:
        return "\n".join(self.screen)

    @property
    def plain(self) -> str:
        """Every byte written, escape sequences taken out: each frame of a live display
        in turn, as text."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.raw)


def run_in_terminal(
    *args: str,
    env: dict[str, str] | None = None,
    columns: int = 100,
    lines: int = 40,
    timeout: float = 180,
    interrupt_when: Callable[[str], bool] | None = None,
) -> TerminalRun:
    """``flashsale ARGS`` on a pty; ``interrupt_when(output so far)`` true sends it one
    SIGINT (Ctrl-C), once."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    environ = {
        **os.environ,
        **(env or {}),
        "TERM": "xterm",
        "COLUMNS": str(columns),
        "LINES": str(lines),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environ,
        start_new_session=True,  # the pty is its controlling terminal
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    interrupt = interrupt_when or (lambda _: False)
    interrupted = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer of the slave end has closed it
                    break
                if not chunk:
                    break
                out += chunk
                if not interrupted and interrupt(out.decode("utf-8", "replace")):
                    process.send_signal(signal.SIGINT)
                    interrupted = True
            elif process.poll() is not None:
                break
        try:
            code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            tail = out.decode("utf-8", "replace")[-2000:]
            raise AssertionError(f"still running after {timeout:g}s; it wrote: {tail!r}") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    raw = out.decode("utf-8", "replace")
    return TerminalRun(code, raw, _screen(raw, columns, lines))


def _screen(raw: str, columns: int, lines: int) -> list[str]:
    """What a VT100 shows after ``raw``: the lines scrolled off the top, then the screen,
    blank lines at the end dropped."""
    screen = pyte.HistoryScreen(columns, lines, history=10_000)
    stream = pyte.Stream(screen)
    # A pty turns "\n" into "\r\n" (onlcr) already: fed as it came.
    stream.feed(raw)
    history = [
        "".join(line[x].data for x in range(columns)).rstrip() for line in screen.history.top
    ]
    shown = [line.rstrip() for line in screen.display]
    while shown and not shown[-1]:
        shown.pop()
    return history + shown
