"""The root group and the one place where errors become a line and an exit code."""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from consumers.errors import PipelineError
from producer.errors import FlashsaleError, InvalidOption, SchemaNotRegistered, TopicMissing

__all__ = ["FlashsaleCommand", "FlashsaleGroup", "Settings", "main", "pass_settings"]

SCHEMAS_DIR_ENV = "FLASHSALE_SCHEMAS_DIR"
LOG_DIR_ENV = "FLASHSALE_LOG_DIR"


class _Run:
    """What the root options said, for the error handler (which runs after click's
    context is gone): the log file that ``-v`` opened, if any."""

    log_file: Path | None = None
    handler: logging.Handler | None = None

    @classmethod
    def close(cls) -> None:
        if cls.handler is not None:
            logging.getLogger().removeHandler(cls.handler)
            cls.handler.close()
        cls.log_file = cls.handler = None


def _log_file() -> Path:
    """Where ``-v`` writes its log: ``$FLASHSALE_LOG_DIR``, else the system's temporary
    folder, in a file of its own per run."""
    folder = Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "flashsale")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return folder / f"flashsale-{stamp}-{os.getpid()}.log"


def _scrubbed(text: str) -> str:
    """``text`` without a secret this run has read, nor the password of a URL in it."""
    from producer.config import scrub

    return scrub(text)


# Control characters (a newline in an argument or a key, say) would break the one line:
# they are shown as their escapes, as Python writes them in a string.
_CONTROL = {c: repr(chr(c))[1:-1] for c in [*range(32), 127, 0x85, 0x2028, 0x2029]}


def _error(message: str) -> None:
    """The one line an error ends in, on stderr."""
    click.echo(f"Error: {message.translate(_CONTROL)}", err=True)


def _log_traceback(exc: BaseException) -> str | None:
    """Append ``exc``'s traceback to the ``-v`` log file; None when written (or when
    there is no log file), else why it could not be."""
    if _Run.log_file is None:
        return None
    try:
        with _Run.log_file.open("a", encoding="utf-8") as log:
            log.write(_scrubbed("".join(traceback.format_exception(exc))))
    except OSError as err:
        return f"the traceback could not be written to {_Run.log_file}: {err.strerror}"
    return None


def _unexpected(exc: BaseException) -> str:
    """The one line for an error flashsale did not raise on purpose (a bug, or a failure
    of the system under it), with where its traceback is, or how to get one."""
    text = str(exc).strip().splitlines()
    line = _scrubbed(f"unexpected {type(exc).__name__}" + (f": {text[0]}" if text else ""))
    if _Run.log_file is None:
        return f"{line} (run again with -v to write the traceback to a log file)"
    return f"{line} ({_log_traceback(exc) or f'traceback in {_Run.log_file}'})"


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
            self._standalone(args, prog_name, complete_var, **extra)
        finally:
            _Run.close()

    def _standalone(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        **extra: Any,
    ) -> None:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except (FlashsaleError, PipelineError) as exc:
            _log_traceback(exc)  # with -v, for whoever reads the log later
            _error(str(exc))
            sys.exit(exc.exit_code)
        except _NoArgsIsHelp as exc:  # a bare group: its help, as click shows it
            click.echo(exc.format_message())
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _error(f"{exc.format_message()}{hint}")
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            _error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except Exception as exc:  # anything else is still one line, never a traceback
            _error(_unexpected(exc))
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class _Scrubbing(logging.Formatter):
    """A formatter that keeps secrets out of the log file, as the terminal's lines are."""

    def format(self, record: logging.LogRecord) -> str:
        return _scrubbed(super().format(record))


def _open_log(verbose: int) -> None:
    """Send the log to a file too, with timestamps; a log that cannot be opened is said
    once and the run goes on (the terminal still has every line)."""
    path = _log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        click.echo(f"Warning: no log file at {path}: {exc.strerror}", err=True)
        return
    handler.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    handler.setFormatter(_Scrubbing("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    _Run.log_file, _Run.handler = path, handler


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
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output (repeat for debug); the log, and the traceback of an unexpected "
    f"error, also go to a file in ${LOG_DIR_ENV} [default: the temporary folder].",
)
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
    if verbose:
        _open_log(verbose)
    # librdkafka retries and reconnects on its own and says so at length; its lines
    # show with -v, while the failures that matter reach the user as one clear line.
    logging.getLogger("flashsale.librdkafka").setLevel(
        logging.CRITICAL if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    )
    ctx.obj = Settings(schemas_dir=_schemas_dir(schemas_dir))
