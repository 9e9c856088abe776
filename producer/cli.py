"""The ``flashsale`` command line: thin commands over the library.

Each command parses its options, calls one library function and prints. Library
errors (:class:`producer.errors.FlashsaleError`) become one line on stderr and the
error's exit code; nothing a user can cause ends in a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from producer.errors import FlashsaleError

SCHEMAS_DIR_ENV = "FLASHSALE_SCHEMAS_DIR"

# click >= 8.2 raises this for a group called without a command; older click exits itself.
_NoArgsIsHelp: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


@dataclass
class Settings:
    """What the global options say, handed to every command."""

    schemas_dir: Path


class FlashsaleGroup(click.Group):
    """The root group: every error, library or usage, ends as one line and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except FlashsaleError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except _NoArgsIsHelp as exc:  # a bare group: its help, as click shows it
            click.echo(exc.format_message())
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


pass_settings = click.make_pass_decorator(Settings)


def _schemas_dir(value: str | None) -> Path:
    from producer.schemas import bundled_schemas_dir

    return Path(value) if value else bundled_schemas_dir()


@click.group(cls=FlashsaleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--schemas-dir",
    envvar=SCHEMAS_DIR_ENV,
    type=click.Path(file_okay=False),
    help="Folder of <family>-v<N>.avsc files [default: the contract bundled with flashsale].",
    show_envvar=True,
)
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.version_option(package_name="flashsale")
@click.pass_context
def main(ctx: click.Context, schemas_dir: str | None, verbose: int) -> None:
    """Flash-sale traffic for Confluent-stack pipelines: Avro schemas, simulator, producer.

    \b
    Example:
      flashsale schemas list
      flashsale --schemas-dir ./pr-schemas schemas check
    """
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = Settings(schemas_dir=_schemas_dir(schemas_dir))


# --------------------------------------------------------------------------- schemas


@main.group()
def schemas() -> None:
    """The event contract: list, lint, check and diff the .avsc versions.

    \b
    Example:
      flashsale schemas validate && flashsale schemas check
    """


@schemas.command("list")
@pass_settings
def schemas_list(settings: Settings) -> None:
    """List every schema version with its fingerprint and the fields it added.

    \b
    Example:
      flashsale schemas list
    """
    from producer.contract import summarize
    from producer.schemas import load_catalog

    catalog = load_catalog(settings.schemas_dir)
    click.echo(f"schemas in {catalog.directory}")
    rows = [("family", "version", "fingerprint", "file", "fields added / removed")]
    for s in summarize(catalog):
        changes = [f"+{n}" for n in s.fields_added] + [f"-{n}" for n in s.fields_removed]
        if s.version == 1:
            changes = [f"{len(s.fields_added)} fields"] if s.fields_added else []
        rows.append((s.family, f"v{s.version}", s.fingerprint[:16], s.file, " ".join(changes)))
    _table(rows)


@schemas.command("validate")
@pass_settings
def schemas_validate(settings: Settings) -> None:
    """Lint every .avsc file: JSON, Avro rules (fastavro and Apache Avro), docs, names.

    Prints one line per problem and exits 1 if there is any.

    \b
    Example:
      flashsale schemas validate
      flashsale --schemas-dir consumers/contracts schemas validate
    """
    from producer.schemas import lint_schema_dir

    problems = lint_schema_dir(settings.schemas_dir)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"all schemas in {settings.schemas_dir} are valid")


@schemas.command("check")
@click.option(
    "--level",
    default="FULL_TRANSITIVE",
    show_default=True,
    help="NONE, BACKWARD, FORWARD or FULL, each optionally _TRANSITIVE.",
)
@click.option("--family", default=None, help="Check one schema family (default: every family).")
@pass_settings
def schemas_check(settings: Settings, level: str, family: str | None) -> None:
    """Check, offline, the newest version of each family against the earlier ones.

    Exits 0 when compatible, 1 when not (with the reasons).

    \b
    Example:
      flashsale schemas check
      flashsale schemas check --level BACKWARD
    """
    from producer.compat import CompatibilityLevel
    from producer.contract import check_latest
    from producer.schemas import load_catalog

    try:
        parsed_level = CompatibilityLevel.parse(level)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--level") from None
    catalog = load_catalog(settings.schemas_dir)
    families = [family] if family else sorted(catalog.families)
    failed = False
    for name in families:
        report = check_latest(catalog, name, parsed_level)
        if not report.checked_against:
            click.echo(f"{name} {report.new}: nothing to check against at {parsed_level.value}")
        elif report.compatible:
            against = ", ".join(report.checked_against)
            click.echo(f"{name} {report.new} is {parsed_level.value} compatible with {against}")
        else:
            failed = True
            click.echo(f"{name} {report.new} is NOT {parsed_level.value} compatible:")
            for message in report.messages():
                click.echo(f"  {message}")
    if failed:
        raise SystemExit(1)


