"""Errors of the reference pipeline (the CLI shows them as one line)."""

from __future__ import annotations


class PipelineError(Exception):
    """A pipeline step cannot go on; the message says which and why."""

    exit_code = 1
