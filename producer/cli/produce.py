"""``flashsale produce`` (a scenario into Kafka) and ``flashsale consume`` (read it back)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from producer.cli.options import (
    Connection,
    RunSpec,
    connection_options,
    duration,
    key_values,
    ledger_option,
    metrics_port_option,
    quiet_option,
    run_options,
    speed_option,
    topic_option,
)
from producer.cli.output import (
    produce_line,
    produce_summary,
    produce_view,
    progress,
    serve_metrics,
)
from producer.cli.root import FlashsaleCommand, Settings, pass_settings
from producer.cli.signals import stop_on_signals

__all__ = ["consume", "produce", "stream_until_signalled"]


def stream_until_signalled(stream: Any, quiet: bool, metrics: Any = None) -> Any:
    """Run a :class:`~producer.kafka.produce.StreamProducer` until it ends or a signal
    stops it (then it flushes and accounts), with its progress unless ``quiet`` (a live
    display on a terminal, a plain line every 5 s elsewhere, ended before the summary);
    ``metrics`` (:class:`~producer.metrics.ProduceMetrics`) kept up to date."""
    with (
        progress(produce_line, quiet, view=produce_view) as on_progress,
        stop_on_signals() as stop,
    ):
        return stream.run(stop=stop, on_progress=on_progress, metrics=metrics)


@click.command("produce", cls=FlashsaleCommand)
@run_options
@speed_option(1.0)
@click.option(
    "--max-rate", is_flag=True, help="Ignore the clock: as fast as the broker takes them."
)
@topic_option()
@click.option("--create-topic", is_flag=True, help="Create the topic if it is missing.")
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Partitions for --create-topic.",
)
@ledger_option("Write the ledger of acknowledged events (JSON) here.")
@click.option(
    "--switch-to-version",
    "switch_version",
    type=int,
    help="Switch the value schema to this version mid-run (a rolling upgrade)...",
)
@click.option("--switch-at", callback=duration, help="...at this simulated time (3m).")
@click.option(
    "--timestamp",
    type=click.Choice(["produce", "event"]),
    default="produce",
    show_default=True,
    help="Kafka record timestamp: when it was produced, or the event's time.",
)
@click.option(
    "--catalog/--no-catalog",
    default=True,
    show_default=True,
    help="Publish the shop's products to the products topic (flash_sale_products, or "
    "TOPIC-products; compacted, created when missing) before the events.",
)
@click.option(
    "--schema-id-in",
    type=click.Choice(["prefix", "header"]),
    default="prefix",
    show_default=True,
    help="Where each value names its writer schema: the 5-byte prefix (magic 0 + id), or "
    "the __value_schema_id header (magic 1 + the schema's GUID; Confluent 8's header "
    "serializer), the value bare.",
)
@click.option("--dry-run", is_flag=True, help="Serialize for real, send nothing, print a sample.")
@quiet_option("the sale's clock, rates, counts and latency; the summary stays")
@metrics_port_option("events sent, acknowledged and failed by type, in flight, delivery latency")
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
    callback=key_values,
    help="librdkafka producer setting key=value (repeatable).",
)
@connection_options
@pass_settings
def produce(
    settings: Settings,
    /,
    run: RunSpec,
    max_rate: bool,
    speed: float,
    dry_run: bool,
    quiet: bool,
    metrics_port: int | None,
    producer_overrides: dict[str, str],
    connection: Connection,
    **options: Any,
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
      flashsale produce --duration 10m --metrics-port 9464   # scrape :9464/metrics
      flashsale produce --max-rate --events 1000000 --shards 4 --shard 0 --run-id sale-1
    """
    from producer.contract.catalog import load_catalog
    from producer.kafka.produce import ProduceOptions, StreamProducer

    if (options["switch_version"] is None) != (options["switch_at"] is None):
        raise click.UsageError("--switch-to-version and --switch-at go together")
    config = connection.config()
    catalog = load_catalog(settings.schemas_dir)
    scenario = run.scenario(catalog, paced=not max_rate)
    produce_options = ProduceOptions(
        max_events=run.max_events,
        duration=run.duration,
        speed=None if max_rate else speed,
        workers=run.workers,
        worker=run.worker,
        shards=run.shards,
        shard=run.shard,
        run_id=run.run_id,
        **options,
    )
    stream = StreamProducer(config, catalog, scenario, run.seed, produce_options)
    if dry_run:
        _dry_run(stream)
        return
    from producer.metrics import ProduceMetrics

    metrics = serve_metrics(ProduceMetrics, metrics_port, quiet)  # before anything is sent
    stream.preflight()
    result = stream_until_signalled(stream, quiet, metrics=metrics)
    produce_summary(result, produce_options.topic)
    if not result.ok:
        raise SystemExit(1)


def _dry_run(stream: Any) -> None:
    from producer.simulation.sinks import event_json

    stream.preflight(need_broker=False)
    for event, key, value in stream.sample():
        click.echo(json.dumps(event_json(event, stream.schema)))
        click.echo(f"  key {key.hex()}  value {len(value)} bytes: {value[:24].hex()}...")
    click.echo("dry run: serialized with the registered schema, sent nothing")


@click.command("consume", cls=FlashsaleCommand)
@topic_option()
@click.option(
    "--group", help="Consumer group (commits offsets) [default: a fresh one, no commits]."
)
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset.")
@click.option("--max", "max_records", type=click.IntRange(min=1), help="Stop after N records.")
@click.option(
    "--idle-timeout",
    callback=duration,
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
def consume(
    output_format: str, show_schema_id: bool, connection: Connection, **options: Any
) -> None:
    """Read the topic back as JSON lines (decimals and times exact) or a table.

    \b
    Example:
      flashsale consume --from-beginning --max 10
      flashsale consume --from-beginning --reader-schema schemas/flash_sale_event-v1.avsc
    """
    from producer.kafka.consume import ConsumeOptions, consume, json_value

    config = connection.config()
    columns = ("event_type", "user_id", "product_id", "quantity", "price", "revenue", "timestamp")
    schema_id = ("schema_id",) if show_schema_id else ()
    if output_format == "table":
        click.echo("  ".join(("partition", "offset", *schema_id, *columns)))
    with stop_on_signals() as stop:
        for record in consume(config, ConsumeOptions(**options), stop):
            if record.error is not None:
                where = f"partition {record.partition} offset {record.offset}"
                click.echo(f"{where}: {record.error}", err=True)
                continue
            value = json_value(record.value)
            if output_format == "json":
                line: dict[str, Any] = {"_schema_id": record.schema_id} if show_schema_id else {}
                if show_schema_id and record.schema_guid is not None:
                    line["_schema_guid"] = record.schema_guid
                click.echo(json.dumps({**line, **value}, separators=(",", ":")))
            else:
                cells = [str(record.partition), str(record.offset)]
                cells += [str(record.schema_id)] if show_schema_id else []
                cells += [str(value.get(c, "")) for c in columns]
                click.echo("  ".join(cells))
