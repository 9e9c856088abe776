"""``flashsale contract verify``: every consumer's reader schema against every writer."""

from __future__ import annotations

import json
from pathlib import Path

import click

from producer.cli.options import Connection, connection_options, quiet_option, topic_option
from producer.cli.output import contract_line, contract_table, contract_view, progress
from producer.cli.root import FlashsaleGroup, Settings, pass_settings

__all__ = ["contract"]


@click.group(cls=FlashsaleGroup)
def contract() -> None:
    """Consumer contracts: prove every reader schema reads every writer version.

    \b
    Example:
      flashsale contract verify
    """


def _default_readers() -> list[Path]:
    folder = Path(__file__).resolve().parents[2] / "consumers" / "contracts"
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
@topic_option()
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
@quiet_option("the pairs checked so far", every=2)
@connection_options
@pass_settings
def contract_verify(
    settings: Settings,
    readers: tuple[Path, ...],
    against: str,
    topic: str,
    output_format: str,
    out: Path | None,
    quiet: bool,
    connection: Connection,
) -> None:
    """Check every (writer version x reader) pair with Avro resolution and with data.

    The data is framed in both wire formats the consumers read: the schema id in the
    value's prefix, and the schema GUID in the __value_schema_id header.
    Exits 1 on any failure, naming the pair, the field and the reason.

    \b
    Example:
      flashsale contract verify
      flashsale contract verify --reader my-job.avsc --against registry --format junit --out c.xml
    """
    from producer.contract.catalog import load_catalog
    from producer.contract.readers import load_reader, local_writers, verify_contracts
    from producer.paths import check_writable

    if out is not None:  # a report that cannot be written fails before the work
        check_writable(out, "out")
    paths = list(readers) or _default_readers()
    if not paths:
        raise click.UsageError(
            "no reader schemas: give --reader FILE (consumers/contracts is absent)"
        )
    reader_list = [load_reader(p) for p in paths]
    if against == "local":
        writers = local_writers(load_catalog(settings.schemas_dir))
    else:
        from producer.registry.client import Registry
        from producer.registry.workflows import registered_writers

        writers = registered_writers(Registry(connection.config()), f"{topic}-value")
    with progress(contract_line, quiet, every=2.0, view=contract_view) as shown:
        report = verify_contracts(
            writers, reader_list, on_pair=None if shown is None else lambda *p: shown(p)
        )
    if output_format == "json":
        text = json.dumps(report.to_json(), indent=2) + "\n"
    else:
        text = report.to_junit() + "\n" if output_format == "junit" else contract_table(report)
    for note in report.notes:  # a framing a writer cannot be written in
        click.echo(f"note: {note}", err=True)
    if out is not None:
        out.write_text(text, encoding="utf-8")
        click.echo(f"{'ok' if report.ok else 'FAILED'}: report written to {out}")
    else:
        click.echo(text, nl=False)
    if not report.ok:
        raise SystemExit(1)
