"""Deliveries that fail, through the run's real delivery callback.

The producer is a stand-in for the client (no broker here); it reports each record the
way librdkafka does: ``(None, message)`` when acknowledged, ``(KafkaError, message)``
when not, and the message carries the record's value. The run itself, its callback,
its ledger and its result are the real ones; the registry is confluent's ``mock://``.
What the ledger holds is checked against a recount of the acknowledged records' bytes.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from producer.config import load_client_config
from producer.contract.catalog import KEY_FAMILY, bundled_schemas_dir, load_catalog
from producer.errors import UsageError
from producer.kafka import produce as produce_module
from producer.kafka.produce import ProduceOptions, ProduceResult, StreamProducer
from producer.registry.client import SERIALIZER_CONF
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario
from tests.unit.simulation.test_ledger import recount

# Which records fail: (index of the record in the run) -> the error it fails with, or None.
Outcome = Callable[[int], KafkaError | None]


class StandInProducer:
    """Queues records and reports them on poll/flush, as librdkafka's client does;
    ``unreported`` records stay in flight through the flush (a flush timeout)."""

    def __init__(self, outcome: Outcome, unreported: int = 0) -> None:
        self.outcome = outcome
        self.unreported = unreported
        self.queued: list[tuple[int, bytes, bytes, Callable[..., None]]] = []
        self.acked_values: list[bytes] = []
        self.count = 0

    def produce(self, topic: str, value: bytes, key: bytes, partition: int,
                callback: Callable[..., None], timestamp: int = 0) -> None:  # fmt: skip
        self.queued.append((self.count, value, key, callback))
        self.count += 1

    def poll(self, timeout: float = 0) -> int:
        return self._report(len(self.queued))

    def flush(self, timeout: float = 0) -> int:
        self._report(len(self.queued) - self.unreported)
        return len(self.queued)

    def _report(self, n: int) -> int:
        reported, self.queued = self.queued[:n], self.queued[n:]
        for index, value, key, callback in reported:
            error = self.outcome(index)
            message = Message(topic="t", partition=0, offset=index, key=key, value=value,
                              latency=0.002, error=error)  # fmt: skip
            if error is None:
                self.acked_values.append(value)
            callback(error, message)
        return len(reported)


def run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: Outcome,
    events: int | None = 400,
    unreported: int = 0,
    **more: Any,
) -> tuple[ProduceResult, dict[str, Any], list[dict[str, Any]]]:
    """A real run into the stand-in: its result, its ledger, and the acknowledged
    records decoded from their bytes."""
    catalog = load_catalog(bundled_schemas_dir())
    scenario = load_scenario("flash-sale").with_overrides(schema_version=1)
    ledger_path = tmp_path / "ledger.json"
    config = load_client_config(
        {"bootstrap.servers": "127.0.0.1:1", "schema.registry.url": "http://127.0.0.1:1"},
        environ={},
    )
    options = ProduceOptions(topic="t", max_events=events, speed=None, catalog=False,
                             ledger_path=ledger_path, **more)  # fmt: skip
    stream = StreamProducer(config, catalog, scenario, 5, options)
    schema = catalog.get(scenario.schema_version)
    # Registered as `schemas register` would: by a serializer allowed to, on the mock.
    registry = SchemaRegistryClient.new_client({"url": f"mock://deliveries-{id(tmp_path)}"})
    conf = {**SERIALIZER_CONF, "auto.register.schemas": True}
    first = next(iter(Simulation(scenario, 5).events(max_events=1)))
    AvroSerializer(registry, schema.text, lambda e, ctx: e.to_avro(schema.version), conf=conf)(
        first, SerializationContext("t", MessageField.VALUE)
    )
    AvroSerializer(registry, catalog.latest(KEY_FAMILY).text, conf=conf)(
        first.user_id, SerializationContext("t", MessageField.KEY)
    )
    stream.registry.client = registry
    stand_in = StandInProducer(outcome, unreported)
    monkeypatch.setattr(produce_module, "Producer", lambda conf: stand_in)
    result = stream.run()
    return result, *_outcome(stand_in, result, schema, ledger_path, events)


def _outcome(
    stand_in: StandInProducer,
    result: ProduceResult,
    schema: Any,
    ledger_path: Path,
    events: int | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = [
        fastavro.schemaless_reader(io.BytesIO(value[5:]), schema.parsed)
        for value in stand_in.acked_values
    ]
    if events is not None:
        assert len(stand_in.acked_values) + stand_in.unreported + result.failed == events
    return json.loads(ledger_path.read_text()), records


def timed_out(index: int) -> KafkaError | None:
    return KafkaError(KafkaError._MSG_TIMED_OUT) if index % 3 == 1 else None


def assert_ledger_is_the_recount(ledger: dict[str, Any], records: list[dict[str, Any]]) -> None:
    expected = recount(records)
    for key in ("total_events", "total_revenue", "by_minute", "by_category", "by_product"):
        assert ledger[key] == expected[key], key


def test_failed_deliveries_are_counted_and_left_out_of_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, ledger, records = run(tmp_path, monkeypatch, timed_out, events=400)
    assert (result.sent, result.acked, result.failed, result.unconfirmed) == (400, 267, 133, 0)
    assert result.acked + result.failed == result.sent
    assert dict(result.errors) == {"_MSG_TIMED_OUT": 133}
    assert not result.ok and result.lost == 133
    assert ledger["complete"] is False
    assert ledger["total_events"] == len(records) == 267
    assert_ledger_is_the_recount(ledger, records)


def test_every_delivery_failing_leaves_an_empty_incomplete_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(index: int) -> KafkaError:
        return KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)

    result, ledger, records = run(tmp_path, monkeypatch, refused, events=50)
    assert (result.sent, result.acked, result.failed) == (50, 0, 50)
    assert dict(result.errors) == {"TOPIC_AUTHORIZATION_FAILED": 50}
    assert records == [] and ledger["total_events"] == 0 and ledger["total_revenue"] == "0.00"
    assert ledger["complete"] is False


def test_records_unconfirmed_at_the_flush_timeout_are_lost_not_acked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, ledger, records = run(
        tmp_path, monkeypatch, lambda index: None, events=300, unreported=44
    )
    # Records are reported every 256 sends: the last 44 are still queued at the flush.
    assert (result.sent, result.acked, result.failed, result.unconfirmed) == (300, 256, 0, 44)
    assert not result.ok and result.lost == 44
    assert ledger["complete"] is False
    assert ledger["total_events"] == 256
    assert_ledger_is_the_recount(ledger, records)


def test_a_run_where_every_delivery_is_acknowledged_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, ledger, records = run(tmp_path, monkeypatch, lambda index: None, events=300)
    assert (result.sent, result.acked, result.failed, result.unconfirmed) == (300, 300, 0, 0)
    assert result.ok and ledger["complete"] is True
    assert_ledger_is_the_recount(ledger, records)


def test_a_run_cut_short_by_the_registry_leaves_an_incomplete_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run switches to v3 at 5s, but v3 is not registered (only v1 is, on the
    # mock): its first record fails to encode and the run ends in that error. What
    # was sent before was acknowledged, yet the run did not end: not complete.
    ledger_path = tmp_path / "ledger.json"
    with pytest.raises(SchemaRegistryError, match="Schema Not Found"):
        run(tmp_path, monkeypatch, lambda index: None, events=None, duration=60,
            switch_at=5, switch_version=3)  # fmt: skip
    ledger = json.loads(ledger_path.read_text())
    assert ledger["total_events"] > 0
    assert ledger["complete"] is False


@pytest.mark.parametrize(
    ("schema_id_in", "error"),
    [("header", "preflight() finds the GUIDs first"), ("middle", "must be prefix or header")],
)
def test_a_run_never_writes_a_format_other_than_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema_id_in: str, error: str
) -> None:
    # A header run whose GUIDs were never looked up (no preflight), or a format that
    # does not exist, is refused before anything is sent: never prefix-framed instead.
    with pytest.raises(UsageError, match=re.escape(error)):
        run(tmp_path, monkeypatch, lambda index: None, schema_id_in=schema_id_in)
    assert not (tmp_path / "ledger.json").exists()
