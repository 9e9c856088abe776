"""``flashsale report``: the warehouse as one HTML file to open and send."""

from __future__ import annotations

from pathlib import Path

import click

from producer.cli.options import warehouse_option
from producer.cli.root import FlashsaleCommand

__all__ = ["report"]


@click.command("report", cls=FlashsaleCommand)
@warehouse_option("Where the Delta tables live (after flashsale pipeline run).")
@click.option(
    "--ledger",
    "ledgers",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Reconcile every KPI table with this ledger, as kpis --verify-ledger does "
    "(repeat for every run into the topic); exit 1 on any difference.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="report.html",
    show_default=True,
    help="The HTML file to write (self-contained: opens without a network).",
)
def report(warehouse: Path, ledgers: tuple[Path, ...], out: Path) -> None:
    """Write a flash-sale report: one HTML file, charts and data inline.

    It shows events per minute by type with the sale window marked, the funnel,
    revenue per category, each product's sell-out with its stock, data quality
    (duplicates, quarantined by reason, lateness), the writer schema ids seen over
    time and, with ledgers, the reconciliation verdict of every KPI table. It reads
    the Gold tables as they stand.

    \b
    Example:
      flashsale report --out report.html
      flashsale report --warehouse /data/flash --ledger run-a.json --ledger run-b.json
    """
    from consumers.report import write_report
    from producer.paths import check_writable
    from producer.simulation.ledger import read_ledger

    check_writable(out, "--out")  # every input checked before any work
    read = [read_ledger(path) for path in ledgers]
    written = write_report(warehouse, out, read)
    click.echo(f"report: {out}")
    if written.verdicts is not None:
        if written.differences:
            click.echo(
                f"Error: {written.differences} KPI differences from the ledger; the report "
                "shows them",
                err=True,
            )
            raise SystemExit(1)
        click.echo("reconciled: every KPI table a ledger determines equals the ledgers")
