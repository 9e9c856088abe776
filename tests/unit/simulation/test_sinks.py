"""The Avro file sink: the same bytes as fastavro's Writer fed record by record."""

from __future__ import annotations

import hashlib
import io
import itertools
from pathlib import Path

import fastavro
import pytest
from fastavro.write import Writer

from producer.contract.catalog import SchemaFile, bundled_schemas_dir, load_catalog
from producer.events import FlashSaleEvent
from producer.simulation import sinks
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario

CATALOG = load_catalog(bundled_schemas_dir())
MARKER = hashlib.sha256(b"flashsale:test").digest()[:16]


def reference(events: list[FlashSaleEvent], schema: SchemaFile) -> bytes:
    """What fastavro's Writer writes, one record at a time, with the sink's settings."""
    buffer = io.BytesIO()
    writer = Writer(buffer, schema.definition, codec="deflate", sync_marker=MARKER)
    for event in events:
        writer.write(event.to_avro(schema.version))
    writer.flush()
    return buffer.getvalue()


def sunk(events: list[FlashSaleEvent], schema: SchemaFile, path: Path) -> bytes:
    sink = sinks.AvroFileSink(path, schema, sync_marker=MARKER)
    for event in events:
        sink.write(event)
    sink.close()
    return path.read_bytes()


def simulated(count: int, scenario: str = "flash-sale", **kwargs: int) -> list[FlashSaleEvent]:
    run = Simulation(load_scenario(scenario), 3, run_id="sink", **kwargs)
    return list(run.events(max_events=count))


@pytest.mark.parametrize("version", [s.version for s in CATALOG.versions()])
def test_the_file_is_the_writers_byte_for_byte(tmp_path: Path, version: int) -> None:
    schema = CATALOG.get(version)
    events = simulated(12_000)
    data = sunk(events, schema, tmp_path / "run.avro")
    assert data == reference(events, schema)
    # Many blocks, each cut where the Writer cuts one.
    with (tmp_path / "run.avro").open("rb") as f:
        blocks = list(fastavro.block_reader(f))
    assert len(blocks) > 10
    assert sum(b.num_records for b in blocks) == len(events)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_an_empty_or_tiny_run_is_the_writers_too(tmp_path: Path, count: int) -> None:
    schema = CATALOG.latest()
    events = simulated(count)
    assert sunk(events, schema, tmp_path / "run.avro") == reference(events, schema)


def test_a_block_ends_at_the_writers_size_exactly(tmp_path: Path) -> None:
    schema = CATALOG.latest()
    events = simulated(3_000)
    sizes = [len(fastavro_body(e, schema)) for e in events]
    # The first record whose body brings the block to BLOCK_BYTES ends it.
    totals = list(itertools.accumulate(sizes))
    first_block = next(i for i, total in enumerate(totals, 1) if total >= sinks.BLOCK_BYTES)
    sunk(events, schema, tmp_path / "run.avro")
    with (tmp_path / "run.avro").open("rb") as f:
        blocks = list(fastavro.block_reader(f))
    assert blocks[0].num_records == first_block


def fastavro_body(event: FlashSaleEvent, schema: SchemaFile) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed, event.to_avro(schema.version))
    return buffer.getvalue()


def test_a_value_the_fast_writers_leave_is_written_by_fastavro(tmp_path: Path) -> None:
    schema = CATALOG.latest()
    events = simulated(50)
    # A bool is an int to fastavro, not to the fast writers: fastavro writes it.
    events[7] = events[7]._replace(quantity=True)
    data = sunk(events, schema, tmp_path / "run.avro")
    assert data == reference(events, schema)
    with (tmp_path / "run.avro").open("rb") as f:
        assert [r["quantity"] for r in fastavro.reader(f)][7] == 1


def test_a_value_no_writer_takes_raises_fastavros_error(tmp_path: Path) -> None:
    schema = CATALOG.latest()
    event = simulated(1)[0]._replace(quantity="two")
    sink = sinks.AvroFileSink(tmp_path / "run.avro", schema, sync_marker=MARKER)
    with pytest.raises((TypeError, ValueError)) as raised:
        sink.write(event)
    with pytest.raises(type(raised.value)):
        fastavro_body(event, schema)
    sink.close()


def test_shards_and_workers_write_the_writers_bytes(tmp_path: Path) -> None:
    schema = CATALOG.latest()
    for kwargs in ({"shards": 3, "shard": 2}, {"workers": 2, "worker": 1}):
        events = simulated(5_000, **kwargs)
        assert sunk(events, schema, tmp_path / "run.avro") == reference(events, schema)
