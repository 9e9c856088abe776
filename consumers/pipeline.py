"""The reference pipeline, end to end: Kafka -> Bronze -> Silver -> Gold."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from consumers.bronze import BronzeIngest, BronzeStats, OnReset
from consumers.errors import PipelineError
from consumers.gold import refresh_gold
from consumers.products import ProductDimension
from consumers.silver import CONTRACT, SilverJob, SilverStats

__all__ = ["PipelineResult", "ReplayResult", "replay_quarantine", "run_pipeline"]


@dataclass
class PipelineResult:
    bronze: BronzeStats
    silver: SilverStats
    kpis: dict[str, pa.Table]
    elapsed: float


def run_pipeline(
    kafka: dict[str, Any],
    registry: dict[str, Any],
    topic: str,
    warehouse: Path,
    *,
    until_idle: bool = True,
    reader_schema: Path = CONTRACT,
    engine: str = "datafusion",
    currencies: tuple[str, ...] = ("USD",),
    products_topic: str | None = None,
    on_step: Callable[[str], None] = lambda _: None,
    stop: threading.Event | None = None,
    on_reset: OnReset = "fail",
    on_bronze: Callable[[BronzeStats], None] | None = None,
) -> PipelineResult:
    """Ingest what the topic holds, decode and check it, and compute Gold.

    ``currencies`` are those the shop prices in: Silver quarantines money in any other.
    ``products_topic`` is the shop's catalog (compacted, keyed by product id): it is
    taken in first, so every event is checked against the catalog published before it.
    Without it, or when the topic does not exist, a product keeps the category Silver
    first saw it with.
    Setting ``stop`` ends Bronze's ingest at its next commit; Silver and Gold then
    take in what was ingested. A storage failure (a damaged table, a full disk) ends
    the run as a PipelineError naming the warehouse; what was committed before stays
    committed.
    A topic that is not the log Bronze's stored offsets point into (recreated, reset,
    truncated) ends the run as a :class:`~consumers.bronze.TopicReset` before anything
    is read; ``on_reset="replay"`` reads it again from its start as a new epoch,
    keeping the rows of the old one.
    ``on_bronze`` sees Bronze's counts and lag after each of its commits.
    """
    started = time.monotonic()
    try:
        if products_topic is not None:
            bronze_products = BronzeIngest(
                kafka,
                products_topic,
                warehouse / "bronze" / "products",
                missing_ok=True,
                on_reset=on_reset,
            ).run(until_idle=True)
            catalog = ProductDimension(warehouse, registry, products_topic).run()
            on_step(
                f"catalog: {catalog.products} products ({bronze_products.records} records "
                f"read, {catalog.changed} changed, {catalog.removed} removed, "
                f"{catalog.quarantined} quarantined)"
            )
        ingest = BronzeIngest(kafka, topic, warehouse / "bronze" / "events", on_reset=on_reset)
        bronze = ingest.run(until_idle=until_idle, stop=stop, on_commit=on_bronze)
        on_step(f"bronze: {bronze.records} records in {bronze.commits} commits")
        pa.default_memory_pool().release_unused()  # what Bronze's reads held, given back
        silver = SilverJob(warehouse, registry, topic, reader_schema, currencies).run()
        on_step(
            f"silver: {silver.read} read, {silver.inserted} inserted, {silver.duplicates} "
            f"duplicates dropped, {silver.quarantined} quarantined"
        )
        pa.default_memory_pool().release_unused()  # Gold's first computation peaks next
        kpis, _, how = refresh_gold(warehouse, engine)
    except (DeltaError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]  # delta-rs appends a backtrace
        raise PipelineError(
            f"pipeline: warehouse {warehouse}: {type(exc).__name__}: {first}"
        ) from exc
    on_step(
        f"gold: {len(kpis)} KPI tables {how.value} ({engine})"
        if how
        else f"gold: {len(kpis)} KPI tables, {how.value}"
    )
    return PipelineResult(bronze, silver, kpis, time.monotonic() - started)


@dataclass
class ReplayResult:
    silver: SilverStats  # read: records replayed; released: those that left the quarantine
    kpis: dict[str, pa.Table]


def replay_quarantine(
    registry: dict[str, Any],
    topic: str,
    warehouse: Path,
    *,
    reason: str | None = None,
    reader_schema: Path = CONTRACT,
    engine: str = "datafusion",
    currencies: tuple[str, ...] = ("USD",),
) -> ReplayResult:
    """Decode and check the topic's quarantined records again (those whose reason
    starts with ``reason``), once the reader or the rules are fixed: those that pass
    enter Silver through the identity rules and leave the quarantine; then Gold is
    computed again. A reader that cannot read a writer of them is refused first, as in
    :func:`run_pipeline`."""
    try:
        silver = SilverJob(warehouse, registry, topic, reader_schema, currencies)
        stats = silver.replay_quarantine(reason)
        kpis: dict[str, pa.Table] = {}
        if DeltaTable.is_deltatable(str(warehouse / "silver" / "events")):
            kpis, _, _ = refresh_gold(warehouse, engine)
    except (DeltaError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise PipelineError(
            f"pipeline: warehouse {warehouse}: {type(exc).__name__}: {first}"
        ) from exc
    return ReplayResult(stats, kpis)
