"""The root group and the one place where errors become a line and an exit code."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from consumers.errors import PipelineError
from producer.errors import FlashsaleError, InvalidOption, SchemaNotRegistered, TopicMissing

__all__ = ["FlashsaleCommand", "FlashsaleGroup", "Settings", "main", "pass_settings"]

SCHEMAS_DIR_ENV = "FLASHSALE_SCHEMAS_DIR"

# click >= 8.2 raises this for a group called without a command; older click exits itself.
_NoArgsIsHelp: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


@dataclass
class Settings:
    """What the global options say, handed to every command."""

    schemas_dir: Path


pass_settings = click.make_pass_decorator(Settings)


def _flag(command: click.Command, option: str) -> str:
    """The command's flag for the library's input named ``option`` (``out`` -> ``--out``)."""
    for param in command.params:
        if param.name == option and isinstance(param, click.Option):
            return max(param.opts, key=len)
        if param.name == option:
            return param.human_readable_name
    return option


class FlashsaleCommand(click.Command):
    """A command whose library errors speak its own flags.

    The library names an input by its own name (:class:`InvalidOption`); here it is
    the flag the user typed. A missing topic or schema gets the command that fixes it.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidOption as exc:
            exc.args = (exc.render(functools.partial(_flag, self)),)
            raise
        except SchemaNotRegistered as exc:
            exc.args = (f"{exc}; run: flashsale schemas register --topic {exc.topic}",)
            raise
        except TopicMissing as exc:
            if any(p.name == "create_topic" for p in self.params):
                exc.args = (f"{exc}; create it, or add --create-topic",)
            raise


class FlashsaleGroup(click.Group):
    """A group of :class:`FlashsaleCommand`; as the root, every error, library or usage,
    ends as one line and an exit code."""

    command_class = FlashsaleCommand
    group_class = type  # subgroups are FlashsaleGroups too

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


def _schemas_dir(value: str | None) -> Path:
    from producer.contract.catalog import bundled_schemas_dir

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
