"""Typed errors of the flashsale library.

Every error the library raises for a user's mistake or an unreachable service derives
from :class:`FlashsaleError`; its message is one line that names the file, field or
host at fault. The CLI turns it into that line on stderr and :attr:`exit_code`.
"""

from __future__ import annotations

__all__ = [
    "FlashsaleError",
    "SchemaFileError",
    "SchemaNotFoundError",
    "UsageError",
]


class FlashsaleError(Exception):
    """Root of every error flashsale raises on purpose."""

    exit_code: int = 1


class UsageError(FlashsaleError):
    """An option or argument the user gave cannot be honoured."""

    exit_code = 2


class SchemaFileError(FlashsaleError):
    """A schema file cannot be read, parsed or linted; the message starts with its path."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class SchemaNotFoundError(FlashsaleError):
    """A schema family or version is not among the loaded files."""
