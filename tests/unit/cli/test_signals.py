"""One way to stop: the first SIGINT/SIGTERM asks the work to stop, a second stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from producer.cli.signals import stop_on_signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_sets_the_event_and_a_second_interrupts(signum: int) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    said: list[str] = []
    with stop_on_signals(on_first=lambda: said.append("stopping")) as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signum)
        assert stop.wait(5)
        assert said == ["stopping"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler raises while we wait
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_simulate_stops_on_a_signal_with_file_and_ledger_in_step(
    tmp_path: Path, signum: int
) -> None:
    out, ledger = tmp_path / "run.jsonl", tmp_path / "ledger.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer.cli",
            "simulate",
            "--events",
            "1000000000",
            "--out",
            str(out),
            "--ledger",
            str(ledger),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while not (out.exists() and out.stat().st_size > 100_000) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    lines = out.read_text().splitlines()
    assert (
        stderr
        == f"Error: interrupted after {len(lines)} events, all in {out}; ledger in {ledger}\n"
    )
    written = json.loads(ledger.read_text())
    assert written["complete"] is False
    assert written["total_events"] == len(lines) > 0
    assert json.loads(lines[-1])["event_id"]  # the last line is whole
