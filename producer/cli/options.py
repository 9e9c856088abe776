"""Options declared once, and the objects they reach commands as.

A command takes ``connection: Connection`` (``@connection_options``), ``run: RunSpec``
(``@run_options``), and the single options below by decorator, so a flag has one
spelling, one help text and one default everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from producer.events import DEFAULT_TOPIC

if TYPE_CHECKING:  # the CLI starts fast: the library is imported by the commands that run
    from producer.config import ClientConfig
    from producer.contract.catalog import SchemaCatalog
    from producer.simulation.scenario import Scenario

__all__ = [
    "Connection",
    "RunSpec",
    "connection_options",
    "data_dir_option",
    "duration",
    "engine_option",
    "key_values",
    "ledger_option",
    "level_argument",
    "level_option",
    "port_options",
    "run_options",
    "speed_option",
    "topic_option",
    "warehouse_option",
]

Decorator = Callable[[Any], Any]


def _apply(f: Any, *options: Decorator) -> Any:
    """Apply ``options`` so that ``--help`` lists them in the order given."""
    for option in reversed(options):
        f = option(f)
    return f


# --------------------------------------------------------------------------- callbacks


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``10m``, ``90s``, ``250ms`` or plain seconds, as seconds."""
    from producer.errors import ScenarioError
    from producer.simulation.scenario import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value, f"--{param.name}")
    except ScenarioError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1]) from None


