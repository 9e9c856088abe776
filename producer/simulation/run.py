"""``flashsale simulate``: a scenario's events to a file, unpaced, with their ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from producer.contract.catalog import SchemaCatalog
from producer.errors import Interrupted, InvalidOption
from producer.paths import check_writable
from producer.simulation.engine import Simulation, new_run_id
from producer.simulation.ledger import Ledger
from producer.simulation.scenario import Scenario
from producer.simulation.sinks import open_sink

__all__ = ["Interrupted", "SimulateResult", "run_simulation"]


@dataclass(frozen=True)
class SimulateResult:
    run_id: str
    events: int
    seconds: int
    out: Path
    ledger: Path | None
    elapsed: float


def run_simulation(
    scenario: Scenario,
    seed: int,
    out: Path,
    catalog: SchemaCatalog,
    *,
    ledger_path: Path | None = None,
    max_events: int | None = None,
    duration: float | None = None,
    workers: int = 1,
    worker: int = 0,
    shards: int = 1,
    shard: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    progress_every: int = 50_000,
    stop: threading.Event | None = None,
    run_id: str | None = None,
) -> SimulateResult:
    """Write the run's events to ``out`` (.avro or .jsonl) and its ledger to ``ledger_path``.

    ``run_id`` names the run (random when not given): the same scenario, seed, schema
    version and run id write the same bytes. Setting ``stop`` ends the run early: what
    was written is closed and in the ledger (marked incomplete), and
    :class:`~producer.errors.Interrupted` says so. ``on_progress(events written,
    simulated seconds done)`` is called every ``progress_every`` events.
    """
    if max_events is None and duration is None and scenario.total_seconds is None:
        raise InvalidOption(
            "",
            f"scenario {scenario.name} runs forever: give {{max_events}} N or {{duration}} 600s",
        )
    if max_events is not None and max_events < 0:
        raise InvalidOption("max_events", f"must not be negative, got {max_events}")
    schema = catalog.get(scenario.schema_version)
    if ledger_path is not None:
        check_writable(ledger_path, "ledger_path")
    simulation = Simulation(
        scenario,
        seed,
        workers=workers,
        worker=worker,
        shards=shards,
        shard=shard,
        run_id=run_id or new_run_id(),
    )
    ledger = Ledger(
        meta={
            "run_id": simulation.run_id,
            "scenario": scenario.name,
            "start": scenario.start.isoformat().replace("+00:00", "Z"),
            "seed": seed,
            "schema_version": scenario.schema_version,
            "workers": workers,
            "worker": worker,
            "shards": shards,
            "shard": shard,
        },
        brands=simulation.brands,
    )
    try:
        name = f"{simulation.run_id}:{scenario.name}:{seed}:v{schema.version}:{worker}/{workers}"
        name += f":shard{shard}/{shards}" if shards > 1 else ""
        sink = open_sink(out, schema, name)
    except OSError as exc:
        raise InvalidOption("out", f"cannot write: {exc.strerror or exc}", out) from exc
    sold_out_ids = simulation.sold_out_ids
    started = time.monotonic()
    written = 0
    complete = False
    stopped = stop.is_set if stop is not None else lambda: False
    try:
        # Checked at every simulated second too: a run of empty seconds still stops.
        events = simulation.events(
            max_events=max_events, max_seconds=duration, on_second=lambda _: not stopped()
        )
        for event in events:
            sink.write(event)
            ledger.record(event, event.event_id in sold_out_ids)
            written += 1
            if written & 0xFF == 0 and stopped():
                break
            if on_progress is not None and written % progress_every == 0:
                on_progress(written, simulation.seconds_done)
        else:
            complete = not stopped()
    finally:
        sink.close()
        if ledger_path is not None:
            ledger.write(ledger_path, complete=complete)
    if not complete:
        where = f"; ledger in {ledger_path}" if ledger_path else ""
        raise Interrupted(f"interrupted after {written} events, all in {out}{where}")
    return SimulateResult(
        run_id=simulation.run_id,
        events=written,
        seconds=simulation.seconds_done,
        out=out,
        ledger=ledger_path,
        elapsed=time.monotonic() - started,
    )
