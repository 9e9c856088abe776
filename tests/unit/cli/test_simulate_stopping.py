"""``flashsale simulate`` stopped by a real SIGINT or SIGTERM: the file and the ledger
agree record for record, and a run of empty seconds still stops when asked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from producer.errors import Interrupted
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "simulate", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def records(out: Path) -> list[dict[str, Any]]:
    if out.suffix == ".avro":
        with out.open("rb") as f:
            return list(fastavro.reader(f))
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize(
    ("signum", "name"), [(signal.SIGINT, "run.jsonl"), (signal.SIGTERM, "run.avro")]
)
def test_a_stopped_run_leaves_file_and_ledger_agreeing(
    tmp_path: Path, signum: int, name: str
) -> None:
    out, ledger = tmp_path / name, tmp_path / "ledger.json"
    process = start(tmp_path, "--scenario", "flash-sale", "--events", "100000000",
                    "--out", str(out), "--ledger", str(ledger))  # fmt: skip
    wait_for(lambda: out.exists() and out.stat().st_size > 200_000)  # well into the run
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)

    written = records(out)
    kept = json.loads(ledger.read_text())
    assert process.returncode == Interrupted.exit_code, stderr
    assert stderr == f"Error: interrupted after {len(written)} events, all in {out}; " \
                     f"ledger in {ledger}\n"  # fmt: skip
    assert 0 < len(written) < 100_000_000
    assert kept["complete"] is False
    assert kept["total_events"] == len(written)
    by_type = Counter(str(r["event_type"]) for r in written)
    assert {k: v["events"] for k, v in kept["by_event_type"].items()} == dict(by_type)
    revenue = sum(Decimal(str(r["revenue"])) for r in written)
    assert Decimal(kept["total_revenue"]) == revenue
    purchases = [r for r in written if str(r["event_type"]) == "purchase"]
    assert kept["total_units"] == sum(r["quantity"] for r in purchases)
    assert kept["by_product"] and set(kept["by_product"]) == {r["product_id"] for r in written}


QUIET = """\
name: quiet
catalog: {products: 3, categories: {a: {price: [1, 2]}}}
users: {population: 5}
funnel: {cart_rate: 0.5, purchase_rate: 0.5}
timeline: [{phase: nothing, duration: 1000000000s, rate: 0}, {phase: late, rate: 5}]
"""


def test_a_run_of_empty_seconds_stops_on_sigterm(tmp_path: Path) -> None:
    # A billion silent seconds before the first event: the run is in the loop over
    # them when the signal comes, and it stops there (it used to ignore the signal).
    scenario = tmp_path / "quiet.yaml"
    scenario.write_text(QUIET)
    out, ledger = tmp_path / "run.jsonl", tmp_path / "ledger.json"
    process = start(tmp_path, "--scenario", str(scenario), "--events", "10",
                    "--out", str(out), "--ledger", str(ledger))  # fmt: skip
    wait_for(out.exists)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == Interrupted.exit_code, stderr
    assert stderr == f"Error: interrupted after 0 events, all in {out}; ledger in {ledger}\n"
    assert out.read_text() == ""
    assert json.loads(ledger.read_text())["total_events"] == 0
