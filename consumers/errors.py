"""Errors of the reference pipeline (the CLI shows them as one line)."""

from __future__ import annotations


class PipelineError(Exception):
    """A pipeline step cannot go on; the message says which and why."""

    exit_code = 1


class ServiceUnreachable(PipelineError):
    """Kafka or the registry could not be reached or could not answer in time: nothing
    was judged by the missing answer. Exit 3, as every "could not reach" error of the
    CLI, so that a script can tell "try again later" from a failed run."""

    exit_code = 3


class UnsafeRetention(PipelineError):
    """A vacuum retention shorter than the table's, not forced: a reader still on an
    older version could lose files. A usage mistake (exit 2), refused before any table
    is touched."""

    exit_code = 2
