"""What a produce run is asked to do, and what it reports: its options, its progress
snapshots and its result."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from producer.events import DEFAULT_TOPIC

__all__ = ["ProduceOptions", "ProduceResult", "Progress"]


@dataclass(frozen=True)
class ProduceOptions:
    topic: str = DEFAULT_TOPIC
    max_events: int | None = None
    duration: float | None = None
    speed: float | None = 1.0  # None: as fast as the broker takes them
    create_topic: bool = False
    partitions: int = 6
    ledger_path: Path | None = None
    workers: int = 1
    worker: int = 0
    shards: int = 1
    shard: int = 0
    connect_timeout: float = 10.0
    flush_timeout: float = 30.0
    # Switch the value schema mid-run: from this many simulated seconds on, records
    # are written with ``switch_version`` (a rolling producer upgrade, as it happens).
    switch_at: float | None = None
    switch_version: int | None = None
    # The run's id (random when None): event ids derive from it; the same id again is a
    # replay whose records are true duplicates of the first run's.
    run_id: str | None = None
    # The Kafka record timestamp: "produce" (the producer's clock) or "event".
    timestamp: str = "produce"
    # Publish the shop's catalog to the products topic before the events (worker 0
    # or shard 0 of a split run does it for all).
    catalog: bool = True
    # Where a value names its writer schema: the 5-byte "prefix" (magic 0 + id), or the
    # "header" __value_schema_id (magic 1 + the schema's GUID), the value bare.
    schema_id_in: str = "prefix"


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running produce, for the live line."""

    phase: str
    target_rate: float
    achieved_rate: float
    sent: int
    acked: int
    failed: int
    in_flight: int
    p50_ms: float | None
    p99_ms: float | None
    second: int = 0  # the simulated clock: seconds since the scenario's start


@dataclass
class ProduceResult:
    run_id: str = ""
    sent: int = 0
    acked: int = 0
    failed: int = 0
    unconfirmed: int = 0  # still in flight when the flush timed out
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    interrupted: bool = False
    ledger_path: Path | None = None
    schema_id: int | None = None
    switched_schema_id: int | None = None  # the id written after a mid-run switch
    catalog_topic: str | None = None  # where the catalog went (None: not published)
    catalog_products: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.failed + self.unconfirmed

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.acked == self.sent

    def percentile(self, q: float, last: int | None = None) -> float | None:
        """Delivery latency percentile, over every sample or the ``last`` ones."""
        sample = self.latencies_ms[-last:] if last else self.latencies_ms
        if not sample:
            return None
        ordered = sorted(sample)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
