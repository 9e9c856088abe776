"""Live progress: a rich display on a terminal (a real pseudo-terminal, its screen read
back with a VT100 emulator), plain lines every few seconds elsewhere."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyte
import pytest
from rich.console import Console

from producer.cli.output import (
    Board,
    PipelineProgress,
    PipelineWatch,
    pipeline_line,
    pipeline_progress,
    pipeline_view,
    progress,
)
from producer.errors import Interrupted
from tests.terminal import run_in_terminal

BOX = re.compile("[╭╮╰╯│─]")  # a panel's border
COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-7]|9[0-7]|38;[25];[0-9;]+)m")  # a foreground colour


def test_simulate_on_a_terminal_draws_a_live_display_then_leaves_the_plain_summary(
    tmp_path: Path,
) -> None:
    out = tmp_path / "s.avro"
    run = run_in_terminal("simulate", "--scenario", "flash-sale", "--seed", "3",
                          "--events", "30000", "--out", str(out), columns=220)  # fmt: skip
    assert run.code == 0, run.raw
    # The display was drawn: the panel and its fields, at least one snapshot of them.
    assert "╭─ simulate " in run.raw, run.raw
    assert re.search(r"events\S*\s+\S*\s*[\d,]+", run.raw), run.raw
    assert re.search(r"sale clock\S*\s+\S*\s*t\+\d\d:\d\d", run.raw), run.raw
    assert re.search(r"[\d,]+ events/s", run.raw), run.raw
    # ...and erased: the screen holds the summary alone, the cursor shown again.
    assert len(run.screen) == 1, run.screen
    assert re.fullmatch(
        rf"30000 events \(\d+ simulated seconds of flash-sale, seed 3, schema v\d+, run \w+\) "
        rf"-> {re.escape(str(out))} in [\d.]+s \([\d,]+ events/s\)",
        run.screen[0],
    ), run.screen
    assert run.raw.rfind("\x1b[?25h") > run.raw.rfind("\x1b[?25l") >= 0


def test_simulate_stopped_by_ctrl_c_on_a_terminal_ends_in_its_one_error_line(
    tmp_path: Path,
) -> None:
    out = tmp_path / "s.avro"
    run = run_in_terminal("simulate", "--scenario", "flash-sale", "--duration", "2h",
                          "--out", str(out), columns=220,
                          interrupt_when=lambda shown: "╭─ simulate " in shown)  # fmt: skip
    assert run.code == Interrupted.exit_code, run.raw
    assert len(run.screen) == 1 and not BOX.search(run.text), run.screen
    assert re.fullmatch(
        rf"Error: interrupted after \d+ events, all in {re.escape(str(out))}", run.screen[0]
    ), run.screen


def test_contract_verify_on_a_terminal_draws_its_bar_then_prints_the_matrix() -> None:
    run = run_in_terminal("contract", "verify")
    assert run.code == 0, run.raw
    pairs = re.findall(r"━[━╸╺ ]* pair (\d+)/(\d+) (v\d+ x [\w-]+)", run.plain)
    total = int(pairs[-1][1])
    assert [int(done) for done, _, _ in pairs][-1] == total > 0, run.plain  # the bar filled
    # Erased: the matrix and the verdict stand alone, as off a terminal.
    assert run.screen[0].startswith("writer \\ reader  ")
    assert run.screen[-1] == f"all pairs pass ({total} pairs)"
    assert "━" not in run.text


def test_quiet_simulate_and_contract_verify_draw_nothing_on_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "s.avro"
    run = run_in_terminal("simulate", "--scenario", "flash-sale", "--events", "30000",
                          "--out", str(out), "--quiet", columns=220)  # fmt: skip
    assert run.code == 0, run.raw
    assert "╭─" not in run.raw and "\x1b[?25l" not in run.raw, run.raw
    assert len(run.screen) == 1 and run.screen[0].startswith("30000 events ("), run.screen
    run = run_in_terminal("contract", "verify", "--quiet")
    assert run.code == 0, run.raw
    assert "━" not in run.raw and "\x1b[?25l" not in run.raw, run.raw
    assert run.screen[0].startswith("writer \\ reader  ")


@pytest.mark.slow
def test_simulate_off_a_terminal_prints_plain_lines_every_five_seconds(tmp_path: Path) -> None:
    out = tmp_path / "s.avro"
    # Off a terminal the run reports every 50,000 events, printed once 5 s have gone
    # by: 500,000 events take longer than that below 100,000 events/s (simulate
    # writes about 45,000 a second on the 2-core machine the suite runs on).
    process = subprocess.run(
        [sys.executable, "-m", "producer.cli", "simulate", "--scenario", "flash-sale",
         "--events", "500000", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    lines = process.stderr.splitlines()
    assert lines and all(re.fullmatch(r"[\d,]+ events, [\d,]+ simulated s", ln) for ln in lines)
    assert "\x1b" not in process.stderr + process.stdout and "\r" not in process.stderr
    assert process.stdout.startswith("500000 events (") and process.stdout.count("\n") == 1


class Stats:
    """What Bronze hands on after a commit (consumers.bronze.BronzeStats' fields)."""

    def __init__(self, records: int, lag: dict[int, int]) -> None:
        self.records, self.lag = records, lag


def rendered(renderable: object, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    text = console.file.getvalue()
    assert isinstance(text, str)
    return text


def test_the_pipeline_view_shows_records_and_rate_per_layer_and_lag_per_partition() -> None:
    p = PipelineProgress(records=12_000, elapsed=4.0, lag={0: 0, 1: 1_200, 2: 0, 3: 35},
                         round=2, layer="bronze", read=30_000, inserted=29_000,
                         quarantined=7, duplicates=3, silver_rate=9_000.0,
                         gold_tables=9)  # fmt: skip
    text = rendered(pipeline_view(p))
    assert "pipeline run, round 2" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.split()}
    assert rows["bronze"] == ["at", "work", "42,000", "read", "3,000/s"]
    assert rows["silver"] == ["29,000", "inserted,", "7", "quarantined,", "3", "duplicates",
                              "9,000/s"]  # fmt: skip
    assert rows["gold"] == ["9", "KPI", "tables"]
    assert "lag per partition (total 1,235)" in text
    assert re.search(r"p0 0 +p1 1,200 +p2 0 +p3 35", text), text
    # The plain line of a CI log: this round's Bronze, the lag and where most of it is.
    assert pipeline_line(p) == (
        "bronze: 12,000 records, 3,000/s, lag 1,235 (most on partition 1: 1,200)"
    )
    later = PipelineProgress(layer="gold", lag={0: 0, 1: 0})
    text = rendered(pipeline_view(later))
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.split()}
    assert rows["bronze"][0] == "done" and rows["silver"][0] == "done"
    assert rows["gold"][:2] == ["at", "work"]
    assert pipeline_line(later) == "bronze: 0 records, 0/s, lag 0"


