"""A Silver table made from simulated events, with their ledger: Gold and reconciliation
run on real Delta tables and real engines, without a broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import CommitProperties, Transaction, write_deltalake

from consumers.arrow_types import RENAMED, reader_arrow_schema
from consumers.bronze import BRONZE_SCHEMA, app_id
from consumers.products import ensure_products
from consumers.silver import CONTRACT, COORDINATES
from producer.kafka.catalog import product_records
from producer.simulation.engine import Simulation
from producer.simulation.ledger import Ledger
from producer.simulation.scenario_file import load_scenario

LATE = timedelta(seconds=1.5)
# Bronze's columns that Gold's data quality reads.
RAW = pa.schema(
    [BRONZE_SCHEMA.field(n) for n in ("topic", "partition", "offset", "kafka_timestamp")]
)


def silver_warehouse(
    path: Path, seconds: float = 900, run_id: str = "gold", quiet: tuple[int, ...] = ()
) -> dict[str, Any]:
    """A warehouse whose Silver holds a flash sale's first ``seconds``, but for the
    minutes ``quiet`` (counting from 0), which have no events; its ledger."""
    simulation = Simulation(load_scenario("flash-sale"), 1, run_id=run_id)
    events = list(simulation.events(max_seconds=seconds))
    first = events[0].timestamp_ms // 60_000
    events = [e for e in events if e.timestamp_ms // 60_000 - first not in quiet]
    ledger = Ledger(meta={"run_id": run_id}, brands=simulation.brands)
    ledger.record_many(events, simulation.sold_out_ids)
    rows, bronze = [], []
    for offset, event in enumerate(events):
        datum = event.to_avro(3)
        datum["timestamp"] = datetime.fromtimestamp(event.timestamp_ms / 1000, tz=UTC)
        # Each record reached the broker 1.5 s after its event happened.
        sent = datum["timestamp"] + LATE
        row = {RENAMED.get(k, k): v for k, v in datum.items()}
        row.update(kafka_topic="t", kafka_partition=0, kafka_offset=offset, writer_schema_id=1)
        rows.append({**row, "kafka_timestamp": sent})
        bronze.append({"topic": "t", "partition": 0, "offset": offset, "kafka_timestamp": sent})
    schema = reader_arrow_schema(json.loads(CONTRACT.read_text()), COORDINATES)
    # Silver as its job commits it: with the Bronze offset it has processed.
    done = CommitProperties(app_transactions=[Transaction(app_id("silver", "t", 0), len(rows) - 1)])
    write_deltalake(
        str(path / "silver" / "events"),
        pa.Table.from_pylist(rows, schema=schema),
        commit_properties=done,
    )
    write_deltalake(
        str(path / "bronze" / "events"),
        pa.Table.from_pylist(bronze, schema=RAW),
    )
    # The shop's catalog, as the product dimension keeps it.
    products = [
        {**r, "kafka_topic": "p", "kafka_partition": 0, "kafka_offset": i, "writer_schema_id": 2}
        for i, r in enumerate(product_records(simulation))
    ]
    dimension = ensure_products(path)
    write_deltalake(str(dimension), pa.Table.from_pylist(products), mode="overwrite")
    return dict(json.loads(json.dumps(ledger.to_json())))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("warehouse")
    return path, silver_warehouse(path)
