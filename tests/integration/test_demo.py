"""`flashsale demo`, the README's first command, from nothing to a reconciled verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.stack import free_port
from tests.integration.conftest import Endpoints, cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_the_whole_flow_and_reconciles(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    ports = ["--broker-port", str(free_port()), "--registry-port", str(free_port())]
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "producer.cli",
                "demo",
                "--data-dir",
                str(data),
                *ports,
                "--speed",
                "120",
                "--duration",
                "4m",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ.copy(),
            check=False,
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "producer.cli", "local", "down", "--data-dir", str(data)],
            capture_output=True,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    for step in (
        "1/6 local stack",
        "2/6 schemas registered",
        "3/6 producing",
        "4/6 pipeline",
        "5/6 KPIs",
        "6/6 compacting the tables of",
    ):
        assert step in out
    # The final step compacts every layer's tables, the files of each listed.
    compacted = out.split("6/6 compacting", 1)[1]
    for table in ("bronze/events", "silver/events", "silver/products"):
        assert f"    {table}: " in compacted
    assert "schema v1 switching to v3 at 2 min" in out
    assert "reconciled: every Gold table equals the ledger (" in out
    ledgers = list((data / "demo").glob("*/ledger.json"))
    assert len(ledgers) == 1
    # The report of the run is written beside its ledger, reconciled with it.
    report = ledgers[0].parent / "report.html"
    assert f"report: {report}\n" in out
    assert 'class="ok">Every KPI table a ledger determines equals the ledgers.' in (
        report.read_text(encoding="utf-8")
    )
    # The sale ran now (a paced run starts at the wall clock), and its peak (from 125 s
    # to 180 s after the start) makes the tallest bar of the chart.
    start = datetime.fromisoformat(json.loads(ledgers[0].read_text())["start"])
    assert abs((datetime.now(UTC) - start).total_seconds()) < 300
    chart = out.split("events per minute\n", 1)[1].splitlines()
    bars = {line.split()[0]: line.count("#") for line in chart if line.startswith("  ")}
    tallest = max(bars, key=lambda minute: bars[minute])
    assert tallest in {f"{start + timedelta(minutes=m):%H:%M}" for m in (2, 3)}
    assert bars[tallest] == 40
    assert bars[f"{start:%H:%M}"] < 5


def test_demo_external_runs_against_a_configured_stack(stack: Endpoints, tmp_path: Path) -> None:
    # What `docker compose run --rm flashsale demo --external` does: the broker and the
    # registry come from the environment, as the compose service sets them; no local
    # stack is started (its data dir gets no stack files, and nothing to stop).
    data = tmp_path / "demo"
    result = cli(stack, "demo", "--external", "--data-dir", str(data),
                 "--speed", "60", "--duration", "1m")  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert f"1/6 external stack: {stack.bootstrap_servers}, {stack.registry_url}" in out
    assert "reconciled: every Gold table equals the ledger (" in out
    assert "local down" not in out
    assert sorted(p.name for p in data.iterdir()) == ["demo"]  # a warehouse, no stack
    (ledger,) = (data / "demo").glob("*/ledger.json")
    assert json.loads(ledger.read_text())["complete"] is True


def test_demo_refuses_connection_flags_without_external(stack: Endpoints, tmp_path: Path) -> None:
    result = cli(stack, "demo", "--data-dir", str(tmp_path), "--bootstrap-servers", "x:1")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: --bootstrap-servers needs --external ")
    assert not any(tmp_path.iterdir())  # refused before anything was started