def test_many_partitions_wrap_within_the_width() -> None:
    p = PipelineProgress(records=1, elapsed=1.0, lag={k: k * 1000 for k in range(48)})
    text = rendered(pipeline_view(p), width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    cells = re.findall(r"p(\d+) ([\d,]+)", text)
    assert [(int(k), int(v.replace(",", ""))) for k, v in cells] == [
        (k, k * 1000) for k in range(48)
    ]


class Terminal:
    """A pseudo-terminal (80 x 24) for this process's stderr, its bytes read by a VT100
    emulator: :meth:`attach` makes it sys.stderr (in the test itself: pytest's capture
    takes sys.stderr back between a fixture and the test), :meth:`read` feeds the
    emulator what was written since, and :attr:`screen` is what it shows."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.master, slave = os.openpty()
        self.stderr = open(slave, "w", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.Stream(self.screen)
        self.raw = ""
        os.set_blocking(self.master, False)

    def attach(self) -> None:
        self.monkeypatch.setattr(sys, "stderr", self.stderr)
        self.monkeypatch.setenv("COLUMNS", "80")
        self.monkeypatch.setenv("LINES", "24")
        self.monkeypatch.setenv("TERM", "xterm")
        self.monkeypatch.delenv("NO_COLOR", raising=False)

    def read(self) -> str:
        self.stderr.flush()
        chunks = []
        try:
            while chunk := os.read(self.master, 65536):
                chunks.append(chunk)
        except BlockingIOError:
            pass
        text = b"".join(chunks).decode()
        self.raw += text
        self.stream.feed(text)  # the pty turned each "\n" into "\r\n"
        return text

    def shown(self) -> list[str]:
        lines = [line.rstrip() for line in self.screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def close(self) -> None:
        self.stderr.close()
        os.close(self.master)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Terminal]:
    tty = Terminal(monkeypatch)
    yield tty
    monkeypatch.undo()
    tty.close()


def test_pipeline_progress_on_a_terminal_draws_lag_per_partition_then_clears(
    terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal.attach()
    with pipeline_progress(quiet=False) as watch:
        assert isinstance(watch.shown, Board)
        watch.step("catalog: 3 products")
        watch.bronze(Stats(5_000, {0: 250, 1: 0, 2: 4_000}))
        terminal.read()
        drawn = "\n".join(terminal.shown())
        assert "pipeline run, round 1" in drawn
        assert re.search(r"bronze +at work +5,000 read", drawn), drawn
        assert re.search(r"p0 250 +p1 0 +p2 4,000", drawn), drawn
        watch.note("a note for the user")  # kept until the next drawing
        watch.step("bronze: 5000 records in 1 commits")  # erases it; drawn again after
        terminal.read()
        drawn = "\n".join(terminal.shown())
        assert re.search(r"bronze +done", drawn) and re.search(r"silver +at work", drawn), drawn
    terminal.read()
    assert terminal.shown() == ["a note for the user"]  # the display is gone; the note stays
    # The step lines went to stdout, as without a terminal.
    assert capsys.readouterr().out == "catalog: 3 products\nbronze: 5000 records in 1 commits\n"


def test_no_color_leaves_the_display_without_colours(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal.attach()

    def draw() -> str:
        with progress(pipeline_line, quiet=False, view=pipeline_view) as display:
            assert display is not None
            display(PipelineProgress(records=9, elapsed=1.0, lag={0: 9}))
        return terminal.read()

    assert COLOUR.search(draw())  # a partition behind is coloured...
    monkeypatch.setenv("NO_COLOR", "1")
    plain = draw()
    assert "p0 9" in plain and not COLOUR.search(plain)  # ...unless NO_COLOR is set


def test_an_error_erases_the_display_and_a_log_line_goes_above_it(
    terminal: Terminal,
) -> None:
    terminal.attach()
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    try:
        with pytest.raises(RuntimeError), progress(pipeline_line, False, view=pipeline_view) as d:
            assert d is not None
            d(PipelineProgress(records=1, elapsed=1.0, lag={0: 1}))
            logging.getLogger("flashsale.test").warning("a warning while drawn")
            d.redraw(PipelineProgress(records=2, elapsed=1.0, lag={0: 2}))
            terminal.read()
            drawn = terminal.shown()
            assert drawn[0] == "a warning while drawn" and "pipeline run, round 1" in drawn[1]
            raise RuntimeError("broken")
        assert handler.stream is sys.stderr  # given back
    finally:
        logging.getLogger().removeHandler(handler)
    terminal.read()
    assert terminal.shown() == ["a warning while drawn"]  # the display is erased


def test_quiet_shows_nothing() -> None:
    with progress(pipeline_line, quiet=True, view=pipeline_view) as display:
        assert display is None
    with pipeline_progress(quiet=True) as watch:
        assert watch.shown is None


def test_bronze_commits_are_drawn_at_most_four_times_a_second_and_at_once_when_caught_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("producer.cli.output.time.monotonic", lambda: clock[0])
    screen = io.StringIO()
    board = Board(pipeline_view, Console(file=screen, force_terminal=True, width=80))
    watch = PipelineWatch(board)

    def frames() -> list[str]:
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
        return re.findall(r"bronze +at work +([\d,]+) read", text)

    watch.bronze(Stats(5_000, {0: 900}))
    watch.bronze(Stats(10_000, {0: 400}))  # at once: not drawn
    clock[0] += 0.1
    watch.bronze(Stats(15_000, {0: 100}))  # 0.1 s later: not drawn
    assert frames() == ["5,000"]
    clock[0] += 0.2
    watch.bronze(Stats(20_000, {0: 50}))  # a quarter of a second since the last frame
    clock[0] += 0.01
    watch.bronze(Stats(20_050, {0: 0}))  # caught up: drawn at once
    assert frames() == ["5,000", "20,000", "20,050"]
    board.end()
