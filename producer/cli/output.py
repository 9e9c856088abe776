"""What commands print: tables, the produce summary, the progress of long commands
(rich on a terminal, plain lines elsewhere), the KPI tables.

rich is imported only where a display is drawn: the other commands start without it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import click

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live as RichLive
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "Board",
    "Every",
    "PipelineProgress",
    "PipelineWatch",
    "cell",
    "contract_line",
    "contract_table",
    "contract_view",
    "kpi_tables",
    "pipeline_line",
    "pipeline_progress",
    "pipeline_view",
    "produce_line",
    "produce_summary",
    "produce_view",
    "progress",
    "serve_metrics",
    "simulate_line",
    "simulate_view",
    "stack_status",
    "table",
]


def table(rows: Sequence[Sequence[str]]) -> None:
    """Rows as left-aligned columns; the first row is the header."""
    click.echo("\n".join(_aligned(rows)))


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def cell(value: Any) -> str:
    """A value as a table shows it: times to the second, floats to four places."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def stack_status(statuses: Sequence[Any]) -> None:
    rows = [("service", "address", "state", "pid", "storage")]
    for s in statuses:
        rows.append((s.name, s.address, s.state, str(s.pid or "-"), s.note))
    table(rows)


def contract_table(report: Any) -> str:
    """The writer x reader matrix, each failure on its own line, and the verdict."""
    rows = [("writer \\ reader", *report.readers)]
    for w in report.writers:
        rows.append((w, *(report.verdict(w, r).status for r in report.readers)))
    lines = _aligned(rows)
    for v in report.verdicts:
        for problem in v.problems:
            lines.append(f"FAIL writer {v.writer} x reader {v.reader}: {problem}")
    verdict = "all pairs pass" if report.ok else "contract verification FAILED"
    lines.append(f"{verdict} ({len(report.verdicts)} pairs)")
    return "\n".join(lines) + "\n"


# Progress. A long command hands snapshots of its work to the callback that
# ``progress()`` yields. On a terminal they are drawn by rich as a live display on
# stderr, redrawn in place and erased when the work ends (the command's summary follows
# as plain text, as without a terminal); elsewhere (a CI log) the newest snapshot is
# printed as one plain line every few seconds; with --quiet, nothing.


def _clock(second: int) -> str:
    minutes, seconds = divmod(second, 60)
    return f"t+{minutes:02d}:{seconds:02d}"


def produce_line(p: Any) -> str:
    """One produce progress snapshot as a line: the sale's clock and phase, the rates,
    the counts and the delivery latency."""
    target = "max" if p.target_rate == float("inf") else f"{p.target_rate:,.0f}/s"
    latency = f"p50 {p.p50_ms:.1f} ms p99 {p.p99_ms:.1f} ms" if p.p50_ms is not None else "-"
    return (
        f"{_clock(p.second)} {p.phase:<10} target {target:>9} achieved "
        f"{p.achieved_rate:>9,.0f}/s  sent {p.sent:,} acked {p.acked:,} failed {p.failed:,} "
        f"in-flight {p.in_flight:,}  {latency}"
    )


def produce_view(p: Any) -> RenderableType:
    """A produce progress snapshot on a terminal: the same fields as
    :func:`produce_line`, as a small panel."""
    from rich.panel import Panel
    from rich.text import Text

    target = "max" if p.target_rate == float("inf") else f"{p.target_rate:,.0f}/s"
    ms = "-" if p.p50_ms is None else f"{p.p50_ms:.1f} ms"
    ms99 = "-" if p.p99_ms is None else f"{p.p99_ms:.1f} ms"
    failed = Text(f"{p.failed:,}", style="bold red" if p.failed else "")
    grid = _grid(
        ("sale clock", _clock(p.second), "phase", p.phase),
        ("sent", f"{p.sent:,}", "acked", f"{p.acked:,}"),
        ("failed", failed, "in flight", f"{p.in_flight:,}"),
        ("rate", f"{p.achieved_rate:,.0f}/s", "target", target),
        ("latency p50", ms, "p99", ms99),
    )
    return Panel(grid, title="produce", title_align="left", expand=False)


