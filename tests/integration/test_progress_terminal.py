"""`produce` and `pipeline run` at a terminal (a real pseudo-terminal, against the test
stack): a live display with every field of the progress while they run, erased at the
end so that the summary they print stands alone, as it does in a CI log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import Endpoints, cli, stack_env
from tests.integration.test_pipeline import produce
from tests.terminal import run_in_terminal

pytestmark = pytest.mark.integration

BOX = re.compile("[╭╮╰╯│─]")  # a panel's border, a table's rule


def summary(screen: list[str]) -> dict[str, str]:
    """The produce summary table: field -> value."""
    rows = {}
    for line in screen:
        field, _, value = line.partition("  ")
        rows[field] = value.strip()
    return rows


def test_produce_on_a_terminal_shows_every_field_live_then_the_plain_summary(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    registered = cli(stack, "schemas", "register", "--all", "--topic", topic)
    assert registered.returncode == 0, registered.stderr
    ledger = tmp_path / "ledger.json"
    run = run_in_terminal("produce", "--topic", topic, "--create-topic", "--scenario",
                          "flash-sale", "--duration", "6s", "--speed", "1", "--ledger",
                          str(ledger), env=stack_env(stack),
                          columns=200)  # fmt: skip  # wide: the summary names a long tmp path
    assert run.code == 0, run.raw
    # While it ran: the panel, with the sale's clock and phase, the counts, the rates
    # and the delivery latency (each frame of it is in the output, in turn).
    frames = run.plain.count("╭─ produce ")
    assert frames >= 3, run.plain  # about two a second
    assert re.search(r"│ sale clock +t\+00:0\d +phase +\w+", run.plain), run.plain
    assert re.search(r"│ sent +[1-9][\d,]* +acked +[1-9][\d,]* ", run.plain), run.plain
    assert re.search(r"│ failed +0 +in flight +[\d,]+ ", run.plain), run.plain
    assert re.search(r"│ rate +[\d,]+/s +target +[\d,]+/s ", run.plain), run.plain
    assert re.search(r"│ latency p50 +[\d.]+ ms +p99 +[\d.]+ ms ", run.plain), run.plain
    # At the end: the display is gone, the summary table is all there is, as plain text.
    assert not BOX.search(run.text), run.screen
    rows = summary(run.screen)
    assert list(rows)[:3] == ["run id", "topic", "schema id"], run.screen
    assert rows["topic"] == topic
    assert rows["failed"] == "0" and rows["unconfirmed"] == "0"
    assert int(rows["acknowledged"]) == int(rows["sent"]) > 0
    assert re.fullmatch(r"p50 [\d.]+ ms, p99 [\d.]+ ms", rows["delivery latency"])
    assert rows["ledger"] == str(ledger)
    # The cursor, hidden while the display was drawn, is shown again.
    assert run.raw.rfind("\x1b[?25h") > run.raw.rfind("\x1b[?25l") >= 0


def test_produce_stopped_by_ctrl_c_on_a_terminal_flushes_and_prints_its_summary(
    stack: Endpoints, topic: str
) -> None:
    registered = cli(stack, "schemas", "register", "--all", "--topic", topic)
    assert registered.returncode == 0, registered.stderr
    run = run_in_terminal("produce", "--topic", topic, "--create-topic", "--duration", "10m",
                          "--speed", "1", env=stack_env(stack),
                          interrupt_when=lambda out: "acked" in out)  # fmt: skip
    assert run.code == 0, run.raw  # everything sent was acknowledged
    assert not BOX.search(run.text), run.screen
    rows = summary(run.screen)
    assert rows["interrupted"] == "yes: generation stopped, outstanding records flushed"
    assert int(rows["acknowledged"]) == int(rows["sent"])


def test_pipeline_run_on_a_terminal_shows_layers_and_lag_then_its_step_lines(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    produce(stack, topic, tmp_path / "ledger.json", 60, switch=False)
    warehouse = tmp_path / "warehouse"
    run = run_in_terminal("pipeline", "run", "--until-idle", "--topic", topic,
                          "--warehouse", str(warehouse), env=stack_env(stack))  # fmt: skip
    assert run.code == 0, run.raw
    # While Bronze read: records per layer and their rate, the lag of every partition.
    assert "pipeline run, round 1" in run.plain, run.plain
    assert re.search(r"bronze +at work +[1-9][\d,]* read +[\d,]+/s", run.plain), run.plain
    assert re.search(r"silver +0 inserted", run.plain), run.plain
    assert re.search(r"lag per partition \(total [\d,]+\)", run.plain), run.plain
    lags = re.findall(r"p(\d) [\d,]+", run.plain)
    assert set(lags) == {str(p) for p in range(6)}, run.plain  # the topic's 6 partitions
    # After Bronze, the layers at work in turn.
    assert re.search(r"silver +at work", run.plain) and re.search(r"gold +at work", run.plain)
    # At the end: the step lines alone, each on its own line, as in a CI log.
    assert [line.split(":")[0] for line in run.screen] == [
        "catalog",
        "bronze",
        "silver",
        "gold",
        "pipeline",
    ], run.screen
    assert not BOX.search(run.text)


def test_a_following_pipeline_stopped_on_a_terminal_leaves_its_lines_and_the_note(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    produce(stack, topic, tmp_path / "ledger.json", 30, switch=False)
    waiting = "waiting for the next round"
    run = run_in_terminal("pipeline", "run", "--topic", topic, "--warehouse",
                          str(tmp_path / "warehouse"), "--interval", "1h", env=stack_env(stack),
                          interrupt_when=lambda out: waiting in out)  # fmt: skip
    assert run.code == 0, run.raw
    # Between rounds the display said so; Ctrl-C then ended the run, display erased.
    assert "pipeline run, round 1: waiting for the next round" in run.plain
    assert [line.split(":")[0] for line in run.screen] == [
        "catalog", "bronze", "silver", "gold", "pipeline",
        "stopping after this round (Ctrl-C again to stop now)",
    ], run.screen  # fmt: skip
    assert not BOX.search(run.text)
