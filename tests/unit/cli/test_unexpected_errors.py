"""An error flashsale did not raise on purpose is still one line and an exit code; with
``-v`` its traceback goes to a log file, which carries no secret either."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from consumers.gold import GOLD_TABLES
from producer.cli import main
from producer.config import load_client_config

SECRET = "sr-password-that-leaks-9"


@pytest.fixture
def failing_command() -> Iterator[str]:
    """A command of the real root group that reads a configuration with a secret, as
    every connecting command does, then fails the way a library bug would: quoting it."""

    @click.command("explode")
    def explode() -> None:
        config = load_client_config(
            {"schema.registry.url": "http://127.0.0.1:1", "basic.auth.user.info": f"u:{SECRET}"},
            environ={},
        )
        assert config.values["basic.auth.user.info"] is not None
        raise KeyError(f"no field 'x' in {{'auth': 'u:{SECRET}', 'url': 'http://u:{SECRET}@h'}}")

    main.add_command(explode)
    try:
        yield "explode"
    finally:
        main.commands.pop("explode")


def test_an_unexpected_error_is_one_line_with_exit_1(failing_command: str) -> None:
    result = CliRunner().invoke(main, [failing_command])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: unexpected KeyError: ")
    assert result.output.endswith("(run again with -v to write the traceback to a log file)\n")
    assert "Traceback" not in result.output
    assert SECRET not in result.output and "****" in result.output


def test_with_v_the_traceback_goes_to_a_log_file_without_secrets(
    failing_command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHSALE_LOG_DIR", str(tmp_path / "logs"))
    result = CliRunner().invoke(main, ["-v", failing_command])
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    (log,) = (tmp_path / "logs").iterdir()
    assert line.startswith("Error: unexpected KeyError: ")
    assert line.endswith(f"(traceback in {log})")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert "in explode" in text and "KeyError" in text  # where it happened, and what
    assert SECRET not in text and SECRET not in result.output
    # The handler lets go of the file: a second run in this process starts its own.
    again = CliRunner().invoke(main, [failing_command])
    assert again.output.endswith("(run again with -v to write the traceback to a log file)\n")


def test_with_v_an_intended_error_keeps_its_line_and_logs_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHSALE_LOG_DIR", str(tmp_path / "logs"))
    result = CliRunner().invoke(main, ["-v", "scenarios", "show", "no-such-scenario"])
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith("Error: ") and "no-such-scenario" in line and "traceback" not in line
    (log,) = (tmp_path / "logs").iterdir()
    assert "Traceback (most recent call last)" in log.read_text()


def test_a_corrupt_warehouse_is_one_line_and_a_log_with_v(tmp_path: Path) -> None:
    # A failure of the system under flashsale, as a user meets it: a Delta log that
    # is not JSON. The real CLI, in its own process.
    warehouse = tmp_path / "warehouse"
    for name in GOLD_TABLES:
        log = warehouse / "gold" / name / "_delta_log"
        log.mkdir(parents=True)
        (log / "00000000000000000000.json").write_text("{not json\n")
    env = {**os.environ, "FLASHSALE_LOG_DIR": str(tmp_path / "logs")}
    for flags in ([], ["-v"]):
        result = subprocess.run(
            [sys.executable, "-m", "producer.cli", *flags, "kpis", "--warehouse", str(warehouse)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("Error: unexpected ") and "Traceback" not in result.stderr
    (log,) = (tmp_path / "logs").iterdir()
    assert line.endswith(f"(traceback in {log})")
    assert "Traceback (most recent call last)" in log.read_text()


@pytest.mark.parametrize("argument", ["a\nb", "a\rb", "a\x1eb", "a\u2028b"])
def test_control_characters_in_what_is_quoted_keep_the_error_one_line(argument: str) -> None:
    # Found by the fuzz suite: click quotes the argument as it came.
    result = CliRunner().invoke(main, ["schemas", "list", argument])
    assert result.exit_code == 2
    escaped = repr(argument)[1:-1]
    assert result.output == (
        f"Error: Got unexpected extra argument ({escaped}) (see 'main schemas list --help')\n"
    )