def simulate_line(p: tuple[int, int, float]) -> str:
    """A simulate progress snapshot (events written, simulated seconds, wall seconds)."""
    return f"{p[0]:,} events, {p[1]:,} simulated s"


def simulate_view(p: tuple[int, int, float]) -> RenderableType:
    from rich.panel import Panel

    events, second, elapsed = p
    rate = events / elapsed if elapsed > 0 else 0.0
    grid = _grid(
        ("events", f"{events:,}", "sale clock", _clock(second)),
        ("rate", f"{rate:,.0f} events/s", "", ""),
    )
    return Panel(grid, title="simulate", title_align="left", expand=False)


def contract_line(p: tuple[int, int, str]) -> str:
    """A contract-verification snapshot: pairs done, of how many, the newest pair."""
    return f"pair {p[0]}/{p[1]}: {p[2]}"


def contract_view(p: tuple[int, int, str]) -> RenderableType:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    done, total, name = p
    grid = Table.grid(padding=(0, 1))
    grid.add_row(ProgressBar(total=total, completed=done, width=30), f"pair {done}/{total}", name)
    return grid


def _grid(*rows: tuple[str, str | Text, str, str | Text]) -> Table:
    """Rows of label, value, label, value."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    for _ in range(2):
        grid.add_column(style="bold")
        grid.add_column(justify="right")
    for row in rows:
        grid.add_row(*row)
    return grid


PIPELINE_LAYERS = ("bronze", "silver", "gold")


@dataclass
class PipelineProgress:
    """``pipeline run`` so far: this round's Bronze (records read, the seconds it has
    read for, the lag per partition as of its newest commit), the layer at work, and
    what the layers took in over the rounds before this one."""

    records: int = 0
    elapsed: float = 0.0
    lag: dict[int, int] = field(default_factory=dict)
    round: int = 1
    layer: str = "bronze"  # a layer, or "waiting" (between the rounds of a following run)
    read: int = 0  # Bronze, earlier rounds
    inserted: int = 0  # Silver, every round done
    quarantined: int = 0
    duplicates: int = 0
    silver_rate: float | None = None  # records Silver read per second, in the last round
    gold_tables: int | None = None  # KPI tables of the last round

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0


def pipeline_line(p: PipelineProgress) -> str:
    """Bronze's progress as a line: records read this round, their rate, and the lag."""
    lag = sum(p.lag.values())
    worst = max(p.lag.items(), key=lambda kv: kv[1], default=None)
    behind = f" (most on partition {worst[0]}: {worst[1]:,})" if worst and worst[1] else ""
    return f"bronze: {p.records:,} records, {p.rate:,.0f}/s, lag {lag:,}{behind}"


def pipeline_view(p: PipelineProgress) -> RenderableType:
    """``pipeline run`` on a terminal: records and rate per layer, lag per partition."""
    from rich import box
    from rich.columns import Columns
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    at = PIPELINE_LAYERS.index(p.layer) if p.layer in PIPELINE_LAYERS else len(PIPELINE_LAYERS)
    waiting = ": waiting for the next round" if p.layer == "waiting" else ""
    header = Text.assemble(("pipeline run", "bold"), f", round {p.round}{waiting}")
    table = Table(box=box.SIMPLE_HEAD, expand=False)
    table.add_column("layer", style="bold")
    table.add_column("")
    table.add_column("records", justify="right")
    table.add_column("rate", justify="right")
    state = ["done" if i < at else "at work" if i == at else "" for i in range(3)]
    silver = f"{p.inserted:,} inserted"
    if p.quarantined or p.duplicates:
        silver += f", {p.quarantined:,} quarantined, {p.duplicates:,} duplicates"
    silver_rate = "-" if p.silver_rate is None else f"{p.silver_rate:,.0f}/s"
    gold = "-" if p.gold_tables is None else f"{p.gold_tables} KPI tables"
    table.add_row("bronze", state[0], f"{p.read + p.records:,} read", f"{p.rate:,.0f}/s")
    table.add_row("silver", state[1], silver, silver_rate)
    table.add_row("gold", state[2], gold, "")
    total = sum(p.lag.values())
    lag = Text.assemble(("lag per partition", "bold"), f" (total {total:,})")
    cells = [Text(f"p{k} {v:,}", style="yellow" if v else "") for k, v in sorted(p.lag.items())]
    return Group(header, table, lag, Columns(cells, padding=(0, 3)) if cells else Text("-"))