@schemas.command("diff")
@click.argument("old", type=int)
@click.argument("new", type=int)
@click.option("--family", default="flash_sale_event", show_default=True, help="Schema family.")
@pass_settings
def schemas_diff(settings: Settings, old: int, new: int, family: str) -> None:
    """Show what changed between two versions and whether each reads the other's data.

    \b
    Example:
      flashsale schemas diff 1 2
    """
    from producer.contract import diff_versions
    from producer.schemas import load_catalog

    catalog = load_catalog(settings.schemas_dir)
    diff = diff_versions(catalog.get(old, family), catalog.get(new, family))
    click.echo(f"{family} {diff.old} -> {diff.new}")
    if not diff.changes:
        click.echo("  no field changes")
    for change in diff.changes:
        sign = {"added": "+", "removed": "-", "changed": "~"}[change.change]
        click.echo(f"  {sign} {change.name}: {change.detail}")
    for name, problems, what in (
        ("backward", diff.backward, f"{diff.new} reads {diff.old} data"),
        ("forward", diff.forward, f"{diff.old} reads {diff.new} data"),
    ):
        verdict = "compatible" if not problems else "INCOMPATIBLE"
        click.echo(f"{name}: {verdict} ({what})")
        for p in problems:
            click.echo(f"  {p}")
    click.echo(f"full: {'compatible' if diff.full else 'INCOMPATIBLE'}")


# --------------------------------------------------------------------------- scenarios


@main.group()
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
    from producer.scenario import builtin_scenarios, parse_scenario

    rows = [("name", "description")]
    for name, text in builtin_scenarios().items():
        rows.append((name, parse_scenario(text, name).description))
    _table(rows)


@scenarios.command("show")
@click.argument("name")
def scenarios_show(name: str) -> None:
    """Print a built-in scenario's YAML, to read or to copy and edit.

    \b
    Example:
      flashsale scenarios show default
    """
    from producer.scenario import ScenarioError, builtin_scenarios

    found = builtin_scenarios()
    if name not in found:
        raise ScenarioError(f"no built-in scenario '{name}' (built-ins: {', '.join(found)})")
    click.echo(found[name], nl=False)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from producer.scenario import ScenarioError, parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value, f"--{param.name}")
    except ScenarioError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1]) from None


@main.command("simulate")
@click.option(
    "--scenario",
    "scenario_name",
    default="default",
    show_default=True,
    help="A built-in scenario name or a YAML file.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the run.")
