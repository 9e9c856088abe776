"""Gold updated minute by minute over real runs: Bronze and Silver's own jobs take in a
growing topic, and after each, Gold's per-minute tables updated from the Gold before
equal every table computed whole from Silver."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from consumers.bronze import BronzeIngest
from consumers.evolve import arrow
from consumers.pipeline import run_pipeline
from consumers.silver import SilverJob
from tests.integration.conftest import Endpoints, config_for
from tests.integration.test_pipeline import fabricated, newest_records, produce, resend
from tests.unit.consumers.test_gold_minutes import gold_is_whole_silver

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_gold_updated_run_by_run_equals_gold_computed_whole(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    produce(stack, topic, tmp_path / "ledger.json", 90, switch_at=1)
    config = config_for(stack)
    first = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert first.silver.inserted > 0
    header, schema, written = newest_records(stack, topic)
    datum = written[0][1]
    purchase = next(d for _, d in written if d["event_type"] == "purchase")
    forged = {**datum, "event_id": "forged-1", "event_type": "view", "quantity": 1}
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})

    def run(*records: tuple[bytes, int]) -> None:
        for value, partition in records:
            producer.produce(topic, value, b"k", partition=partition)
        assert producer.flush(10) == 0
        BronzeIngest(config.kafka(), topic, warehouse / "bronze" / "events").run(until_idle=True)
        SilverJob(warehouse, config.registry(), topic).run()
        gold_is_whole_silver(warehouse)

    # A new event in an old minute of event time, and a record quarantined.
    run(
        (fabricated(header, forged, schema), 0),
        (fabricated(header, purchase, schema, event_id="eur-1", currency="EUR"), 1),
    )
    # forged-1 again with other content: withdrawn from Silver, both copies quarantined.
    run((fabricated(header, forged, schema, quantity=2), 2))
    reasons = sorted(
        arrow(DeltaTable(str(warehouse / "silver" / "quarantine")))["reason"].to_pylist()
    )
    assert [r.split(":")[0] for r in reasons] == ["conflict", "conflict", "foreign currency"]
    silver = arrow(DeltaTable(str(warehouse / "silver" / "events")), ["event_id"])
    assert "forged-1" not in silver["event_id"].to_pylist()
    # Nothing but duplicates.
    assert resend(stack, topic, 50) == 50
    run()
    # Nothing new: the pipeline reads Gold as it stands.
    again = run_pipeline(config.kafka(), config.registry(), topic, warehouse)
    assert again.bronze.records == 0