def key_values(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """Repeated ``key=value`` pairs, as a dict."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got '{item}'")
        out[key.strip()] = value.strip()
    return out


def _level(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from producer.contract.compat import CompatibilityLevel

    if value is None:
        return None
    try:
        return CompatibilityLevel.parse(value)
    except ValueError as exc:
        hint = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
        raise click.BadParameter(str(exc), param_hint=hint) from None


# --------------------------------------------------------------------------- single options


def topic_option(help: str | None = None) -> Decorator:
    return click.option("--topic", default=DEFAULT_TOPIC, show_default=True, help=help)


def level_option(help: str) -> Decorator:
    """``--level``: a compatibility level, parsed (``FULL_TRANSITIVE`` by default)."""
    return click.option(
        "--level",
        default="FULL_TRANSITIVE",
        show_default=True,
        callback=_level,
        help=help,
    )


def level_argument() -> Decorator:
    return click.argument("level", callback=_level)


def data_dir_option(help: str) -> Decorator:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=".flashsale",
        show_default=True,
        help=help,
    )


def port_options(f: Any) -> Any:
    """--broker-port and --registry-port of the local stack."""
    return _apply(
        f,
        click.option(
            "--broker-port", type=click.IntRange(1, 65535), default=9092, show_default=True
        ),
        click.option(
            "--registry-port", type=click.IntRange(1, 65535), default=8081, show_default=True
        ),
    )


def metrics_port_option(what: str) -> Decorator:
    """``--metrics-port N``: Prometheus metrics on /metrics; ``what`` they count."""
    return click.option(
        "--metrics-port",
        type=click.IntRange(1, 65535),
        help=f"Serve Prometheus metrics on this port (/metrics): {what}.",
    )


def quiet_option(what: str, every: int = 5) -> Decorator:
    """``--quiet``: no progress (``what`` it would show, off a terminal a line every
    ``every`` seconds)."""
    return click.option(
        "--quiet",
        is_flag=True,
        help=f"No progress ({what}: a live display on a terminal, a line every {every} s"
        " elsewhere).",
    )


def speed_option(default: float) -> Decorator:
    return click.option(
        "--speed",
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=True,
        help="Simulated seconds per wall second.",
    )


def ledger_option(help: str) -> Decorator:
    """``--ledger FILE``, reaching the command as ``ledger_path``."""
    return click.option(
        "--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path), help=help
    )


def warehouse_option(help: str | None = None) -> Decorator:
    return click.option(
        "--warehouse",
        type=click.Path(file_okay=False, path_type=Path),
        default="warehouse",
        show_default=True,
        help=help,
    )


def engine_option(help: str | None = None) -> Decorator:
    return click.option(
        "--engine",
        type=click.Choice(["datafusion", "duckdb"]),
        default="datafusion",
        show_default=True,
        help=help,
    )


# --------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class Connection:
    """The connection flags of one command; :meth:`config` merges them with env and file.

    ``overrides`` are the command's ``-X key=value`` settings (produce has them).
    """

    bootstrap_servers: str | None
    schema_registry_url: str | None
    config_file: Path | None
    overrides: dict[str, str] = field(default_factory=dict)

    def config(self) -> ClientConfig:
        from producer.config import load_client_config

        return load_client_config(
            flags={
                "bootstrap.servers": self.bootstrap_servers,
                "schema.registry.url": self.schema_registry_url,
                **self.overrides,
            },
            properties_file=self.config_file,
        )

    def show(self) -> None:
        """Print the merged configuration, secrets masked, and where each key came from."""
        from producer.config import describe

        for line in describe(self.config()):
            click.echo(line)


def connection_options(f: Any) -> Any:
    """--bootstrap-servers, --schema-registry-url, --config and --show-config, declared
    once; the command receives them as one ``connection: Connection``. With
    --show-config the command prints the configuration and exits 0: it contacts nothing
    and sends nothing."""

    @functools.wraps(f)
    def command(
        *args: Any,
        bootstrap_servers: str | None,
        schema_registry_url: str | None,
        config_file: Path | None,
        show_config: bool,
        **kwargs: Any,
    ) -> Any:
        connection = Connection(
            bootstrap_servers,
            schema_registry_url,
            config_file,
            dict(kwargs.get("producer_overrides") or {}),
        )
        if show_config:
            connection.show()
            click.get_current_context().exit(0)
        return f(*args, connection=connection, **kwargs)

    return _apply(
        command,
        click.option(
            "--bootstrap-servers",
            help="Kafka bootstrap servers [env FLASHSALE_BOOTSTRAP_SERVERS; "
            "default localhost:9092].",
        ),
        click.option(
            "--schema-registry-url",
            help="Schema Registry URL [env FLASHSALE_SCHEMA_REGISTRY_URL; "
            "default http://localhost:8081].",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A client.properties file (as Confluent Cloud, Confluent Platform or a "
            "Java client writes it).",
        ),
        click.option(
            "--show-config",
            is_flag=True,
            help="Print the merged client configuration (secrets masked), where each key "
            "came from and which keys are ignored, then exit without contacting anything.",
        ),
    )


# --------------------------------------------------------------------------- runs


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
    shards: int
    shard: int
    run_id: str | None
    start: str | None

    def scenario(self, catalog: SchemaCatalog, paced: bool = False) -> Scenario:
        """The scenario with the overrides and its clock set (a paced run starts now
        unless --start says otherwise); a version the schema folder lacks is refused."""
        from producer.simulation.scenario import starting
        from producer.simulation.scenario_file import load_scenario

        if self.shard >= self.shards:
            raise click.UsageError(
                f"--shard {self.shard} is out of range: --shards {self.shards} has shards "
                f"0 to {self.shards - 1}"
            )
        if self.shards > 1 and self.workers > 1:
            raise click.UsageError(
                "--shards and --workers do not combine: shards split the run, workers "
                "split one exact run; choose one"
            )
        if self.shards > 1 and self.run_id is None:
            raise click.UsageError(
                "--shards: give every shard the same --run-id, so that together they are one run"
            )
        if self.workers > 1 and self.run_id is None:
            raise click.UsageError(
                "--workers: give every worker the same --run-id, so that together they are one run"
            )
        if self.schema_version is not None:
            catalog.require(self.schema_version, "schema_version")
        scenario = load_scenario(self.scenario_name).with_overrides(
            schema_version=self.schema_version, rate_multiplier=self.rate_multiplier
        )
        return starting(scenario, self.start, paced=paced)


def run_options(f: Any) -> Any:
    """The simulator's options, declared once for simulate and produce; the command
    receives them as one ``run: RunSpec``."""

    names = [
        "scenario_name",
        "seed",
        "schema_version",
        "rate_multiplier",
        "max_events",
        "duration",
        "workers",
        "worker",
        "shards",
        "shard",
        "run_id",
        "start",
    ]

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        run = RunSpec(**{name: kwargs.pop(name) for name in names})
        return f(*args, run=run, **kwargs)

    return _apply(
        command,
        click.option(
            "--scenario",
            "scenario_name",
            default="default",
            show_default=True,
            help="A built-in scenario name or a YAML file.",
        ),
        click.option("--seed", type=int, default=1, show_default=True, help="Random seed."),
        click.option(
            "--events", "max_events", type=click.IntRange(min=0), help="Stop after N events."
        ),
        click.option(
            "--duration", callback=duration, help="Stop after this much simulated time (10m)."
        ),
        click.option(
            "--schema-version", type=int, help="Schema version to emit [default: the scenario's]."
        ),
        click.option("--rate-multiplier", type=float, help="Scale every rate of the timeline."),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Split the users over N processes...",
        ),
        click.option(
            "--worker",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="...and emit the events of share I (0-based).",
        ),
        click.option(
            "--shards",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Split the run into N independent shards, one process each (own users, "
            "own share of every product's stock): N processes, N times the rate...",
        ),
        click.option(
            "--shard",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="...and run shard I (0-based).",
        ),
        click.option(
            "--start",
            help="Event time of the run's first second: an ISO time, 'scenario' (the file's) "
            "or 'now' [default: now when paced by --speed, else the scenario's].",
        ),
        click.option(
            "--run-id",
            help="The run's id [default: a random one, printed]; event ids derive from it, "
            "and the same id again replays the run (true duplicates).",
        ),
    )
