"""Prometheus metrics of a produce run (``produce --metrics-port N``).

The producer's per-record path stays as it is: it counts events by type in a plain
dict, and the run hands what it counted to :class:`ProduceMetrics` when it folds its
delivery reports (about twice a second, and once at the end). A scrape therefore
sees the run as of its last fold; after the run, the counters equal the ledger's.

=========================================  =========  ===================================
metric                                     kind       labels
=========================================  =========  ===================================
``flashsale_events_sent_total``            counter    ``type``: view, cart, purchase
``flashsale_events_acknowledged_total``    counter    ``type``
``flashsale_events_failed_total``          counter    ``type``
``flashsale_events_in_flight``             gauge
``flashsale_delivery_latency_seconds``     histogram  (one delivery in eight is sampled)
=========================================  =========  ===================================
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from producer.errors import InvalidOption

__all__ = ["LATENCY_BUCKETS", "PipelineMetrics", "ProduceMetrics"]

# Delivery latency, in seconds: from a local broker's milliseconds to a cloud's seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Served:
    """Metrics in a registry of their own, served over HTTP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` in a daemon thread; a busy port is refused in
        one line before the run starts."""
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise InvalidOption("metrics_port", f"cannot listen: {exc.strerror}", port) from exc
        start_http_server(port, addr=host, registry=self.registry)


class ProduceMetrics(_Served):
    """The metrics of one produce run."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.sent = Counter(
            "flashsale_events_sent", "Events handed to the Kafka producer.", ["type"], registry=r
        )
        self.acked = Counter(
            "flashsale_events_acknowledged",
            "Events the broker acknowledged (what the ledger counts).",
            ["type"],
            registry=r,
        )
        self.failed = Counter(
            "flashsale_events_failed",
            "Events whose delivery report was an error (never in the ledger).",
            ["type"],
            registry=r,
        )
        self.in_flight = Gauge(
            "flashsale_events_in_flight", "Events sent and not yet reported.", registry=r
        )
        self.latency = Histogram(
            "flashsale_delivery_latency_seconds",
            "Delivery latency: from produce() to the broker's acknowledgement (sampled).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def fold(
        self,
        sent: Mapping[Any, int],
        acked: Mapping[Any, int],
        failed: Mapping[Any, int],
        latencies_ms: Iterable[float],
        in_flight: int,
    ) -> None:
        """Add what was counted since the last fold (counts keyed by event type)."""
        for counter, counts in ((self.sent, sent), (self.acked, acked), (self.failed, failed)):
            for kind, count in counts.items():
                if count:
                    counter.labels(type=_label(kind)).inc(count)
        observe = self.latency.observe
        for ms in latencies_ms:
            observe(ms / 1000.0)
        self.in_flight.set(in_flight)


def _label(kind: Any) -> str:
    return str(getattr(kind, "value", kind))


class PipelineMetrics(_Served):
    """The metrics of ``pipeline run --metrics-port N``, across its rounds.

    ==========================================  =======  ================================
    metric                                      kind     labels
    ==========================================  =======  ================================
    ``flashsale_pipeline_records_total``        counter  ``layer``: bronze (read from
                                                         Kafka), silver (inserted)
    ``flashsale_pipeline_duplicates_total``     counter
    ``flashsale_pipeline_quarantined_total``    counter  ``reason``: the reason's kind
    ``flashsale_pipeline_lag``                  gauge    ``partition``: records in the
                                                         topic not yet in Bronze
    ``flashsale_pipeline_rounds_total``         counter
    ==========================================  =======  ================================
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.records = Counter(
            "flashsale_pipeline_records",
            "Records per layer: read from Kafka into Bronze, inserted into Silver.",
            ["layer"],
            registry=r,
        )
        self.duplicates = Counter(
            "flashsale_pipeline_duplicates", "Duplicates Silver dropped.", registry=r
        )
        self.quarantined = Counter(
            "flashsale_pipeline_quarantined",
            "Records Silver quarantined, by the kind of reason.",
            ["reason"],
            registry=r,
        )
        self.lag = Gauge(
            "flashsale_pipeline_lag",
            "Records in the topic not yet in Bronze, as of Bronze's newest commit.",
            ["partition"],
            registry=r,
        )
        self.rounds = Counter("flashsale_pipeline_rounds", "Rounds completed.", registry=r)
        self._bronze_seen = 0

    def bronze(self, records: int, lag: Mapping[int, int]) -> None:
        """Bronze's counts so far in this round (``records``) and its lag."""
        self.records.labels(layer="bronze").inc(max(0, records - self._bronze_seen))
        self._bronze_seen = records
        for partition, behind in lag.items():
            self.lag.labels(partition=str(partition)).set(behind)

    def round(self, inserted: int, duplicates: int, reasons: Mapping[str, int]) -> None:
        """A round ended: Silver's counts; Bronze's next round counts from zero."""
        self.records.labels(layer="silver").inc(inserted)
        self.duplicates.inc(duplicates)
        for reason, count in reasons.items():
            self.quarantined.labels(reason=reason).inc(count)
        self.rounds.inc()
        self._bronze_seen = 0
