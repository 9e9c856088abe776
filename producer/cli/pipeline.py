"""``flashsale pipeline run`` (Kafka -> Bronze -> Silver -> Gold), ``flashsale kpis``
(print and reconcile Gold) and ``flashsale demo`` (the whole flow on this machine)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from producer.cli.options import (
    Connection,
    connection_options,
    data_dir_option,
    duration,
    engine_option,
    metrics_port_option,
    port_options,
    quiet_option,
    speed_option,
    topic_option,
    warehouse_option,
)
from producer.cli.output import (
    PipelineWatch,
    kpi_tables,
    pipeline_progress,
    produce_summary,
    serve_metrics,
)
from producer.cli.produce import stream_until_signalled
from producer.cli.root import FlashsaleCommand, FlashsaleGroup, Settings, pass_settings
from producer.cli.signals import stop_on_signals

__all__ = ["demo", "kpis", "pipeline"]


currency_option = click.option(
    "--currency",
    "currencies",
    multiple=True,
    default=["USD"],
    show_default=True,
    help="A currency the shop prices in (repeatable); Silver quarantines money in others.",
)


def silver_options(f: Any) -> Any:
    """--reader-schema, --engine and --currency: how Silver reads and checks, and which
    engine computes Gold (declared once for run and replay-quarantine)."""
    f = currency_option(f)
    f = engine_option("Embedded engine for the Gold SQL.")(f)
    return click.option(
        "--reader-schema",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Silver's reader schema [default: consumers/contracts/silver.avsc].",
    )(f)


@click.group(cls=FlashsaleGroup)
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
    callback=duration,
    default="5s",
    show_default=True,
    help="When following: pause between rounds.",
)
@warehouse_option("Where the Delta tables live.")
@topic_option()
@click.option(
    "--products-topic",
    help="The shop's catalog topic; Silver checks events against it "
    "[default: flash_sale_products for flash_sale_events, else TOPIC-products].",
)
@silver_options
@click.option(
    "--on-reset",
    type=click.Choice(["fail", "replay"]),
    default="fail",
    show_default=True,
    help="When the topic is not the log Bronze's offsets point into (recreated, reset, "
    "truncated): fail, or read it again from its start, keeping the old rows.",
)
@metrics_port_option(
    "records per layer, duplicates, quarantined by reason, lag per partition, rounds"
)
@quiet_option("records and rate per layer, lag per partition")
@connection_options
def pipeline_run(
    until_idle: bool,
    interval: float,
    warehouse: Path,
    topic: str,
    products_topic: str | None,
    reader_schema: Path | None,
    engine: str,
    currencies: tuple[str, ...],
    on_reset: str,
    metrics_port: int | None,
    quiet: bool,
    connection: Connection,
) -> None:
    """Ingest the topic into Bronze, decode into Silver, compute the Gold KPI tables.

    The shop's catalog (the products topic) is taken in first: Silver checks every
    event's product, category and brand against it, and Gold takes them from it.

    A topic recreated (a broker that kept it in memory restarted, or it was deleted and
    created again), reset or truncated under the stored offsets stops the run in one
    line, exit 1, before anything is read; --on-reset replay reads the new topic from
    its start as a new epoch, keeping the rows of the old one.

    Ctrl-C (or SIGTERM) ends the round at the next Bronze commit, finishes Silver and
    Gold for what was ingested, and stops; a second Ctrl-C stops at once.

    \b
    Example:
      flashsale pipeline run --until-idle
      flashsale pipeline run --warehouse /data/flash --interval 10s
      flashsale pipeline run --until-idle --on-reset replay
      flashsale pipeline run --metrics-port 9465   # follow, scrape :9465/metrics
    """
    from consumers.bronze import TopicReset
    from consumers.pipeline import run_pipeline
    from consumers.silver import CONTRACT
    from producer.events import products_topic as catalog_of

    config = connection.config()
    from producer.metrics import PipelineMetrics

    metrics = serve_metrics(PipelineMetrics, metrics_port, quiet)
    stopping = "stopping after this round (Ctrl-C again to stop now)"
    with (
        pipeline_progress(quiet) as watch,  # step lines on stdout, Bronze's progress
        stop_on_signals(on_first=lambda: watch.note(stopping)) as stop,
    ):
        while not stop.is_set():
            try:
                result = run_pipeline(
                    config.kafka(),
                    config.registry(),
                    topic,
                    warehouse,
                    reader_schema=reader_schema or CONTRACT,
                    engine=engine,
                    currencies=currencies,
                    products_topic=products_topic or catalog_of(topic),
                    on_step=watch.step,
                    stop=stop,
                    on_reset="replay" if on_reset == "replay" else "fail",
                    on_bronze=_on_bronze(watch, metrics),
                )
            except TopicReset as exc:
                exc.args = (f"{exc}; to read it from its start, keeping the old rows: "
                            "flashsale pipeline run --on-reset replay",)  # fmt: skip
                raise
            if metrics is not None:
                silver = result.silver
                metrics.round(silver.inserted, silver.duplicates, silver.reasons)
            line = f"pipeline: {result.bronze.records} records in {result.elapsed:.1f}s"
            watch.round(result, line, following=not until_idle)
            if until_idle:
                return
            stop.wait(interval)


def _on_bronze(watch: PipelineWatch, metrics: Any) -> Any:
    """What sees each Bronze commit: the progress and the metrics."""
    if watch.shown is None and metrics is None:
        return None

    def seen(stats: Any) -> None:
        watch.bronze(stats)
        if metrics is not None:
            metrics.bronze(stats.records, stats.lag)

    return seen


@pipeline.command("replay-quarantine")
@click.option(
    "--reason",
    metavar="PREFIX",
    help="Replay only the records whose quarantine reason starts with PREFIX "
    "(e.g. 'foreign currency') [default: every record of the topic].",
)
@warehouse_option("Where the Delta tables live.")
@topic_option()
@silver_options
@connection_options
def pipeline_replay_quarantine(
    reason: str | None,
    warehouse: Path,
    topic: str,
    reader_schema: Path | None,
    engine: str,
    currencies: tuple[str, ...],
    connection: Connection,
) -> None:
    """Decode and check quarantined records again, once the reader or the rules are fixed.

    Records that now pass enter Silver through the same identity rules as fresh ones
    (a duplicate is dropped; a conflict stays quarantined unless its copies now agree)
    and leave the quarantine; those that still fail stay, with the reason they fail
    for now. Gold is then computed again. Running it twice changes nothing more.

    \b
    Example:
      flashsale pipeline replay-quarantine
      flashsale pipeline replay-quarantine --reason 'foreign currency' --currency USD --currency EUR
      flashsale pipeline replay-quarantine --reason 'unknown product' --reader-schema fixed.avsc
    """
    from consumers.pipeline import replay_quarantine
    from consumers.silver import CONTRACT

    result = replay_quarantine(
        connection.config().registry(),
        topic,
        warehouse,
        reason=reason,
        reader_schema=reader_schema or CONTRACT,
        engine=engine,
        currencies=currencies,
    )
    stats = result.silver
    still = ", ".join(f"{k} {v}" for k, v in sorted(stats.reasons.items())) or "none"
    click.echo(
        f"replay: {stats.read} quarantined records read, {stats.released} released "
        f"({stats.inserted} inserted, {stats.duplicates} duplicates dropped), "
        f"{stats.quarantined} still quarantined ({still})"
    )
    if result.kpis:
        click.echo(f"gold: {len(result.kpis)} KPI tables ({engine})")


def _spark_version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from consumers.spark_job import packages

    try:
        packages(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@pipeline.command("spark-submit")
@click.option(
    "--spark-version",
    default="3.5.3",
    show_default=True,
    callback=_spark_version,
    help="Your cluster's Spark version; the connector packages are built for it.",
)
@click.option(
    "--warehouse",
    "warehouse_uri",
    default="warehouse",
    show_default=True,
    help="Where the job's Delta tables live, as your cluster names it (s3://..., abfss://...).",
)
@click.option(
    "--checkpoints",
    help="Where the streams keep their checkpoints [default: WAREHOUSE/_checkpoints].",
)
@topic_option()
@click.option(
    "--reader-schema",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Silver's reader schema, shipped with --files [default: consumers/contracts/silver.avsc].",
)
@currency_option
@connection_options
def pipeline_spark_submit(
    spark_version: str,
    warehouse_uri: str,
    checkpoints: str | None,
    topic: str,
    reader_schema: Path | None,
    currencies: tuple[str, ...],
    connection: Connection,
) -> None:
    """Print the spark-submit command that runs the pipeline on your Spark cluster.

    The packages (Kafka source, Avro, Delta) are those built for --spark-version; the
    broker and registry come from the usual configuration (flags, environment,
    --config). Secrets are never printed: the job reads them from its environment,
    whose variables are listed on stderr, as are settings the job does not take.

    \b
    Example:
      flashsale pipeline spark-submit --warehouse s3://lake/flash
      flashsale pipeline spark-submit --spark-version 4.0.1 --config client.properties \\
          --warehouse abfss://lake@acct.dfs.core.windows.net/flash
    """
    from consumers.spark_job import READER, submit_command

    config = connection.config()
    shown = {key: value for key, value, _ in config.shown()}  # secrets masked
    submit = submit_command(
        spark_version=spark_version,
        kafka={k: v for k, v in shown.items() if k in config.kafka()},
        registry={
            "url": config.registry_url,
            **{k: "****" for k in config.registry() if k != "url"},
        },
        topic=topic,
        reader_schema=reader_schema or READER,
        warehouse=warehouse_uri.rstrip("/"),
        checkpoints=checkpoints or f"{warehouse_uri.rstrip('/')}/_checkpoints",
        currencies=currencies,
    )
    click.echo(submit.text())
    if submit.environment:
        click.echo(
            f"the job reads {', '.join(submit.environment)} from its environment: set them "
            "where the driver runs",
            err=True,
        )
    for key, why in sorted(submit.left_out.items()):
        click.echo(f"not handed to the job: {key} ({why})", err=True)


def verify(warehouse: Path, ledgers: Sequence[dict[str, Any]]) -> None:
    """Reconcile the Gold tables as they stand with the ledgers: the data-quality tally,
    one line per difference, exit 1 on any."""
    from consumers.gold import read_gold
    from consumers.quality import data_quality
    from consumers.reconcile import merge_ledgers, reconcile

    ledger = merge_ledgers(ledgers)
    gold, version = read_gold(warehouse)
    for line in data_quality(warehouse).lines():
        click.echo(line)
    problems = reconcile(ledger, gold)
    if problems:
        for problem in problems:
            click.echo(f"DIFFERENCE {problem}", err=True)
        click.echo(f"Error: {len(problems)} KPI differences from the ledger", err=True)
        raise SystemExit(1)
    runs = len(ledger["runs"])
    click.echo(
        f"reconciled: every Gold table equals the ledger{'s' if runs > 1 else ''} "
        f"({ledger['total_events']} events from {runs} run{'s' if runs > 1 else ''}, "
        f"revenue {ledger['total_revenue']}; Gold of Silver version {version})"
    )


@click.command("kpis", cls=FlashsaleCommand)
@warehouse_option()
@click.option(
    "--verify-ledger",
    "ledger",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Reconcile the Gold tables with this ledger (repeat for every run into the "
    "topic); exit 1 on any difference.",
)
@click.option(
    "--engine",
    type=click.Choice(["datafusion", "duckdb"]),
    hidden=True,
    help="Ignored: Gold is read as `pipeline run --engine` wrote it.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Rows of the top-products table.",
)
def kpis(warehouse: Path, ledger: tuple[Path, ...], engine: str | None, top: int) -> None:
    """Print the Gold tables as they stand; with ledgers, reconcile them exactly.

    Every table, row and column the ledgers determine is compared (ledgers of several
    runs add up; a replayed run counts once), and so is every Gold row no ledger
    explains. Gold must be one snapshot of Silver, or it is refused.

    \b
    Example:
      flashsale kpis
      flashsale kpis --verify-ledger ledger.json
      flashsale kpis --verify-ledger run-a.json --verify-ledger run-b.json
    """
    from consumers.gold import read_gold
    from producer.simulation.ledger import read_ledger

    ledgers = [read_ledger(path) for path in ledger]  # every input checked first
    tables, _ = read_gold(warehouse)
    kpi_tables(tables, top)
    if ledgers:
        verify(warehouse, ledgers)


@pipeline.command("compact")
@warehouse_option("Where the Delta tables live.")
@click.option(
    "--retention-hours",
    type=click.IntRange(min=0),
    help="Vacuum files removed longer ago than this [default: each table's retention, "
    "one week unless the table sets delta.deletedFileRetentionDuration].",
)
@click.option(
    "--force",
    is_flag=True,
    help="Allow a --retention-hours below the table's: readers on older versions may break.",
)
def pipeline_compact(warehouse: Path, retention_hours: int | None, force: bool) -> None:
    """Compact every table's small files (Bronze, Silver, quarantine, Gold), then vacuum.

    Rows and KPIs stay as they are; each table gets one new version whose files are
    few and large. Vacuum deletes only unreferenced files older than the retention.

    \b
    Example:
      flashsale pipeline compact --warehouse warehouse/
      flashsale pipeline compact --warehouse warehouse/ --retention-hours 24 --force
    """
    from consumers.maintenance import compact_warehouse

    for done in compact_warehouse(warehouse, retention_hours, force):
        click.echo(
            f"{done.table}: {done.files_before} files -> {done.files_after}, "
            f"{done.vacuumed} vacuumed"
        )


@click.command("demo", cls=FlashsaleCommand)
@data_dir_option("The local stack's data dir; the demo's warehouse and ledger go under it.")
@port_options
@click.option(
    "--external",
    is_flag=True,
    help="Use the configured broker and registry (--bootstrap-servers, "
    "--schema-registry-url, --config or the environment) instead of starting the "
    "local stack: the compose stack, or your own.",
)
@connection_options
@speed_option(30.0)
@click.option(
    "--duration",
    callback=duration,
    default="6m",
    show_default=True,
    help="Simulated length of the sale.",
)
@click.option("--seed", type=int, default=2026, show_default=True)
@pass_settings
def demo(
    settings: Settings,
    /,
    data_dir: Path,
    duration: float,
    speed: float,
    external: bool,
    connection: Connection,
    **kw: Any,
) -> None:
    """The whole flow on this machine: stack, schemas, a flash sale, pipeline, KPIs.

    Starts the local stack, registers the schemas, produces the flash-sale scenario
    (schema v1 first, switching to the newest halfway, as a rolling upgrade would),
    runs the pipeline until the topic is drained, prints the KPIs with a chart of
    events per minute, reconciles every KPI with the producer's ledger, and compacts
    the tables (``flashsale pipeline compact``).

    \b
    Example:
      flashsale demo
      flashsale demo --data-dir /tmp/demo --broker-port 19092 --registry-port 18081
      flashsale demo --external --config client.properties
      docker compose run --rm flashsale demo --external
    """
    from producer.contract.catalog import load_catalog
    from producer.demo import Demo
    from producer.simulation.ledger import read_ledger

    given = [f for f, v in (("--bootstrap-servers", connection.bootstrap_servers),
                            ("--schema-registry-url", connection.schema_registry_url),
                            ("--config", connection.config_file)) if v]  # fmt: skip
    if given and not external:
        raise click.UsageError(f"{given[0]} needs --external (the demo starts its own stack)")
    catalog = load_catalog(settings.schemas_dir)
    config = connection.config() if external else None  # a bad file stops it here
    run = Demo(data_dir=data_dir, catalog=catalog, speed=speed, duration=duration, **kw)
    if config is not None:
        click.echo(f"1/6 external stack: {config.bootstrap_servers}, {config.registry_url}")
        run.use(config)
    else:
        click.echo(f"1/6 local stack in {data_dir}")
        run.start_stack(on_progress=lambda line: click.echo(f"    {line}"))
    click.echo(f"2/6 schemas registered under {run.topic}-key and {run.topic}-value")
    run.register()
    click.echo(
        f"3/6 producing {duration / 60:g} simulated minutes of the flash-sale scenario at "
        f"{speed:g}x, schema v1 switching to v{run.newest} at {duration / 120:g} min"
    )
    result = stream_until_signalled(run.stream(), quiet=False)
    produce_summary(result, run.topic)
    if not result.ok:
        raise SystemExit(1)
    click.echo(f"4/6 pipeline into {run.warehouse}")
    with pipeline_progress(quiet=False) as watch:
        outcome = run.pipeline(on_step=watch.step, on_bronze=watch.bronze)
    click.echo("5/6 KPIs")
    kpi_tables(outcome.kpis, 10)
    verify(run.warehouse, [read_ledger(run.ledger)])
    click.echo(f"report: {run.report()}")
    click.echo(f"6/6 compacting the tables of {run.warehouse}")
    for done in run.compact():
        click.echo(f"    {done.table}: {done.files_before} files -> {done.files_after}")
    if not external:
        click.echo(
            f"\nthe stack keeps running; stop it with: flashsale local down --data-dir {data_dir}"
        )
