"""``pipeline compact`` on a warehouse of many small runs: fewer files, the same rows and KPIs."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable

from consumers.maintenance import delta_tables
from consumers.pipeline import run_pipeline
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.events import products_topic
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.scenario_file import load_scenario
from tests.integration.conftest import Endpoints, cli, config_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUNDS = 3


def snapshot(warehouse: Path) -> dict[str, list[str]]:
    """Every table's rows, in a stable order."""
    return {
        path.relative_to(warehouse).as_posix(): sorted(
            repr(sorted(row.items()))
            for row in DeltaTable(str(path)).to_pyarrow_table().to_pylist()
        )
        for path in delta_tables(warehouse)
    }


def live_files(warehouse: Path) -> dict[str, int]:
    return {
        path.relative_to(warehouse).as_posix(): len(DeltaTable(str(path)).file_uris())
        for path in delta_tables(warehouse)
    }


def test_compact_keeps_every_row_and_kpi_and_leaves_fewer_files(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    config = config_for(stack)
    catalog = load_catalog(bundled_schemas_dir())
    register_contract(Registry(config), catalog, topic=topic)
    warehouse = tmp_path / "warehouse"
    ledgers = []
    # Many small runs: each round produces a little and drains it, a commit per table.
    for i in range(ROUNDS):
        ledger = tmp_path / f"round{i}.json"
        options = ProduceOptions(topic=topic, max_events=400, speed=None, create_topic=True,
                                 ledger_path=ledger)  # fmt: skip
        stream = StreamProducer(config, catalog, load_scenario("flash-sale"), i, options)
        stream.preflight()
        assert stream.run().ok
        run_pipeline(config.kafka(), config.registry(), topic, warehouse,
                     products_topic=products_topic(topic))  # fmt: skip
        ledgers += ["--verify-ledger", str(ledger)]
    before_rows, before_files = snapshot(warehouse), live_files(warehouse)
    kpis_before = cli(stack, "kpis", "--warehouse", str(warehouse), *ledgers)
    assert kpis_before.returncode == 0, kpis_before.stderr
    assert before_files["bronze/events"] >= ROUNDS
    assert before_files["silver/events"] >= ROUNDS

    unsafe = cli(stack, "pipeline", "compact", "--warehouse", str(warehouse),
                 "--retention-hours", "0")  # fmt: skip
    assert unsafe.returncode == 2
    assert len(unsafe.stderr.splitlines()) == 1
    assert "below the table's 168h" in unsafe.stderr and "--force" in unsafe.stderr
    assert live_files(warehouse) == before_files  # refused before any table was touched

    compacted = cli(stack, "pipeline", "compact", "--warehouse", str(warehouse))
    assert compacted.returncode == 0, compacted.stderr
    after_files = live_files(warehouse)
    for table, files in before_files.items():
        assert after_files[table] <= files
        assert f"{table}: {files} files -> {after_files[table]}, 0 vacuumed" in compacted.stdout
    assert after_files["bronze/events"] < before_files["bronze/events"]
    assert after_files["silver/events"] < before_files["silver/events"]
    # Every row of every table, and every KPI, as before; the ledgers still verify.
    assert snapshot(warehouse) == before_rows
    kpis_after = cli(stack, "kpis", "--warehouse", str(warehouse), *ledgers)
    assert kpis_after.returncode == 0, kpis_after.stderr
    assert kpis_after.stdout == kpis_before.stdout
