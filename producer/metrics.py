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

__all__ = ["LATENCY_BUCKETS", "ProduceMetrics"]

# Delivery latency, in seconds: from a local broker's milliseconds to a cloud's seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ProduceMetrics:
    """The metrics of one produce run, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
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