class PipelineWatch:
    """Follows ``pipeline run`` (and the demo's pipeline) for its progress, across
    rounds: Bronze's commits (:meth:`bronze`), the pipeline's step lines (:meth:`step`,
    printed on stdout as without progress) and each round's end (:meth:`round`)."""

    _NEXT: ClassVar[dict[str, str]] = {
        "catalog": "bronze",
        "bronze": "silver",
        "silver": "gold",
        "gold": "done",
    }

    def __init__(self, shown: Board | Every | None) -> None:
        self.shown = shown
        self.now = PipelineProgress()
        self._since = time.monotonic()  # when the layer at work began
        self._silver_took = 0.0
        self._drawn = 0.0

    # Bronze may commit many times a second, and a frame costs milliseconds: the display
    # is redrawn at most this often, and at once when Bronze has caught up.
    DRAW_EVERY = 0.25

    def bronze(self, stats: Any) -> None:
        """Bronze committed: its records this round and its lag per partition."""
        p, now = self.now, time.monotonic()
        p.records, p.lag = stats.records, dict(stats.lag)
        p.elapsed = now - self._since
        if isinstance(self.shown, Board):
            if now - self._drawn < self.DRAW_EVERY and any(p.lag.values()):
                return
            self._drawn = now
        if self.shown is not None:
            self.shown(p)

    def step(self, line: str) -> None:
        """A step of the pipeline ended (``catalog: ...``, ``bronze: ...``): its line on
        stdout; the display goes on with the next layer."""
        self.echo(line)
        p, now = self.now, time.monotonic()
        done = line.split(":", 1)[0]
        if done == "silver" and p.layer == "silver":
            self._silver_took = now - self._since
        p.layer = self._NEXT.get(done, p.layer)
        self._since = now
        if self.shown is not None and p.layer in PIPELINE_LAYERS:
            self.shown.redraw(p)

    def round(self, result: Any, line: str, following: bool) -> None:
        """A round ended: its line on stdout; its counts join the totals; a following
        run shows that it waits for the next round."""
        p = self.now
        silver = result.silver
        took, self._silver_took = self._silver_took, 0.0
        p.read += result.bronze.records
        p.records, p.elapsed = 0, 0.0
        p.inserted += silver.inserted
        p.quarantined += silver.quarantined
        p.duplicates += silver.duplicates
        p.silver_rate = silver.read / took if took > 0 else None
        p.gold_tables = len(result.kpis)
        self.echo(line)
        if following:
            p.layer = "waiting"
            if self.shown is not None:
                self.shown.redraw(p)
            p.round += 1
            p.layer = "bronze"
        self._since = time.monotonic()

    def echo(self, line: str) -> None:
        """A line on stdout, the display set aside first."""
        if self.shown is not None:
            self.shown.end()
        click.echo(line)

    def note(self, text: str) -> None:
        """A line for the user on stderr; safe in a signal handler."""
        if self.shown is None:
            click.echo(text, err=True)
        else:
            self.shown.note(text)


@contextmanager
def pipeline_progress(quiet: bool) -> Iterator[PipelineWatch]:
    """A :class:`PipelineWatch` with the progress of :func:`progress` (none when
    ``quiet``: the step lines are printed all the same)."""
    with progress(pipeline_line, quiet, view=pipeline_view) as shown:
        yield PipelineWatch(shown)


class Every:
    """Progress for output that is not a terminal (a CI log): the line of the newest
    snapshot, at most once every ``seconds``."""

    def __init__(self, render: Callable[[Any], str], seconds: float = 5.0) -> None:
        self.render = render
        self.seconds = seconds
        self._last = time.monotonic()

    def __call__(self, snapshot: Any) -> None:
        now = time.monotonic()
        if now - self._last >= self.seconds:
            self._last = now
            click.echo(self.render(snapshot), err=True)

    def redraw(self, snapshot: Any) -> None:
        """Not a new snapshot: the plain lines keep their schedule."""

    def note(self, text: str) -> None:
        click.echo(text, err=True)

    def end(self) -> None:
        """Before other output: nothing to end for plain lines."""


