"""What commands print: tables, the produce summary and live line, the KPI tables."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click

__all__ = [
    "Every",
    "Live",
    "cell",
    "contract_table",
    "kpi_tables",
    "live_line",
    "produce_line",
    "produce_summary",
    "progress",
    "serve_metrics",
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


def produce_line(p: Any) -> str:
    """One produce progress snapshot as a line: the sale's clock and phase, the rates,
    the counts and the delivery latency."""
    target = "max" if p.target_rate == float("inf") else f"{p.target_rate:,.0f}/s"
    latency = f"p50 {p.p50_ms:.1f} ms p99 {p.p99_ms:.1f} ms" if p.p50_ms is not None else "-"
    minutes, seconds = divmod(p.second, 60)
    return (
        f"t+{minutes:02d}:{seconds:02d} {p.phase:<10} target {target:>9} achieved "
        f"{p.achieved_rate:>9,.0f}/s  sent {p.sent:,} acked {p.acked:,} failed {p.failed:,} "
        f"in-flight {p.in_flight:,}  {latency}"
    )


def live_line(p: Any) -> None:
    """The produce progress line, rewritten in place on stderr."""
    click.echo(f"\r{produce_line(p)}   ", err=True, nl=False)


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

    def end(self) -> None:
        """Before other output: nothing to end for plain lines."""


class Live:
    """Progress on a terminal: one line, rewritten in place."""

    def __init__(self, render: Callable[[Any], str]) -> None:
        self.render = render
        self.shown = False

    def __call__(self, snapshot: Any) -> None:
        click.echo(f"\r{self.render(snapshot)}   ", err=True, nl=False)
        self.shown = True

    def end(self) -> None:
        """End the line, so that what is printed next starts on its own."""
        if self.shown:
            click.echo("", err=True)
            self.shown = False


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


def progress(render: Callable[[Any], str], quiet: bool, every: float = 5.0) -> Live | Every | None:
    """The progress callback of a long command: a line rewritten in place on a
    terminal, a plain line every ``every`` seconds elsewhere, nothing when ``quiet``.
    Call its ``end()`` before printing anything else."""
    if quiet:
        return None
    if sys.stderr.isatty():
        return Live(render)
    return Every(render, every)


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
