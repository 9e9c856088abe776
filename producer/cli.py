"""The ``flashsale`` command line: thin commands over the library.

Each command parses its options, calls one library function and prints. Library
errors (:class:`producer.errors.FlashsaleError`) become one line on stderr and the
error's exit code; nothing a user can cause ends in a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from consumers.errors import PipelineError
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
        except (FlashsaleError, PipelineError) as exc:
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
    # librdkafka retries and reconnects on its own and says so at length; its lines
    # show with -v, while the failures that matter reach the user as one clear line.
    logging.getLogger("flashsale.librdkafka").setLevel(
        logging.CRITICAL if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    )
    ctx.obj = Settings(schemas_dir=_schemas_dir(schemas_dir))


# --------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class Connection:
    """The connection flags of one command; :meth:`config` merges them with env and file."""

    bootstrap_servers: str | None
    schema_registry_url: str | None
    config_file: Path | None
    show_config: bool

    def config(self, extra: dict[str, str] | None = None) -> Any:
        from producer.config import describe, load_client_config

        config = load_client_config(
            flags={
                "bootstrap.servers": self.bootstrap_servers,
                "schema.registry.url": self.schema_registry_url,
                **(extra or {}),
            },
            properties_file=self.config_file,
        )
        if self.show_config:
            for line in describe(config):
                click.echo(line, err=True)
        return config


def connection_options(f: Any) -> Any:
    """--bootstrap-servers, --schema-registry-url, --config and --show-config, declared
    once; the command receives them as one ``connection: Connection``."""

    @functools.wraps(f)
    def command(
        *args: Any,
        bootstrap_servers: str | None,
        schema_registry_url: str | None,
        config_file: Path | None,
        show_config: bool,
        **kwargs: Any,
    ) -> Any:
        connection = Connection(bootstrap_servers, schema_registry_url, config_file, show_config)
        return f(*args, connection=connection, **kwargs)

    for option in (
        click.option(
            "--show-config",
            is_flag=True,
            help="Print the merged client configuration (secrets masked) and where each "
            "key came from.",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A client.properties file (as Confluent Cloud hands out).",
        ),
        click.option(
            "--schema-registry-url",
            help="Schema Registry URL [env FLASHSALE_SCHEMA_REGISTRY_URL; "
            "default http://localhost:8081].",
        ),
        click.option(
            "--bootstrap-servers",
            help="Kafka bootstrap servers [env FLASHSALE_BOOTSTRAP_SERVERS; "
            "default localhost:9092].",
        ),
    ):
        command = option(command)
    return command


def _key_values(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got '{item}'")
        out[key.strip()] = value.strip()
    return out


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
    help="NONE, BACKWARD, FORWARD or FULL, each optionally _TRANSITIVE (offline check).",
)
@click.option("--family", default=None, help="Check one schema family (default: every family).")
@click.option(
    "--against-registry",
    is_flag=True,
    help="Check the newest local version against the registry's subject, at its level.",
)
@click.option(
    "--topic",
    default="flash_sale_events",
    show_default=True,
    help="With --against-registry: the subject is <topic>-value.",
)
@click.option("--subject", help="With --against-registry: the subject [default: <topic>-value].")
@connection_options
@pass_settings
def schemas_check(
    settings: Settings,
    level: str,
    family: str | None,
    against_registry: bool,
    topic: str,
    subject: str | None,
    connection: Connection,
) -> None:
    """Check the newest version of each family against the earlier ones (offline), or
    against the registry.

    Exits 0 when compatible, 1 when not (with the reasons), 2 when it could not check.

    \b
    Example:
      flashsale schemas check
      flashsale schemas check --level BACKWARD
      flashsale schemas check --against-registry --schema-registry-url http://localhost:8081
    """
    from producer.compat import CompatibilityLevel
    from producer.contract import check_latest
    from producer.schemas import load_catalog

    catalog = load_catalog(settings.schemas_dir)
    if against_registry:
        _check_against_registry(
            catalog,
            subject or f"{topic}-value",
            connection.config(),
        )
        return
    try:
        parsed_level = CompatibilityLevel.parse(level)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--level") from None
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


def _check_against_registry(catalog: Any, subject: str, config: Any) -> None:
    from producer.errors import FlashsaleError
    from producer.registry import Registry, RegistryError, check_against_registry

    try:
        result = check_against_registry(Registry(config), catalog, subject)
    except RegistryError as exc:
        error = FlashsaleError(f"could not check: {exc}")
        error.exit_code = 2
        raise error from exc
    if not result.subject_exists:
        click.echo(f"{result.local}: {subject} has no versions yet; the first registration is free")
    elif result.compatible:
        click.echo(f"{result.local} is compatible with {subject} at {result.level.value}")
    else:
        click.echo(f"{result.local} is NOT compatible with {subject} at {result.level.value}:")
        for reason in result.reasons:
            click.echo(f"  {reason}")
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


@dataclass(frozen=True)
class RunSpec:
    """What a run of the simulator is: scenario, seed, overrides, bounds and share."""

    scenario_name: str
    seed: int
    schema_version: int | None
    rate_multiplier: float | None
    max_events: int | None
    duration: float | None
    workers: int
    worker: int

    def scenario(self) -> Any:
        from producer.scenario import load_scenario

        return load_scenario(self.scenario_name).with_overrides(
            schema_version=self.schema_version, rate_multiplier=self.rate_multiplier
        )


def run_options(f: Any) -> Any:
    """The simulator's options, declared once for simulate and produce; the command
    receives them as one ``run: RunSpec``."""

    @functools.wraps(f)
    def command(
        *args: Any,
        scenario_name: str,
        seed: int,
        schema_version: int | None,
        rate_multiplier: float | None,
        max_events: int | None,
        duration: float | None,
        workers: int,
        worker: int,
        **kwargs: Any,
    ) -> Any:
        run = RunSpec(
            scenario_name,
            seed,
            schema_version,
            rate_multiplier,
            max_events,
            duration,
            workers,
            worker,
        )
        return f(*args, run=run, **kwargs)

    for option in (
        click.option(
            "--worker",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="...and emit the events of share I (0-based).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Split the users over N processes...",
        ),
        click.option("--rate-multiplier", type=float, help="Scale every rate of the timeline."),
        click.option(
            "--schema-version", type=int, help="Schema version to emit [default: the scenario's]."
        ),
        click.option(
            "--duration", callback=_duration, help="Stop after this much simulated time (10m)."
        ),
        click.option(
            "--events", "max_events", type=click.IntRange(min=0), help="Stop after N events."
        ),
        click.option("--seed", type=int, default=1, show_default=True, help="Random seed."),
        click.option(
            "--scenario",
            "scenario_name",
            default="default",
            show_default=True,
            help="A built-in scenario name or a YAML file.",
        ),
    ):
        command = option(command)
    return command


@main.command("simulate")
@run_options
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
def simulate(settings: Settings, run: RunSpec, out: Path, ledger: Path | None) -> None:
    """Run a scenario without Kafka, as fast as the machine goes, into a file.

    Event time comes from the simulated clock, so ten simulated minutes take as long
    as the machine needs. Same scenario, seed and schema version give the same bytes.

    \b
    Example:
      flashsale simulate --scenario flash-sale --seed 7 --duration 10m \\
          --out sale.avro --ledger sale-ledger.json
      flashsale simulate --events 1000 --out sample.jsonl
    """
    from producer.schemas import load_catalog
    from producer.simulate import run_simulation

    scenario = run.scenario()
    catalog = load_catalog(settings.schemas_dir)

    def progress(events: int, seconds: int) -> None:
        click.echo(f"\r{events:,} events, {seconds:,} simulated s", err=True, nl=False)

    result = run_simulation(
        scenario,
        run.seed,
        out,
        catalog,
        ledger_path=ledger,
        max_events=run.max_events,
        duration=run.duration,
        workers=run.workers,
        worker=run.worker,
        on_progress=progress if sys.stderr.isatty() else None,
    )
    if sys.stderr.isatty():
        click.echo("", err=True)
    rate = result.events / result.elapsed if result.elapsed > 0 else 0.0
    click.echo(
        f"{result.events} events ({result.seconds} simulated seconds of {scenario.name}, "
        f"seed {run.seed}, schema v{scenario.schema_version}) -> {result.out} "
        f"in {result.elapsed:.1f}s ({rate:,.0f} events/s)"
    )
    if result.ledger:
        click.echo(f"ledger -> {result.ledger}")


@schemas.command("register")
@click.option("--version", "version", type=int, help="Register only this event version.")
@click.option("--all", "all_versions", is_flag=True, help="Register every version (the default).")
@click.option(
    "--topic",
    default="flash_sale_events",
    show_default=True,
    help="Subjects are <topic>-value and <topic>-key.",
)
@click.option("--subject", help="Value subject [default: <topic>-value].")
@click.option(
    "--level",
    default="FULL_TRANSITIVE",
    show_default=True,
    help="Compatibility level set on each subject before its first registration.",
)
@click.option("--dry-run", is_flag=True, help="Check everything, register nothing.")
@connection_options
@pass_settings
def schemas_register(
    settings: Settings,
    version: int | None,
    all_versions: bool,
    topic: str,
    subject: str | None,
    level: str,
    dry_run: bool,
    connection: Connection,
) -> None:
    """Register the key schema and the event versions, oldest first.

    Idempotent: what is registered already is reported with its id and version. An
    incompatible version is refused with the registry's reasons.

    \b
    Example:
      flashsale schemas register --all
      flashsale schemas register --version 2 --schema-registry-url http://localhost:8081
    """
    from producer.compat import CompatibilityLevel
    from producer.registry import Registry, register_contract
    from producer.schemas import load_catalog

    if version is not None and all_versions:
        raise click.UsageError("--version and --all exclude each other")
    try:
        parsed_level = CompatibilityLevel.parse(level)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--level") from None
    config = connection.config()
    catalog = load_catalog(settings.schemas_dir)

    def report(step: Any) -> None:
        where = f"id {step.schema_id}, version {step.registry_version}"
        name = f"{step.family} v{step.version}"
        if step.action == "would register":
            click.echo(f"{step.subject}: would register {name}")
        else:
            click.echo(f"{step.subject}: {name} {step.action} as {where}")

    register_contract(
        Registry(config),
        catalog,
        topic=topic,
        version=version,
        value_subject_name=subject,
        level=parsed_level,
        dry_run=dry_run,
        on_step=report,
    )


@schemas.command("status")
@click.option("--topic", default="flash_sale_events", show_default=True)
@connection_options
@pass_settings
def schemas_status(
    settings: Settings,
    topic: str,
    connection: Connection,
) -> None:
    """Local versions and registered versions side by side, matched by fingerprint.

    Exits 1 when anything is out of sync.

    \b
    Example:
      flashsale schemas status
    """
    from producer.registry import Registry, schema_status
    from producer.schemas import load_catalog

    config = connection.config()
    rows = schema_status(Registry(config), load_catalog(settings.schemas_dir), topic)
    _table(
        [("subject", "local", "registered", "state")]
        + [(r.subject, r.local or "-", r.registered or "-", r.state) for r in rows]
    )
    if any(r.state != "in sync" for r in rows):
        raise SystemExit(1)


@schemas.command("pull")
@click.option("--topic", default="flash_sale_events", show_default=True)
@click.option("--subject", help="Pull one subject [default: <topic>-value and <topic>-key].")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write <family>-v<N>.avsc files into.",
)
@connection_options
def schemas_pull(
    topic: str,
    subject: str | None,
    out: Path,
    connection: Connection,
) -> None:
    """Download every registered version as .avsc files.

    \b
    Example:
      flashsale schemas pull --out pulled/ && flashsale --schemas-dir pulled schemas list
    """
    from producer.registry import Registry, pull

    registry = Registry(connection.config())
    if subject:
        pairs = [(subject, subject.replace("-", "_"))]
    else:
        pairs = [(f"{topic}-key", "flash_sale_key"), (f"{topic}-value", "flash_sale_event")]
    for name, family in pairs:
        for path in pull(registry, name, family, out):
            click.echo(f"{name} -> {path}")


@schemas.group("compat")
def schemas_compat() -> None:
    """Read or set a compatibility level in the registry.

    \b
    Example:
      flashsale schemas compat get --subject flash_sale_events-value
      flashsale schemas compat set FULL_TRANSITIVE --subject flash_sale_events-value
    """


@schemas_compat.command("get")
@click.option("--subject", help="A subject [default: the global level].")
@connection_options
def schemas_compat_get(
    subject: str | None,
    connection: Connection,
) -> None:
    """Print the subject's compatibility level (or the global one).

    \b
    Example:
      flashsale schemas compat get --subject flash_sale_events-value
    """
    from producer.registry import Registry

    registry = Registry(connection.config())
    click.echo((registry.level(subject) if subject else registry.global_level()).value)


@schemas_compat.command("set")
@click.argument("level")
@click.option("--subject", help="A subject [default: the global level].")
@connection_options
def schemas_compat_set(
    level: str,
    subject: str | None,
    connection: Connection,
) -> None:
    """Set the compatibility level of a subject (or the global one).

    \b
    Example:
      flashsale schemas compat set FULL_TRANSITIVE --subject flash_sale_events-value
    """
    from producer.compat import CompatibilityLevel
    from producer.registry import Registry

    try:
        parsed = CompatibilityLevel.parse(level)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="LEVEL") from None
    registry = Registry(connection.config())
    registry.set_level(subject, parsed)
    click.echo(f"{subject or 'global'}: {parsed.value}")


# --------------------------------------------------------------------------- contract


@main.group()
def contract() -> None:
    """Consumer contracts: prove every reader schema reads every writer version.

    \b
    Example:
      flashsale contract verify
    """


def _default_readers() -> list[Path]:
    folder = Path(__file__).resolve().parent.parent / "consumers" / "contracts"
    return sorted(folder.glob("*.avsc")) if folder.is_dir() else []


@contract.command("verify")
@click.option(
    "--reader",
    "readers",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A reader schema (repeatable) [default: consumers/contracts/*.avsc].",
)
@click.option(
    "--against",
    type=click.Choice(["local", "registry"]),
    default="local",
    show_default=True,
    help="Writers: the local schema files, or the registered versions.",
)
@click.option("--topic", default="flash_sale_events", show_default=True)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "junit"]),
    default="table",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report here instead of stdout.",
)
@connection_options
@pass_settings
def contract_verify(
    settings: Settings,
    readers: tuple[Path, ...],
    against: str,
    topic: str,
    output_format: str,
    out: Path | None,
    connection: Connection,
) -> None:
    """Check every (writer version x reader) pair with Avro resolution and with data.

    Exits 1 on any failure, naming the pair, the field and the reason.

    \b
    Example:
      flashsale contract verify
      flashsale contract verify --reader my-job.avsc --against registry --format junit --out c.xml
    """
    from producer.contracts import load_reader, verify_contracts, writer_from_text
    from producer.errors import UsageError
    from producer.schemas import EVENT_FAMILY, load_catalog

    paths = list(readers) or _default_readers()
    if not paths:
        raise UsageError("no reader schemas: give --reader FILE (consumers/contracts is absent)")
    reader_list = [load_reader(p) for p in paths]
    if against == "local":
        catalog = load_catalog(settings.schemas_dir)
        writers = [
            writer_from_text(s.label, s.text, s.path) for s in catalog.versions(EVENT_FAMILY)
        ]
    else:
        from producer.registry import Registry, registered_texts

        registry = Registry(connection.config())
        texts = registered_texts(registry, f"{topic}-value")
        if not texts:
            raise UsageError(f"{topic}-value has no registered versions at {registry.url}")
        writers = [
            writer_from_text(f"registry v{t.version}", t.text, f"{t.subject} v{t.version}")
            for t in texts
        ]
    report = verify_contracts(writers, reader_list)
    if output_format == "json":
        text = json.dumps(report.to_json(), indent=2) + "\n"
    elif output_format == "junit":
        text = report.to_junit() + "\n"
    else:
        rows = [("writer \\ reader", *report.readers)]
        for w in report.writers:
            rows.append((w, *(report.verdict(w, r).status for r in report.readers)))
        lines = []
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        for v in report.verdicts:
            for problem in v.problems:
                lines.append(f"FAIL writer {v.writer} x reader {v.reader}: {problem}")
        verdict = "all pairs pass" if report.ok else "contract verification FAILED"
        lines.append(f"{verdict} ({len(report.verdicts)} pairs)")
        text = "\n".join(lines) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
        click.echo(f"{'ok' if report.ok else 'FAILED'}: report written to {out}")
    else:
        click.echo(text, nl=False)
    if not report.ok:
        raise SystemExit(1)


# --------------------------------------------------------------------------- produce


@main.command("produce")
@run_options
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per wall second.",
)
@click.option(
    "--max-rate", is_flag=True, help="Ignore the clock: as fast as the broker takes them."
)
@click.option("--topic", default="flash_sale_events", show_default=True)
@click.option("--create-topic", is_flag=True, help="Create the topic if it is missing.")
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Partitions for --create-topic.",
)
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the ledger of acknowledged events (JSON) here.",
)
@click.option(
    "--switch-to-version",
    type=int,
    help="Switch the value schema to this version mid-run (a rolling upgrade)...",
)
@click.option("--switch-at", callback=_duration, help="...at this simulated time (3m).")
@click.option("--dry-run", is_flag=True, help="Serialize for real, send nothing, print a sample.")
@click.option("--quiet", is_flag=True, help="No live line, only the summary.")
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to reach the broker and the registry before giving up.",
)
@click.option(
    "--flush-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for outstanding acknowledgements at the end.",
)
@click.option(
    "-X",
    "--producer-config",
    "producer_overrides",
    multiple=True,
    callback=_key_values,
    help="librdkafka producer setting key=value (repeatable).",
)
@connection_options
@pass_settings
def produce(
    settings: Settings,
    run: RunSpec,
    speed: float,
    max_rate: bool,
    topic: str,
    create_topic: bool,
    partitions: int,
    ledger: Path | None,
    switch_to_version: int | None,
    switch_at: float | None,
    dry_run: bool,
    quiet: bool,
    connect_timeout: float,
    flush_timeout: float,
    producer_overrides: dict[str, str],
    connection: Connection,
) -> None:
    """Stream a scenario into Kafka as Avro records registered in Schema Registry.

    Exits 0 only if every record was acknowledged. Ctrl-C (or SIGTERM) stops
    generating, flushes, writes the ledger of what was acknowledged and reports the rest.

    \b
    Example:
      flashsale schemas register --all
      flashsale produce --scenario flash-sale --speed 10 --duration 10m --ledger ledger.json
      flashsale produce --events 100000 --max-rate --config client.properties
      flashsale produce --schema-version 1 --switch-to-version 2 --switch-at 3m
    """
    from producer.errors import UsageError
    from producer.schemas import load_catalog
    from producer.stream import ProduceOptions, StreamProducer

    if (switch_to_version is None) != (switch_at is None):
        raise UsageError("--switch-to-version and --switch-at go together")
    config = connection.config(producer_overrides)
    scenario = run.scenario()
    options = ProduceOptions(
        topic=topic,
        max_events=run.max_events,
        duration=run.duration,
        speed=None if max_rate else speed,
        create_topic=create_topic,
        partitions=partitions,
        ledger_path=ledger,
        workers=run.workers,
        worker=run.worker,
        connect_timeout=connect_timeout,
        flush_timeout=flush_timeout,
        switch_at=switch_at,
        switch_version=switch_to_version,
    )
    catalog = load_catalog(settings.schemas_dir)
    stream = StreamProducer(config, catalog, scenario, run.seed, options)
    if dry_run:
        from producer.sinks import event_json

        stream.preflight(need_broker=False)
        for event, key, value in stream.sample():
            click.echo(json.dumps(event_json(event, scenario.schema_version)))
            click.echo(f"  key {key.hex()}  value {len(value)} bytes: {value[:24].hex()}...")
        click.echo("dry run: serialized with the registered schema, sent nothing")
        return
    stream.preflight()
    live = not quiet and sys.stderr.isatty()
    result = _run_until_signalled(stream, live)
    _produce_summary(result, topic, quiet)
    if not result.ok:
        raise SystemExit(1)


def _run_until_signalled(stream: Any, live: bool) -> Any:
    import signal
    import threading

    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:

        def show(p: Any) -> None:
            target = "max" if p.target_rate == float("inf") else f"{p.target_rate:,.0f}/s"
            latency = (
                f"p50 {p.p50_ms:.1f} ms p99 {p.p99_ms:.1f} ms" if p.p50_ms is not None else "-"
            )
            click.echo(
                f"\r{p.phase:<10} target {target:>9} achieved {p.achieved_rate:>9,.0f}/s  "
                f"sent {p.sent:,} acked {p.acked:,} failed {p.failed:,} in-flight "
                f"{p.in_flight:,}  {latency}   ",
                err=True,
                nl=False,
            )

        result = stream.run(stop=stop, on_progress=show if live else None)
        if live:
            click.echo("", err=True)
        return result
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _produce_summary(result: Any, topic: str, quiet: bool) -> None:
    rate = result.acked / result.elapsed if result.elapsed > 0 else 0.0
    p50, p99 = result.percentile(0.5), result.percentile(0.99)
    rows = [
        ("topic", topic),
        (
            "schema id",
            str(result.schema_id)
            + (f", then {result.switched_schema_id}" if result.switched_schema_id else ""),
        ),
        ("sent", f"{result.sent}"),
        ("acknowledged", f"{result.acked}"),
        ("failed", f"{result.failed}" + (f" {dict(result.errors)}" if result.errors else "")),
        ("unconfirmed", f"{result.unconfirmed}"),
        ("elapsed", f"{result.elapsed:.1f}s ({rate:,.0f} acked/s)"),
        ("delivery latency", "-" if p50 is None else f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"),
    ]
    if result.ledger_path is not None:
        rows.append(("ledger", str(result.ledger_path)))
    if result.interrupted:
        rows.append(("interrupted", "yes: generation stopped, outstanding records flushed"))
    _table([(k, v) for k, v in rows])
    if not result.ok:
        click.echo(f"Error: {result.lost} of {result.sent} records were not acknowledged", err=True)


# --------------------------------------------------------------------------- consume


@main.command("consume")
@click.option("--topic", default="flash_sale_events", show_default=True)
@click.option(
    "--group", help="Consumer group (commits offsets) [default: a fresh one, no commits]."
)
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset.")
@click.option("--max", "max_records", type=click.IntRange(min=1), help="Stop after N records.")
@click.option(
    "--idle-timeout",
    callback=_duration,
    help="Stop after this long without a record (10s) [default: run until Ctrl-C].",
)
@click.option(
    "--reader-schema",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Decode with this reader schema (Avro schema resolution).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "table"]),
    default="json",
    show_default=True,
)
@click.option("--show-schema-id", is_flag=True, help="Print each record's writer schema id.")
@click.option("--connect-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@connection_options
def consume_cmd(
    topic: str,
    group: str | None,
    from_beginning: bool,
    max_records: int | None,
    idle_timeout: float | None,
    reader_schema: Path | None,
    output_format: str,
    show_schema_id: bool,
    connect_timeout: float,
    connection: Connection,
) -> None:
    """Read the topic back as JSON lines (decimals and times exact) or a table.

    \b
    Example:
      flashsale consume --from-beginning --max 10
      flashsale consume --from-beginning --reader-schema schemas/flash_sale_event-v1.avsc
    """
    import signal
    import threading

    from producer.consume import ConsumeOptions, consume, json_value

    config = connection.config()
    options = ConsumeOptions(
        topic=topic,
        group=group,
        from_beginning=from_beginning,
        max_records=max_records,
        idle_timeout=idle_timeout,
        reader_schema=reader_schema,
        connect_timeout=connect_timeout,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    columns = ("event_type", "user_id", "product_id", "quantity", "price", "revenue", "timestamp")
    if output_format == "table":
        click.echo(
            "  ".join(
                ("partition", "offset", *(("schema_id",) if show_schema_id else ()), *columns)
            )
        )
    for record in consume(config, options, stop):
        if record.error is not None:
            click.echo(
                f"partition {record.partition} offset {record.offset}: {record.error}", err=True
            )
            continue
        value = json_value(record.value)
        if output_format == "json":
            line: dict[str, Any] = {}
            if show_schema_id:
                line["_schema_id"] = record.schema_id
            line.update(value)
            click.echo(json.dumps(line, separators=(",", ":")))
        else:
            cells = [str(record.partition), str(record.offset)]
            if show_schema_id:
                cells.append(str(record.schema_id))
            cells += [str(value.get(c, "")) for c in columns]
            click.echo("  ".join(cells))


# --------------------------------------------------------------------------- pipeline


@main.group()
def pipeline() -> None:
    """The reference Bronze -> Silver -> Gold pipeline (Delta Lake, no JVM).

    \b
    Example:
      flashsale pipeline run --until-idle --warehouse warehouse/
    """


@pipeline.command("run")
@click.option(
    "--until-idle", is_flag=True, help="Stop once the topic is drained [default: follow]."
)
@click.option(
    "--interval",
    callback=_duration,
    default="5s",
    show_default=True,
    help="When following: pause between rounds.",
)
@click.option(
    "--warehouse",
    type=click.Path(file_okay=False, path_type=Path),
    default="warehouse",
    show_default=True,
    help="Where the Delta tables live.",
)
@click.option("--topic", default="flash_sale_events", show_default=True)
@click.option(
    "--reader-schema",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Silver's reader schema [default: consumers/contracts/silver.avsc].",
)
@click.option(
    "--engine",
    type=click.Choice(["datafusion", "duckdb"]),
    default="datafusion",
    show_default=True,
    help="Embedded engine for the Gold SQL.",
)
@connection_options
def pipeline_run(
    until_idle: bool,
    interval: float,
    warehouse: Path,
    topic: str,
    reader_schema: Path | None,
    engine: str,
    connection: Connection,
) -> None:
    """Ingest the topic into Bronze, decode into Silver, compute the Gold KPI tables.

    \b
    Example:
      flashsale pipeline run --until-idle
      flashsale pipeline run --warehouse /data/flash --interval 10s
    """
    import time

    from consumers.pipeline import run_pipeline
    from consumers.silver import CONTRACT

    config = connection.config()
    while True:
        result = run_pipeline(
            config.kafka(),
            config.registry(),
            topic,
            warehouse,
            reader_schema=reader_schema or CONTRACT,
            engine=engine,
            on_step=click.echo,
        )
        click.echo(f"pipeline: {result.bronze.records} records in {result.elapsed:.1f}s")
        if until_idle:
            return
        time.sleep(interval)


@main.command("kpis")
@click.option(
    "--warehouse",
    type=click.Path(file_okay=False, path_type=Path),
    default="warehouse",
    show_default=True,
)
@click.option(
    "--verify-ledger",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Reconcile every KPI with this ledger; exit 1 on any difference.",
)
@click.option(
    "--engine", type=click.Choice(["datafusion", "duckdb"]), default="datafusion", show_default=True
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Rows of the top-products table.",
)
def kpis_cmd(warehouse: Path, verify_ledger: Path | None, engine: str, top: int) -> None:
    """Print the Gold KPI tables; with a ledger, reconcile them exactly.

    \b
    Example:
      flashsale kpis
      flashsale kpis --verify-ledger ledger.json
    """
    from consumers.gold import compute_kpis

    kpis = compute_kpis(warehouse, engine)
    _print_kpis(kpis, top)
    if verify_ledger is not None:
        _verify(kpis, verify_ledger)


def _print_kpis(kpis: dict[str, Any], top: int) -> None:
    import pyarrow.compute as pc

    def show(title: str, table: Any, limit: int | None = None) -> None:
        rows = table.to_pylist()[:limit] if limit else table.to_pylist()
        click.echo(f"\n{title}")
        if not rows:
            click.echo("  (none)")
            return
        columns = list(rows[0])
        cells = [tuple(columns)] + [tuple(_cell(r[c]) for c in columns) for r in rows]
        _table(cells)

    show("revenue per minute", kpis["revenue_per_minute"])
    show("funnel per category", kpis["funnel_per_category"])
    show(f"top {top} products", kpis["product_sales"], top)
    show("sold-out moments", kpis["sold_out"])
    spikes = (
        kpis["spikes"].filter(pc.equal(kpis["spikes"]["is_spike"], 1))
        if kpis["spikes"].num_rows
        else kpis["spikes"]
    )
    show("spikes (z-score >= 3 against the previous 10 minutes)", spikes)
    click.echo("\nevents per minute")
    per_minute = kpis["revenue_per_minute"].to_pylist()
    peak = max((r["events"] for r in per_minute), default=0)
    for r in per_minute:
        bar = "#" * (round(40 * r["events"] / peak) if peak else 0)
        click.echo(f"  {r['minute']:%H:%M} {bar:<40} {r['events']:,}")


def _cell(value: Any) -> str:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _verify(kpis: dict[str, Any], ledger_path: Path) -> None:
    from consumers.reconcile import reconcile
    from producer.errors import UsageError

    try:
        ledger = json.loads(ledger_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--verify-ledger {ledger_path}: cannot read: {exc}") from exc
    problems = reconcile(ledger, kpis)
    if problems:
        for problem in problems:
            click.echo(f"DIFFERENCE {problem}", err=True)
        click.echo(f"Error: {len(problems)} KPI differences from the ledger", err=True)
        raise SystemExit(1)
    click.echo(
        f"reconciled: every KPI equals the ledger ({ledger['total_events']} events, "
        f"revenue {ledger['total_revenue']})"
    )


@main.command("demo")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".flashsale",
    show_default=True,
    help="The local stack's data dir; the demo's warehouse and ledger go under it.",
)
@click.option("--broker-port", type=click.IntRange(1, 65535), default=9092, show_default=True)
@click.option("--registry-port", type=click.IntRange(1, 65535), default=8081, show_default=True)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Simulated seconds per wall second.",
)
@click.option(
    "--duration",
    callback=_duration,
    default="6m",
    show_default=True,
    help="Simulated length of the sale.",
)
@click.option("--seed", type=int, default=2026, show_default=True)
@pass_settings
def demo(
    settings: Settings,
    data_dir: Path,
    broker_port: int,
    registry_port: int,
    speed: float,
    duration: float,
    seed: int,
) -> None:
    """The whole flow on this machine: stack, schemas, a flash sale, pipeline, KPIs.

    Starts the local stack, registers the schemas, produces the flash-sale scenario
    (schema v1 first, switching to the newest halfway, as a rolling upgrade would),
    runs the pipeline until the topic is drained, prints the KPIs with a chart of
    events per minute, and reconciles every KPI with the producer's ledger.

    \b
    Example:
      flashsale demo
      flashsale demo --data-dir /tmp/demo --broker-port 19092 --registry-port 18081
    """
    from producer.demo import Demo
    from producer.schemas import load_catalog

    demo = Demo(
        data_dir=data_dir,
        catalog=load_catalog(settings.schemas_dir),
        broker_port=broker_port,
        registry_port=registry_port,
        speed=speed,
        duration=duration,
        seed=seed,
    )
    click.echo(f"1/5 local stack in {data_dir}")
    demo.start_stack(on_progress=lambda line: click.echo(f"    {line}"))
    click.echo(f"2/5 schemas registered under {demo.topic}-key and {demo.topic}-value")
    demo.register()
    click.echo(
        f"3/5 producing {duration / 60:g} simulated minutes of the flash-sale scenario at "
        f"{speed:g}x, schema v1 switching to v{demo.newest} at {duration / 120:g} min"
    )
    result = _run_until_signalled(demo.stream(), live=sys.stderr.isatty())
    _produce_summary(result, demo.topic, quiet=False)
    if not result.ok:
        raise SystemExit(1)
    click.echo(f"4/5 pipeline into {demo.warehouse}")
    outcome = demo.pipeline(on_step=click.echo)
    click.echo("5/5 KPIs")
    _print_kpis(outcome.kpis, 10)
    _verify(outcome.kpis, demo.ledger)
    click.echo(
        f"\nthe stack keeps running; stop it with: flashsale local down --data-dir {data_dir}"
    )


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
