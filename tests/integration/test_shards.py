"""Shards on the real stack: two producer processes, one run, ledgers that add up to the topic."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from deltalake import DeltaTable

from consumers.reconcile import merge_ledgers
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario
from tests.integration.conftest import Endpoints, cli, config_for, stack_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 3000  # the run's, over both shards


def test_shard_ledgers_add_up_to_what_the_topic_holds(
    stack: Endpoints, topic: str, unique: str, tmp_path: Path
) -> None:
    register_contract(Registry(config_for(stack)), load_catalog(bundled_schemas_dir()), topic=topic)
    run_id = f"shards-{unique}"
    ledgers = [tmp_path / f"shard{i}.json" for i in range(2)]

    # Both shards at once, as two processes would run on two machines.
    def shard_process(i: int, ledger: Path) -> subprocess.Popen[str]:
        args = ["produce", "--scenario", "flash-sale", "--seed", "3", "--events", str(EVENTS),
                "--max-rate", "--quiet", "--topic", topic, "--create-topic", "--run-id", run_id,
                "--shards", "2", "--shard", str(i), "--ledger", str(ledger)]  # fmt: skip
        return subprocess.Popen(
            [sys.executable, "-m", "producer.cli", *args],
            env=stack_env(stack),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    procs = [shard_process(i, ledger) for i, ledger in enumerate(ledgers)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    shard = [json.loads(path.read_text()) for path in ledgers]
    assert [(s["shards"], s["shard"], s["run_id"]) for s in shard] == [
        (2, 0, run_id),
        (2, 1, run_id),
    ]
    assert [s["total_events"] for s in shard] == [EVENTS // 2, EVENTS // 2]

    warehouse = tmp_path / "warehouse"
    ran = cli(stack, "pipeline", "run", "--until-idle", "--warehouse", str(warehouse),
              "--topic", topic)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    rows = DeltaTable(str(warehouse / "silver" / "events")).to_pyarrow_table().to_pylist()
    # What a consumer read from the topic is the two shards' events, no id shared.
    assert len({r["event_id"] for r in rows}) == len(rows) == EVENTS
    merged = merge_ledgers(shard)
    assert merged["total_events"] == EVENTS
    units: Counter[str] = Counter()
    revenue: dict[str, Decimal] = {}
    for r in rows:
        if r["event_type"] == "purchase":
            units[r["product_id"]] += r["quantity"]
            revenue[r["product_id"]] = revenue.get(r["product_id"], Decimal(0)) + r["revenue"]
    assert units == Counter({p: t["units"] for p, t in merged["by_product"].items() if t["units"]})
    assert revenue == {
        p: Decimal(t["revenue"]) for p, t in merged["by_product"].items() if t["purchase"]
    }
    # Summed over the shards, no product sells more than the shop's stock.
    simulation = Simulation(load_scenario("flash-sale"), 3)
    stock = simulation.catalog_stock
    assert stock is not None
    index = {p.product_id: p.index for p in simulation.products}
    assert units and all(sold <= stock[index[p]] for p, sold in units.items())

    flags = [arg for path in ledgers for arg in ("--verify-ledger", str(path))]
    verified = cli(stack, "kpis", "--warehouse", str(warehouse), *flags)
    assert verified.returncode == 0, verified.stderr + verified.stdout
    assert f"({EVENTS} events from 1 run" in verified.stdout
