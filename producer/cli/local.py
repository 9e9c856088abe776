"""``flashsale local``: the Docker-free stack (Tansu broker and a Schema Registry)."""

from __future__ import annotations

from pathlib import Path

import click

from producer.cli.options import data_dir_option, port_options
from producer.cli.output import stack_status
from producer.cli.root import FlashsaleGroup

__all__ = ["local"]

_DATA_DIR_HELP = "Where pid files, logs and the registry's database live."


@click.group(cls=FlashsaleGroup)
def local() -> None:
    """A local stack without Docker: Tansu broker (in memory) and a Schema Registry.

    \b
    Example:
      flashsale local up && flashsale schemas list
      flashsale local down
    """


@local.command("up")
@data_dir_option(_DATA_DIR_HELP)
@port_options
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

    config = StackConfig(
        data_dir=data_dir,
        broker_port=broker_port,
        registry_port=registry_port,
        partitions=partitions,
    )
    started: list[str] = []
    statuses = LocalStack(config).up(on_progress=started.append)
    for line in started or ["already running"]:
        click.echo(line)
    stack_status(statuses)
    broker, registry = statuses
    click.echo(f"bootstrap.servers={broker.address}")
    click.echo(f"schema.registry.url={registry.address}")


@local.command("status")
@data_dir_option(_DATA_DIR_HELP)
def local_status(data_dir: Path) -> None:
    """Show each service of the local stack with its address, health and storage.

    Exits 0 when both are healthy, 1 otherwise.

    \b
    Example:
      flashsale local status
    """
    from devstack.stack import LocalStack, StackConfig

    statuses = LocalStack(StackConfig(data_dir=data_dir)).status()
    stack_status(statuses)
    if not all(s.healthy for s in statuses):
        raise SystemExit(1)


@local.command("down")
@data_dir_option(_DATA_DIR_HELP)
def local_down(data_dir: Path) -> None:
    """Stop the processes that `flashsale local up` started from this data dir.

    \b
    Example:
      flashsale local down
    """
    from devstack.stack import LocalStack, StackConfig

    stopped = LocalStack(StackConfig(data_dir=data_dir)).down()
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