class Board:
    """Progress on a terminal: ``view(snapshot)`` drawn by rich as a live display on
    stderr, redrawn in place at each snapshot (the commands hand one every half second
    or so) and erased by :meth:`end`, so that what is printed next starts clean; the
    next snapshot draws it again.

    While it is drawn, log records meant for stderr and :meth:`note` lines are printed
    above it, never through it."""

    def __init__(self, view: Callable[[Any], RenderableType], console: Console) -> None:
        self.view = view
        self.console = console
        self._live: RichLive | None = None
        self._notes: list[str] = []
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    def __call__(self, snapshot: Any) -> None:
        shown = self.view(snapshot)
        if self._live is None:
            self._start(shown)
        else:
            self._live.update(shown, refresh=True)
        while self._notes and self._live is not None:
            self._live.console.print(self._notes.pop(0), markup=False, highlight=False)

    def redraw(self, snapshot: Any) -> None:
        """Not a new snapshot, but what it shows changed (the layer at work)."""
        self(snapshot)

    def note(self, text: str) -> None:
        """A line for the user, printed above the display at its next drawing or when it
        ends (a signal handler may call this: it only takes note)."""
        self._notes.append(text)

    def _start(self, shown: RenderableType) -> None:
        from rich.file_proxy import FileProxy
        from rich.live import Live as RichLive

        live = RichLive(
            shown,
            console=self.console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        proxy = FileProxy(self.console, sys.stderr)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                self._handlers.append((handler, handler.setStream(proxy)))
        self._live = live
        live.start(refresh=True)

    def end(self) -> None:
        """Erase the display (if drawn), then print the notes it kept."""
        live, self._live = self._live, None
        try:
            if live is not None:
                live.stop()
        finally:
            for handler, stream in self._handlers:
                proxied = handler.setStream(stream)
                if proxied is not None:
                    proxied.flush()
            self._handlers.clear()
            for text in self._notes:
                click.echo(text, err=True)
            self._notes.clear()


@contextmanager
def progress(
    render: Callable[[Any], str],
    quiet: bool,
    every: float = 5.0,
    view: Callable[[Any], RenderableType] | None = None,
) -> Iterator[Board | Every | None]:
    """The progress callback of a long command, for the length of the ``with``: on a
    terminal, ``view(snapshot)`` (default: the line ``render(snapshot)``) as a live
    display on stderr; elsewhere ``render(snapshot)`` as a plain line every ``every``
    seconds; None when ``quiet``. Call its ``end()`` before printing anything else
    while it runs; leaving the ``with`` (an error, Ctrl-C included) ends it."""
    if quiet:
        yield None
        return
    shown: Board | Every = Every(render, every)
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.text import Text

        console = Console(stderr=True, highlight=False)
        if console.is_interactive:  # a terminal, and not a dumb one
            shown = Board(view or (lambda s: Text(render(s))), console)
    try:
        yield shown
    finally:
        shown.end()


def serve_metrics(kind: Callable[[], Any], port: int | None, quiet: bool) -> Any:
    """``kind()``'s metrics served on ``port`` (None: no metrics); a busy port is refused
    before the command does anything."""
    if port is None:
        return None
    metrics = kind()
    metrics.serve(port)
    if not quiet:
        click.echo(f"metrics on http://localhost:{port}/metrics", err=True)
    return metrics


def produce_summary(result: Any, topic: str) -> None:
    """The table after a produce run, and one error line if anything was lost."""
    rate = result.acked / result.elapsed if result.elapsed > 0 else 0.0
    p50, p99 = result.percentile(0.5), result.percentile(0.99)
    switched = f", then {result.switched_schema_id}" if result.switched_schema_id else ""
    failed = f" {dict(result.errors)}" if result.errors else ""
    rows = [
        ("run id", result.run_id),
        ("topic", topic),
        ("schema id", f"{result.schema_id}{switched}"),
        (
            "catalog",
            f"{result.catalog_products} products -> {result.catalog_topic}"
            if result.catalog_topic
            else "not published",
        ),
        ("sent", f"{result.sent}"),
        ("acknowledged", f"{result.acked}"),
        ("failed", f"{result.failed}{failed}"),
        ("unconfirmed", f"{result.unconfirmed}"),
        ("elapsed", f"{result.elapsed:.1f}s ({rate:,.0f} acked/s)"),
        ("delivery latency", "-" if p50 is None else f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"),
    ]
    if result.ledger_path is not None:
        rows.append(("ledger", str(result.ledger_path)))
    if result.interrupted:
        rows.append(("interrupted", "yes: generation stopped, outstanding records flushed"))
    table(rows)
    if not result.ok:
        click.echo(f"Error: {result.lost} of {result.sent} records were not acknowledged", err=True)


def _kpi(title: str, rows: list[dict[str, Any]]) -> None:
    click.echo(f"\n{title}")
    if not rows:
        click.echo("  (none)")
        return
    columns = list(rows[0])
    table([tuple(columns)] + [tuple(cell(r[c]) for c in columns) for r in rows])


def quiet_runs_folded(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any] | str]:
    """Per-minute rows with each run of three or more minutes where ``column`` is 0
    folded into one line saying so (the table keeps every row; the screen need not)."""
    out: list[dict[str, Any] | str] = []
    run: list[dict[str, Any]] = []

    def flush() -> None:
        if len(run) >= 3:
            first, last = run[0]["minute"], run[-1]["minute"]
            out.append(f"{len(run)} minutes without any, {first:%H:%M}-{last:%H:%M}")
        else:
            out.extend(run)
        run.clear()

    for row in rows:
        if row[column] == 0:
            run.append(row)
            continue
        flush()
        out.append(row)
    flush()
    return out


def _per_minute(title: str, rows: list[dict[str, Any]], column: str) -> None:
    click.echo(f"\n{title}")
    if not rows:
        click.echo("  (none)")
        return
    columns = list(rows[0])
    items = quiet_runs_folded(rows, column)
    shown = [tuple(columns)] + [
        tuple(cell(r[c]) for c in columns) for r in items if not isinstance(r, str)
    ]
    aligned = iter(_aligned(shown))
    click.echo(next(aligned))
    for item in items:
        click.echo(f"({item})" if isinstance(item, str) else next(aligned))


def kpi_tables(kpis: dict[str, Any], top: int) -> None:
    """The Gold tables, the spikes among the minutes, and a bar chart of events per minute."""
    per_minute = kpis["revenue_per_minute"].to_pylist()
    _per_minute("revenue per minute", per_minute, "events")
    _kpi("funnel per category", kpis["funnel_per_category"].to_pylist())
    _kpi(f"top {top} products", kpis["product_sales"].to_pylist()[:top])
    _kpi("sold-out moments", kpis["sold_out"].to_pylist())
    if "sell_out_times" in kpis:
        _kpi("time from the sale's start to each sell-out", kpis["sell_out_times"].to_pylist())
    if "session_funnel" in kpis:
        _kpi("session funnel", kpis["session_funnel"].to_pylist())
    if "quality_per_minute" in kpis:
        _per_minute(
            "data quality per minute of arrival", kpis["quality_per_minute"].to_pylist(), "records"
        )
    spikes = [r for r in kpis["spikes"].to_pylist() if r["is_spike"] == 1]
    _kpi("spikes (z-score >= 3 against the previous 10 minutes)", spikes)
    click.echo("\nevents per minute")
    peak = max((r["events"] for r in per_minute), default=0)
    for r in quiet_runs_folded(per_minute, "events"):
        if isinstance(r, str):
            click.echo(f"  ({r})")
            continue
        bar = "#" * (round(40 * r["events"] / peak) if peak else 0)
        click.echo(f"  {r['minute']:%H:%M} {bar:<40} {r['events']:,}")
