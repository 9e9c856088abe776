"""Every error flashsale raises on purpose, and the exit code each one ends in.

Every error derives from :class:`FlashsaleError`. Its message is one line that names
the file, field, key or host at fault, in the library's words: the CLI adds its own
flag names (see :class:`InvalidOption`) and hints, prints ``Error: <message>`` and
exits with :attr:`~FlashsaleError.exit_code`.

=====  =====================================================================
exit   meaning
=====  =====================================================================
1      the thing checked is wrong (incompatible, not registered, a failed run)
2      the input cannot be used (a usage or configuration mistake): nothing ran
3      a service (broker, registry) could not be reached in time
130    stopped by the user; what was done is accounted for
=====  =====================================================================

The reference pipeline (``consumers``) never imports ``producer``, so its one error,
``consumers.errors.PipelineError``, stands apart with an exit code of its own (and
the same codes: ``consumers.decode.RegistryOutage`` ends in 3).

:data:`UNREACHABLE` is the exit code of every "could not reach" error, so that a
script can tell "try again later" (3) from "fix the input" (2).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "UNREACHABLE",
    "BrokerBinaryNotFound",
    "BrokerUnavailable",
    "ConfigError",
    "FlashsaleError",
    "IncompatibleSchemaError",
    "Interrupted",
    "InvalidOption",
    "PortBusy",
    "RegistryError",
    "RegistryUnauthorized",
    "RegistryUnavailable",
    "ScenarioError",
    "SchemaFileError",
    "SchemaNotFoundError",
    "SchemaNotRegistered",
    "StackError",
    "TopicMissing",
    "UsageError",
]


_NAMED = re.compile(r"\{([a-z_]+)\}")

UNREACHABLE = 3


class FlashsaleError(Exception):
    """Root of every error flashsale raises on purpose."""

    exit_code: int = 1


# --------------------------------------------------------------------------- input


class UsageError(FlashsaleError):
    """An input the caller gave cannot be honoured."""

    exit_code = 2


class InvalidOption(UsageError):
    """An input is invalid: ``option`` is its name in the library (``out``,
    ``max_events``; empty when the problem is not one input's), ``value`` what was
    given when the message should show it. ``problem`` may name inputs as ``{name}``.

    The message reads ``out x.csv: the file must end in .avro or .jsonl``; the CLI
    renders it with its own flags (``--out x.csv: ...``).
    """

    def __init__(self, option: str, problem: str, value: object = None) -> None:
        self.option = option
        self.problem = problem
        self.value = value
        super().__init__(self.render(lambda name: name))

    def render(self, flag: Callable[[str], str]) -> str:
        """The message with ``flag(name)`` standing for each input it names."""
        problem = _NAMED.sub(lambda m: flag(m.group(1)), self.problem)
        if not self.option:
            return problem
        shown = flag(self.option) + (f" {self.value}" if self.value is not None else "")
        return f"{shown}: {problem}"


class ConfigError(UsageError):
    """A client configuration key is unknown, malformed or contradicts another."""


class ScenarioError(UsageError):
    """A scenario file or override is invalid; the message names the file and the key."""


class SchemaFileError(FlashsaleError):
    """A schema file cannot be read, parsed or linted; the message starts with its path."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class SchemaNotFoundError(FlashsaleError):
    """A schema family or version is not among the loaded files."""


class Interrupted(FlashsaleError):
    """The run was stopped by the user; what was written is accounted for."""

    exit_code = 130


# --------------------------------------------------------------------------- registry


class RegistryError(FlashsaleError):
    """The registry answered with an error; carries its HTTP status and error code."""

    def __init__(
        self, message: str, http_status: int | None = None, error_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code


class RegistryUnavailable(RegistryError):
    """The registry cannot be reached (or answered nothing usable) in time."""

    exit_code = UNREACHABLE


class RegistryUnauthorized(RegistryUnavailable):
    """The registry refused the credentials (HTTP 401) or the access (HTTP 403): the
    configuration is at fault, not the service."""

    exit_code = 2


class IncompatibleSchemaError(RegistryError):
    """The registry would refuse the schema; ``reasons`` are its verbose messages."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message, 409, 409)
        self.reasons = reasons


class SchemaNotRegistered(RegistryError):
    """A schema the producer needs is not registered under its subject (``topic``)."""

    def __init__(self, message: str, topic: str) -> None:
        super().__init__(message, 404, 40403)
        self.topic = topic


# --------------------------------------------------------------------------- kafka


class BrokerUnavailable(FlashsaleError):
    """Kafka cannot be reached, or refused us, within the configured time."""

    exit_code = UNREACHABLE


class TopicMissing(FlashsaleError):
    """The topic does not exist and was not to be created."""

    exit_code = 2

    def __init__(self, message: str, topic: str) -> None:
        super().__init__(message)
        self.topic = topic


# --------------------------------------------------------------------------- local stack


class StackError(FlashsaleError):
    """The local stack could not be started, stopped or inspected."""


class PortBusy(StackError):
    """A port the stack needs is taken by another process."""

    def __init__(self, what: str, host: str, port: int) -> None:
        super().__init__(
            f"{what} port {port} on {host} is already in use; "
            f"stop what holds it or choose another port"
        )
        self.port = port


class BrokerBinaryNotFound(StackError):
    """No Tansu broker binary could be found."""