@click.option("--events", "max_events", type=click.IntRange(min=0), help="Stop after N events.")
@click.option(
    "--duration", callback=_duration, help="Stop after this much simulated time (600s, 10m)."
)
@click.option(
    "--schema-version", type=int, help="Schema version to emit [default: the scenario's]."
)
@click.option("--rate-multiplier", type=float, help="Scale every rate of the timeline.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Split the users over N processes...",
)
@click.option(
    "--worker",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="...and emit the events of share I (0-based).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output file: .avro (Avro container) or .jsonl (JSON lines).",
)
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the ground-truth ledger (JSON) here.",
)
@pass_settings
def simulate(
    settings: Settings,
    scenario_name: str,
    seed: int,
    max_events: int | None,
    duration: float | None,
    schema_version: int | None,
    rate_multiplier: float | None,
    workers: int,
    worker: int,
    out: Path,
    ledger: Path | None,
) -> None:
    """Run a scenario without Kafka, as fast as the machine goes, into a file.

    Event time comes from the simulated clock, so ten simulated minutes take as long
    as the machine needs. Same scenario, seed and schema version give the same bytes.

    \b
    Example:
      flashsale simulate --scenario flash-sale --seed 7 --duration 10m \\
          --out sale.avro --ledger sale-ledger.json
      flashsale simulate --events 1000 --out sample.jsonl
    """
    from producer.scenario import load_scenario
    from producer.schemas import load_catalog
    from producer.simulate import run_simulation

    scenario = load_scenario(scenario_name).with_overrides(
        schema_version=schema_version, rate_multiplier=rate_multiplier
    )
    catalog = load_catalog(settings.schemas_dir)

    def progress(events: int, seconds: int) -> None:
        click.echo(f"\r{events:,} events, {seconds:,} simulated s", err=True, nl=False)

    result = run_simulation(
        scenario,
        seed,
        out,
        catalog,
        ledger_path=ledger,
        max_events=max_events,
        duration=duration,
        workers=workers,
        worker=worker,
        on_progress=progress if sys.stderr.isatty() else None,
    )
    if sys.stderr.isatty():
        click.echo("", err=True)
    rate = result.events / result.elapsed if result.elapsed > 0 else 0.0
    click.echo(
        f"{result.events} events ({result.seconds} simulated seconds of {scenario.name}, "
        f"seed {seed}, schema v{scenario.schema_version}) -> {result.out} "
        f"in {result.elapsed:.1f}s ({rate:,.0f} events/s)"
    )
    if result.ledger:
        click.echo(f"ledger -> {result.ledger}")


# --------------------------------------------------------------------------- local


@main.group()
def local() -> None:
    """A local stack without Docker: Tansu broker (in memory) and a Schema Registry.

    \b
    Example:
      flashsale local up && flashsale schemas list
      flashsale local down
    """


def _data_dir_option(f: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=".flashsale",
        show_default=True,
        help="Where pid files, logs and the registry's database live.",
    )(f)


def _print_status(statuses: Sequence[Any]) -> None:
    rows = [("service", "address", "state", "pid", "storage")]
    for s in statuses:
        rows.append((s.name, s.address, s.state, str(s.pid or "-"), s.note))
    _table(rows)


@local.command("up")
@_data_dir_option
@click.option("--broker-port", type=click.IntRange(1, 65535), default=9092, show_default=True)
@click.option("--registry-port", type=click.IntRange(1, 65535), default=8081, show_default=True)
@click.option(
    "--partitions",
    type=click.IntRange(1, 1000),
    default=6,
    show_default=True,
    help="Partitions of the flash_sale_events topic created on start.",
)
def local_up(data_dir: Path, broker_port: int, registry_port: int, partitions: int) -> None:
    """Start the broker and the registry in the background and wait until both answer.

    Idempotent: what already runs is reported, not started twice. Several stacks run
    side by side with different --data-dir and ports.

    \b
    Example:
      flashsale local up
      flashsale local up --data-dir /tmp/stack2 --broker-port 19092 --registry-port 18081
    """
    from devstack.stack import LocalStack, StackConfig

    stack = LocalStack(
        StackConfig(
            data_dir=data_dir,
            broker_port=broker_port,
            registry_port=registry_port,
            partitions=partitions,
        )
    )
    started: list[str] = []
    statuses = stack.up(on_progress=started.append)
    for line in started:
        click.echo(line)
    if not started:
        click.echo("already running")
    _print_status(statuses)
    broker, registry = statuses
    click.echo(f"bootstrap.servers={broker.address}")
    click.echo(f"schema.registry.url={registry.address}")


@local.command("status")
@_data_dir_option
def local_status(data_dir: Path) -> None:
    """Show each service of the local stack with its address, health and storage.

    Exits 0 when both are healthy, 1 otherwise.

    \b
    Example:
      flashsale local status
    """
    from devstack.stack import LocalStack, StackConfig

    statuses = LocalStack(StackConfig(data_dir=data_dir)).status()
    _print_status(statuses)
    if not all(s.healthy for s in statuses):
        raise SystemExit(1)


@local.command("down")
@_data_dir_option
def local_down(data_dir: Path) -> None:
    """Stop the processes that `flashsale local up` started from this data dir.

    \b
    Example:
      flashsale local down
    """
    from devstack.stack import LocalStack, StackConfig

    stopped = LocalStack(StackConfig(data_dir=data_dir)).down()
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":  # pragma: no cover
    main()
