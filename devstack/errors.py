"""Errors of the local stack; the CLI shows them as one line."""

from __future__ import annotations

from producer.errors import FlashsaleError

__all__ = ["BrokerBinaryNotFound", "PortBusy", "StackError"]


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
