"""Long-running commands stop the same way: the first SIGINT/SIGTERM finishes the step
in hand and exits cleanly, with nothing read left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from devstack.stack import free_port
from producer.errors import Interrupted
from tests.integration.conftest import Endpoints, cli, own_registry, stack_env
from tests.integration.test_pipeline import produce
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start(stack: Endpoints, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "producer.cli", *args],
        env=stack_env(stack),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_following_pipeline_stops_after_its_round(
    stack: Endpoints, topic: str, tmp_path: Path, signum: int
) -> None:
    produce(stack, topic, tmp_path / "ledger.json", 60, switch=False)
    warehouse = tmp_path / "warehouse"
    process = start(stack, "pipeline", "run", "--warehouse", str(warehouse), "--topic", topic,
                    "--interval", "1h", cwd=tmp_path)  # fmt: skip
    gold = warehouse / "gold" / "revenue_per_minute"
    wait_for(lambda: DeltaTable.is_deltatable(str(gold)))  # one round done: now it waits 1h
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stderr == "stopping after this round (Ctrl-C again to stop now)\n"
    assert stdout.splitlines()[-1].startswith("pipeline: ")


def test_consume_stops_on_sigterm(stack: Endpoints, topic: str, tmp_path: Path) -> None:
    produce(stack, topic, tmp_path / "ledger.json", 5, switch=False)
    process = start(stack, "consume", "--topic", topic, "--from-beginning", cwd=tmp_path)
    first = process.stdout.readline() if process.stdout else ""
    assert first.startswith("{"), first
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stderr == ""


def test_a_stopped_pipeline_round_keeps_what_it_read(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    # Stopped as it starts, the round still commits what Bronze read and builds Silver
    # and Gold from it; the next run picks up exactly where it ended.
    ledger = tmp_path / "ledger.json"
    produce(stack, topic, ledger, 60, switch=False)
    total = json.loads(ledger.read_text())["total_events"]
    warehouse = tmp_path / "warehouse"
    process = start(stack, "pipeline", "run", "--until-idle", "--warehouse", str(warehouse),
                    "--topic", topic, cwd=tmp_path)  # fmt: skip
    bronze = warehouse / "bronze" / "events"
    wait_for(lambda: DeltaTable.is_deltatable(str(bronze)))
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    after_stop = DeltaTable(str(bronze)).to_pyarrow_table(columns=["offset"]).num_rows
    rest = cli(stack, "pipeline", "run", "--until-idle", "--warehouse", str(warehouse),
               "--topic", topic)  # fmt: skip
    assert rest.returncode == 0, rest.stderr
    rows = DeltaTable(str(bronze)).to_pyarrow_table(columns=["partition", "offset"]).to_pylist()
    assert after_stop > 0
    assert len({(r["partition"], r["offset"]) for r in rows}) == len(rows) == total


@pytest.mark.parametrize("pacing", [("--speed", "1"), ("--max-rate",)])
def test_produce_at_a_rate_that_rounds_to_nothing_stops_on_sigterm_without_spinning(
    stack: Endpoints, topic: str, tmp_path: Path, pacing: tuple[str, ...]
) -> None:
    # So low a rate that almost every simulated second is empty: the run must still
    # keep pace (no busy loop through empty seconds) and still stop when asked.
    from tests.integration.test_produce import registered

    registered(stack, topic)
    ledger = tmp_path / "ledger.json"
    process = start(stack, "produce", "--rate-multiplier", "0.000001", "--topic", topic,
                    "--create-topic", "--ledger", str(ledger), "--quiet", *pacing,
                    cwd=tmp_path)  # fmt: skip
    time.sleep(3)  # started, catalog published, waiting for events
    before = psutil_cpu(process.pid)
    time.sleep(3)
    cpu = psutil_cpu(process.pid) - before
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "interrupted       yes" in out
    assert json.loads(ledger.read_text())["complete"] is False
    if pacing[0] == "--speed":
        assert cpu < 0.3, cpu  # CPU seconds in 3 s of waiting: it sleeps


def psutil_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_consume_waiting_for_an_unreachable_broker_stops_on_a_signal(
    tmp_path: Path, signum: int
) -> None:
    # librdkafka's metadata wait does not return to Python, where the signal handler
    # runs: before it was asked in slices, a signal waited out the whole timeout.
    broker = f"127.0.0.1:{free_port()}"  # nothing listens there
    with own_registry() as (url, _):
        process = subprocess.Popen(
            [sys.executable, "-m", "producer.cli", "consume", "--connect-timeout", "600",
             "--bootstrap-servers", broker, "--schema-registry-url", url],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(3)  # into the wait for the broker (it prints nothing to wait for)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)  # far below --connect-timeout
    assert process.returncode == Interrupted.exit_code, stderr
    assert (stdout, stderr) == ("", f"Error: stopped while waiting for Kafka at {broker}\n")


def test_produce_waiting_for_an_unreachable_broker_stops_on_ctrl_c(tmp_path: Path) -> None:
    # Its preflight asks for the cluster's metadata in slices too, so Python's own
    # SIGINT ends the wait between two of them, long before --connect-timeout.
    broker = f"127.0.0.1:{free_port()}"  # nothing listens there
    process = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "produce", "--events", "5",
         "--connect-timeout", "600", "--bootstrap-servers", broker,
         "--schema-registry-url", "http://127.0.0.1:1"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(3)  # into the wait for the broker (it prints nothing to wait for)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)  # far below --connect-timeout
    assert process.returncode == 130, stderr
    assert (stdout, stderr.splitlines()[-1]) == ("", "Aborted."), stderr
    assert "Traceback" not in stderr
