"""``flashsale schemas``: the contract offline (list, validate, check, diff) and in the
registry (register, check --against-registry, status, pull, compat)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from producer.cli.options import (
    Connection,
    connection_options,
    level_argument,
    level_option,
    topic_option,
)
from producer.cli.output import table
from producer.cli.root import FlashsaleGroup, Settings, pass_settings
from producer.errors import RegistryError

if TYPE_CHECKING:
    from producer.contract.catalog import SchemaCatalog
    from producer.contract.compat import CompatibilityLevel
    from producer.registry.client import Registry

__all__ = ["schemas"]


@click.group(cls=FlashsaleGroup)
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
    from producer.contract.catalog import load_catalog
    from producer.contract.evolution import summarize

    catalog = load_catalog(settings.schemas_dir)
    click.echo(f"schemas in {catalog.directory}")
    rows = [("family", "version", "fingerprint", "file", "fields added / removed")]
    for s in summarize(catalog):
        changes = [f"+{n}" for n in s.fields_added] + [f"-{n}" for n in s.fields_removed]
        if s.version == 1:
            changes = [f"{len(s.fields_added)} fields"] if s.fields_added else []
        rows.append((s.family, f"v{s.version}", s.fingerprint[:16], s.file, " ".join(changes)))
    table(rows)


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
    from producer.contract.catalog import lint_schema_dir

    problems = lint_schema_dir(settings.schemas_dir)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"all schemas in {settings.schemas_dir} are valid")


@schemas.command("check")
@level_option("NONE, BACKWARD, FORWARD or FULL, each optionally _TRANSITIVE (offline check).")
@click.option("--family", default=None, help="Check one schema family (default: every family).")
@click.option(
    "--against-registry",
    is_flag=True,
    help="Check the newest local version against the registry's subject, at its level.",
)
@topic_option("With --against-registry: the subject is <topic>-value.")
@click.option("--subject", help="With --against-registry: the subject [default: <topic>-value].")
@connection_options
@pass_settings
def schemas_check(
    settings: Settings,
    level: CompatibilityLevel,
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
    from producer.contract.catalog import load_catalog
    from producer.contract.evolution import check_latest

    catalog = load_catalog(settings.schemas_dir)
    if against_registry:
        _check_against_registry(catalog, subject or f"{topic}-value", connection)
        return
    failed = False
    for name in [family] if family else sorted(catalog.families):
        report = check_latest(catalog, name, level)
        if not report.checked_against:
            click.echo(f"{name} {report.new}: nothing to check against at {level.value}")
        elif report.compatible:
            against = ", ".join(report.checked_against)
            click.echo(f"{name} {report.new} is {level.value} compatible with {against}")
        else:
            failed = True
            click.echo(f"{name} {report.new} is NOT {level.value} compatible:")
            for message in report.messages():
                click.echo(f"  {message}")
    if failed:
        raise SystemExit(1)


def _check_against_registry(catalog: SchemaCatalog, subject: str, connection: Connection) -> None:
    from producer.registry.client import Registry
    from producer.registry.workflows import check_against_registry

    try:
        result = check_against_registry(Registry(connection.config()), catalog, subject)
    except RegistryError as exc:
        error = RegistryError(f"could not check: {exc}", exc.http_status, exc.error_code)
        # 1 means incompatible: a check that could not be made says why it could not.
        error.exit_code = exc.exit_code if exc.exit_code != 1 else 2
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
    from producer.contract.catalog import load_catalog
    from producer.contract.evolution import diff_versions

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
        click.echo(f"{name}: {'compatible' if not problems else 'INCOMPATIBLE'} ({what})")
        for p in problems:
            click.echo(f"  {p}")
    click.echo(f"full: {'compatible' if diff.full else 'INCOMPATIBLE'}")


@schemas.command("register")
@click.option("--version", "version", type=int, help="Register only this event version.")
@click.option("--all", "all_versions", is_flag=True, help="Register every version (the default).")
@topic_option("Subjects are <topic>-value and <topic>-key.")
@click.option("--subject", help="Value subject [default: <topic>-value].")
@level_option("Compatibility level set on each subject before its first registration.")
@click.option("--dry-run", is_flag=True, help="Check everything, register nothing.")
@connection_options
@pass_settings
def schemas_register(
    settings: Settings,
    version: int | None,
    all_versions: bool,
    topic: str,
    subject: str | None,
    level: CompatibilityLevel,
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
    from producer.contract.catalog import load_catalog
    from producer.registry.client import Registry
    from producer.registry.workflows import Registration, register_contract

    if version is not None and all_versions:
        raise click.UsageError("--version and --all exclude each other")
    config = connection.config()
    catalog = load_catalog(settings.schemas_dir)

    def report(step: Registration) -> None:
        name = f"{step.family} v{step.version}"
        if step.action == "would register":
            click.echo(f"{step.subject}: would register {name}")
        else:
            where = f"id {step.schema_id}, version {step.registry_version}"
            click.echo(f"{step.subject}: {name} {step.action} as {where}")

    register_contract(
        Registry(config),
        catalog,
        topic=topic,
        version=version,
        value_subject_name=subject,
        level=level,
        dry_run=dry_run,
        on_step=report,
    )


@schemas.command("status")
@topic_option()
@connection_options
@pass_settings
def schemas_status(settings: Settings, topic: str, connection: Connection) -> None:
    """Local versions and registered versions side by side, matched by fingerprint.

    Exits 1 when anything is out of sync.

    \b
    Example:
      flashsale schemas status
    """
    from producer.contract.catalog import load_catalog
    from producer.registry.client import Registry
    from producer.registry.workflows import schema_status

    config = connection.config()
    rows = schema_status(Registry(config), load_catalog(settings.schemas_dir), topic)
    table(
        [("subject", "local", "registered", "state")]
        + [(r.subject, r.local or "-", r.registered or "-", r.state) for r in rows]
    )
    if any(r.state != "in sync" for r in rows):
        raise SystemExit(1)


@schemas.command("pull")
@topic_option()
@click.option(
    "--subject",
    help="Pull one subject [default: <topic>-key, <topic>-value and the products topic's -value].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write <family>-v<N>.avsc files into.",
)
@connection_options
def schemas_pull(topic: str, subject: str | None, out: Path, connection: Connection) -> None:
    """Download every registered version as .avsc files.

    \b
    Example:
      flashsale schemas pull --out pulled/ && flashsale --schemas-dir pulled schemas list
    """
    from producer.registry.client import Registry
    from producer.registry.workflows import pull

    registry = Registry(connection.config())
    if subject:
        pairs = [(subject, subject.replace("-", "_"))]
    else:
        from producer.events import products_topic

        pairs = [
            (f"{topic}-key", "flash_sale_key"),
            (f"{topic}-value", "flash_sale_event"),
            (f"{products_topic(topic)}-value", "flash_sale_product"),
        ]
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
def schemas_compat_get(subject: str | None, connection: Connection) -> None:
    """Print the subject's compatibility level (or the global one).

    \b
    Example:
      flashsale schemas compat get --subject flash_sale_events-value
    """
    from producer.registry.client import Registry

    registry = Registry(connection.config())
    click.echo((registry.level(subject) if subject else registry.global_level()).value)


@schemas_compat.command("set")
@level_argument()
@click.option("--subject", help="A subject [default: the global level].")
@connection_options
def schemas_compat_set(
    level: CompatibilityLevel, subject: str | None, connection: Connection
) -> None:
    """Set the compatibility level of a subject (or the global one).

    \b
    Example:
      flashsale schemas compat set FULL_TRANSITIVE --subject flash_sale_events-value
    """
    from producer.registry.client import Registry

    Registry(connection.config()).set_level(subject, level)
    click.echo(f"{subject or 'global'}: {level.value}")


def _side(url: str | None, config_file: Path | None, flag: str) -> Registry:
    """One side of a copy: its URL (user info allowed) and its own properties file;
    the environment names one registry, so it is not consulted for either side."""
    from producer.config import load_client_config
    from producer.registry.client import Registry

    config = load_client_config(
        flags={"schema.registry.url": url}, properties_file=config_file, environ={}
    )
    if config.sources.get("schema.registry.url") == "default":
        raise click.UsageError(
            f"{flag}: give the registry's URL (or schema.registry.url in {flag}-config)"
        )
    return Registry(config)


@schemas.command("copy")
@click.option("--from", "from_url", help="The source registry's URL (user info allowed).")
@click.option("--to", "to_url", help="The destination registry's URL (user info allowed).")
@click.option(
    "--from-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A client.properties file for the source (URL, basic or bearer auth, TLS).",
)
@click.option(
    "--to-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A client.properties file for the destination.",
)
@click.option(
    "--subject",
    "subjects",
    multiple=True,
    help="Copy this subject (repeatable) [default: every subject of the source].",
)
def schemas_copy(
    from_url: str | None,
    to_url: str | None,
    from_config: Path | None,
    to_config: Path | None,
    subjects: tuple[str, ...],
) -> None:
    """Copy subjects to another registry with their ids, versions, references, metadata
    and compatibility levels (IMPORT mode), so old records decode there.

    Refuses, before writing anything, a destination holding another schema under an id
    to copy (exit 2). Running it again copies nothing new.

    \b
    Example:
      flashsale schemas copy --from http://localhost:8081 --to https://psrc.example.com \\
        --to-config cloud.properties --subject flash_sale_events-value
    """
    from producer.registry.workflows import CopiedVersion, copy_subjects

    source = _side(from_url, from_config, "--from")
    destination = _side(to_url, to_config, "--to")
    if source.url == destination.url:
        raise click.UsageError("--from and --to name the same registry")

    def report(step: CopiedVersion) -> None:
        where = f"version {step.version}, id {step.schema_id}"
        click.echo(f"{step.subject}: {where} {step.action}")

    done = copy_subjects(source, destination, list(subjects) or None, on_step=report)
    copied = sum(1 for step in done if step.action == "copied")
    click.echo(f"{copied} of {len(done)} versions copied from {source.url} to {destination.url}")
