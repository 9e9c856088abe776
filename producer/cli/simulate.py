"""``flashsale scenarios`` (the built-in traffic) and ``flashsale simulate`` (a run
into a file, no Kafka)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from producer.cli.options import RunSpec, ledger_option, quiet_option, run_options
from producer.cli.output import Board, progress, simulate_line, simulate_view, table
from producer.cli.root import FlashsaleCommand, FlashsaleGroup, Settings, pass_settings
from producer.cli.signals import stop_on_signals

__all__ = ["scenarios", "simulate"]


@click.group(cls=FlashsaleGroup)
def scenarios() -> None:
    """The built-in traffic scenarios (a scenario is a YAML file plus a seed).

    \b
    Example:
      flashsale scenarios list
      flashsale scenarios show flash-sale > my-sale.yaml
    """


@scenarios.command("list")
def scenarios_list() -> None:
    """List the built-in scenarios.

    \b
    Example:
      flashsale scenarios list
    """
    from producer.simulation.scenario_file import builtin_scenarios, parse_scenario

    rows = [("name", "description")]
    for name, text in builtin_scenarios().items():
        rows.append((name, parse_scenario(text, name).description))
    table(rows)


@scenarios.command("show")
@click.argument("name")
def scenarios_show(name: str) -> None:
    """Print a built-in scenario's YAML, to read or to copy and edit.

    \b
    Example:
      flashsale scenarios show default
    """
    from producer.errors import ScenarioError
    from producer.simulation.scenario_file import builtin_scenarios

    found = builtin_scenarios()
    if name not in found:
        raise ScenarioError(f"no built-in scenario '{name}' (built-ins: {', '.join(found)})")
    click.echo(found[name], nl=False)


@click.command("simulate", cls=FlashsaleCommand)
@run_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output file: .avro (Avro container) or .jsonl (JSON lines).",
)
@ledger_option("Write the ground-truth ledger (JSON) here.")
@quiet_option("events written, the simulated clock and the rate; the summary stays")
@pass_settings
def simulate(
    settings: Settings, run: RunSpec, out: Path, ledger_path: Path | None, quiet: bool
) -> None:
    """Run a scenario without Kafka, as fast as the machine goes, into a file.

    Event time comes from the simulated clock, so ten simulated minutes take as long
    as the machine needs. Same scenario, seed and schema version give the same bytes.
    Ctrl-C (or SIGTERM) stops it; what was written is in the file and the ledger.

    \b
    Example:
      flashsale simulate --scenario flash-sale --seed 7 --duration 10m \\
          --out sale.avro --ledger sale-ledger.json
      flashsale simulate --events 1000 --out sample.jsonl --quiet
    """
    from producer.contract.catalog import load_catalog
    from producer.simulation.run import run_simulation

    catalog = load_catalog(settings.schemas_dir)
    scenario = run.scenario(catalog)
    started = time.monotonic()
    # A live display on a terminal, a plain line every 5 s elsewhere (a CI log).
    with (
        progress(simulate_line, quiet, view=simulate_view) as shown,
        stop_on_signals() as stop,
    ):
        result = run_simulation(
            scenario,
            run.seed,
            out,
            catalog,
            ledger_path=ledger_path,
            max_events=run.max_events,
            duration=run.duration,
            workers=run.workers,
            worker=run.worker,
            shards=run.shards,
            shard=run.shard,
            on_progress=None
            if shown is None
            else lambda events, second: shown((events, second, time.monotonic() - started)),
            # A display is redrawn about every second; a CI log's line comes every 5 s.
            progress_every=5_000 if isinstance(shown, Board) else 50_000,
            stop=stop,
            run_id=run.run_id,
        )
    rate = result.events / result.elapsed if result.elapsed > 0 else 0.0
    click.echo(
        f"{result.events} events ({result.seconds} simulated seconds of {scenario.name}, "
        f"seed {run.seed}, schema v{scenario.schema_version}, run {result.run_id}) -> {result.out} "
        f"in {result.elapsed:.1f}s ({rate:,.0f} events/s)"
    )
    if result.ledger:
        click.echo(f"ledger -> {result.ledger}")
