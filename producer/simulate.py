"""``flashsale simulate``: a scenario's events to a file, unpaced, with their ledger."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from producer.errors import FlashsaleError, UsageError
from producer.ledger import Ledger
from producer.scenario import Scenario
from producer.schemas import SchemaCatalog
from producer.simulator import Simulation
from producer.sinks import open_sink

__all__ = ["Interrupted", "SimulateResult", "run_simulation"]


class Interrupted(FlashsaleError):
    """The run was stopped by the user; what was written is accounted for."""

    exit_code = 130


@dataclass(frozen=True)
class SimulateResult:
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
    on_progress: Callable[[int, int], None] | None = None,
) -> SimulateResult:
    """Write the run's events to ``out`` (.avro or .jsonl) and its ledger to ``ledger_path``."""
    if max_events is None and duration is None and scenario.total_seconds is None:
        raise UsageError(
            f"scenario {scenario.name} runs forever: give --events N or --duration 600s"
        )
    if max_events is not None and max_events < 0:
        raise UsageError(f"--events: must not be negative, got {max_events}")
    schema = catalog.get(scenario.schema_version)
    simulation = Simulation(scenario, seed, workers=workers, worker=worker)
    ledger = Ledger(
        meta={
            "scenario": scenario.name,
            "seed": seed,
            "schema_version": scenario.schema_version,
            "workers": workers,
            "worker": worker,
        }
    )
    try:
        run_id = f"{scenario.name}:{seed}:v{schema.version}:{worker}/{workers}"
        sink = open_sink(out, schema, run_id)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write: {exc.strerror or exc}") from exc
    sold_out_ids = simulation.sold_out_ids
    started = time.monotonic()
    written = 0
    complete = False
    try:
        for event in simulation.events(max_events=max_events, max_seconds=duration):
            sink.write(event)
            ledger.record(event, event.event_id in sold_out_ids)
            written += 1
            if on_progress is not None and written % 50_000 == 0:
                on_progress(written, simulation.seconds_done)
        complete = True
    except KeyboardInterrupt:
        pass
    finally:
        sink.close()
        if ledger_path is not None:
            ledger.write(ledger_path, complete=complete)
    if not complete:
        where = f"; ledger in {ledger_path}" if ledger_path else ""
        raise Interrupted(f"interrupted after {written} events, all in {out}{where}")
    return SimulateResult(
        events=written,
        seconds=simulation.seconds_done,
        out=out,
        ledger=ledger_path,
        elapsed=time.monotonic() - started,
    )
