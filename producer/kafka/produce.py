"""The Avro producer: a scenario streamed into Kafka, every record acknowledged or counted.

Values go through confluent-kafka's ``AvroSerializer`` with ``auto.register.schemas``
and ``use.latest.version`` off and the topic subject strategy set explicitly, so the
record carries exactly the schema version the scenario names, which must already be
registered. The serializer writes the first record and resolves the registered id;
the rest are written byte-identically without its per-record work
(:mod:`producer.kafka.encoding`). Keys (the user id) are Avro strings under
``<topic>-key``; a user's key bytes are serialized once and reused.

The producer is idempotent with ``acks=all``. Each record's delivery report decides
its fate: acknowledged records go to the ledger, failed ones are counted by error.
A full local queue (``BufferError``) is handled by serving delivery reports and
retrying, never by dropping. Stopping (SIGINT/SIGTERM through ``stop``) ends
generation, flushes within a bounded time and reports what was not confirmed.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from producer.config import ClientConfig
from producer.contract.catalog import KEY_FAMILY, PRODUCT_FAMILY, SchemaCatalog, SchemaFile
from producer.errors import ConfigError, InvalidOption, SchemaNotRegistered, UsageError
from producer.events import EventType, FlashSaleEvent
from producer.kafka.admin import cluster_metadata, create_topic, librdkafka_log, require_topic
from producer.kafka.catalog import COMPACTED, product_records, products_topic, publish_catalog
from producer.kafka.consume import VALUE_SCHEMA_ID_HEADER
from producer.kafka.encoding import FramedAvroEncoder, FramedKeyEncoder
from producer.kafka.outcome import ProduceOptions, ProduceResult, Progress
from producer.metrics import ProduceMetrics
from producer.paths import check_writable
from producer.registry.client import SERIALIZER_CONF, Registry, key_subject, value_subject
from producer.simulation.engine import Simulation, new_run_id
from producer.simulation.ledger import Ledger
from producer.simulation.pacing import Pacer
from producer.simulation.scenario import Scenario

__all__ = [
    "PRODUCER_DEFAULTS",
    "SERIALIZER_CONF",
    "ProduceOptions",
    "ProduceResult",
    "Progress",
    "StreamProducer",
    "producer_config",
]

log = logging.getLogger(__name__)

# Tuned for throughput with ordering and no duplicates; each can be overridden.
PRODUCER_DEFAULTS = {
    "enable.idempotence": "true",
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": "20",
    "batch.size": "1000000",
    "queue.buffering.max.messages": "200000",
    "message.timeout.ms": "60000",
}


@contextmanager
def _steady_gc() -> Iterator[None]:
    """Fewer, cheaper garbage collections while records are in flight.

    Up to a queue's worth of events wait for their delivery reports, so they outlive
    the young generations, and each full collection would walk all of them and every
    object loaded before the run: measured, a quarter of the run's time. So the
    objects that exist before the run go to the permanent generation (``gc.freeze``)
    and the young generation is collected less often; both are undone after.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def producer_config(config: ClientConfig) -> dict[str, Any]:
    """librdkafka configuration: defaults, overridden by what the user configured."""
    merged: dict[str, Any] = {**PRODUCER_DEFAULTS, **config.kafka()}
    if merged.get("enable.idempotence") == "true" and merged.get("acks") not in ("all", "-1"):
        raise ConfigError(
            f"acks={merged['acks']} contradicts enable.idempotence=true (which needs acks=all)"
        )
    merged["logger"] = librdkafka_log
    return merged


class StreamProducer:
    """Streams one scenario run into a topic; use :meth:`preflight` then :meth:`run`."""

    def __init__(
        self,
        config: ClientConfig,
        catalog: SchemaCatalog,
        scenario: Scenario,
        seed: int,
        options: ProduceOptions,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.scenario = scenario
        self.seed = seed
        self.options = options
        self.schema = catalog.get(scenario.schema_version)
        self.switch_schema = (
            catalog.require(options.switch_version, "switch_version")
            if options.switch_version is not None
            else None
        )
        if (options.switch_at is None) != (self.switch_schema is None):
            raise UsageError("a schema switch needs both a time and a version")
        self.producer_conf = producer_config(config)  # contradictions refused before anything
        self.registry = Registry(config, timeout=options.connect_timeout)
        # Events carry every field the run will write, whichever version writes them.
        newest = max(scenario.schema_version, options.switch_version or 0)
        self.simulation = Simulation(
            scenario.with_overrides(schema_version=newest),
            seed,
            workers=options.workers,
            worker=options.worker,
            shards=options.shards,
            shard=options.shard,
            run_id=options.run_id or new_run_id(),
        )
        self.run_id = self.simulation.run_id
        self._registered: dict[int, int] = {}  # version -> id, as preflight found them
        # version -> the __value_schema_id header naming it (--schema-id-in header)
        self._headers: dict[int, list[tuple[str, str | bytes | None]]] = {}
        self.product_schema = (
            catalog.latest(PRODUCT_FAMILY)
            if options.catalog
            and options.worker == 0
            and options.shard == 0
            and PRODUCT_FAMILY in catalog.families
            else None
        )
        self.products_topic = products_topic(options.topic)
        # The catalog as the sale opens, taken before the run sells any stock.
        self._products = product_records(self.simulation) if self.product_schema else []

    # ------------------------------------------------------------------ checks

    def preflight(self, need_broker: bool = True) -> None:
        """Fail fast, in one line: broker reachable, schemas registered, topic present.

        Nothing is created before every check has passed.
        """
        if self.options.ledger_path is not None:
            check_writable(self.options.ledger_path, "ledger_path")
        servers, timeout = self.config.bootstrap_servers, self.options.connect_timeout
        metadata = cluster_metadata(self._admin(), servers, timeout) if need_broker else None
        topic = self.options.topic
        subject = value_subject(topic)
        for schema in (self.schema, self.switch_schema):
            if schema is None:
                continue
            found = self.registry.lookup(subject, schema.text)
            if found is not None:
                self._registered[schema.version] = found[0]
                if self.options.schema_id_in == "header":
                    self._headers[schema.version] = self._guid_header(subject, schema)
            else:
                raise SchemaNotRegistered(
                    f"{schema.path.name} (v{schema.version}) is not registered under "
                    f"{subject} at {self.registry.url}",
                    topic,
                )
        if KEY_FAMILY in self.catalog.families:
            key = self.catalog.latest(KEY_FAMILY)
            if self.registry.lookup(key_subject(topic), key.text) is None:
                raise SchemaNotRegistered(
                    f"the key schema is not registered under {key_subject(topic)} at "
                    f"{self.registry.url}",
                    topic,
                )
        products = self.products_topic
        product = self.product_schema
        if (
            product is not None
            and self.registry.lookup(value_subject(products), product.text) is None
        ):
            raise SchemaNotRegistered(
                f"{product.path.name} is not registered under "
                f"{value_subject(products)} at {self.registry.url}",
                topic,
            )
        if metadata is None:
            return
        if topic not in metadata.topics:
            if not self.options.create_topic:
                require_topic(metadata, topic, servers)
            create_topic(self._admin_conf(), topic, self.options.partitions, timeout)
        if self.product_schema is not None and products not in metadata.topics:
            # The shop's own dimension topic: made when missing, compacted, one partition.
            create_topic(self._admin_conf(), products, 1, timeout, COMPACTED)

    def _guid_header(
        self, subject: str, schema: SchemaFile
    ) -> list[tuple[str, str | bytes | None]]:
        """The record header that names ``schema`` by its GUID, as Confluent's header
        serializer writes it: magic byte 1, then the GUID's 16 bytes."""
        guid = self.registry.guid(subject, schema.text)
        if guid is None:
            raise UsageError(
                f"schema id in header: the registry at {self.registry.url} gives "
                f"{schema.path.name} no GUID (Confluent Schema Registry 8 does); "
                "use the prefix"
            )
        return [(VALUE_SCHEMA_ID_HEADER, b"\x01" + uuid.UUID(guid).bytes)]

    def _admin_conf(self) -> dict[str, Any]:
        return {k: v for k, v in self.producer_conf.items() if k not in PRODUCER_DEFAULTS}

    def _admin(self) -> AdminClient:
        return AdminClient(self._admin_conf())

    # ------------------------------------------------------------------ serializers

    def _value_encoder(self, schema: SchemaFile) -> FramedAvroEncoder:
        """AvroSerializer for the first record of ``schema`` (it resolves the registered id),
        then the same bytes without its per-record work."""
        version = schema.version
        serializer = AvroSerializer(
            self.registry.client,
            schema.text,
            lambda event, ctx: event.to_avro(version),
            conf=SERIALIZER_CONF,
        )
        ctx = SerializationContext(self.options.topic, MessageField.VALUE)

        def first(event: FlashSaleEvent) -> bytes:
            data = serializer(event, ctx)
            assert isinstance(data, bytes)
            return data

        return FramedAvroEncoder(schema.parsed, schema.definition, version, first)

    def _key_encoder(self) -> FramedKeyEncoder:
        key_text = self.catalog.latest(KEY_FAMILY).text
        serializer = AvroSerializer(self.registry.client, key_text, conf=SERIALIZER_CONF)
        ctx = SerializationContext(self.options.topic, MessageField.KEY)

        def first(user_id: str) -> bytes:
            data = serializer(user_id, ctx)
            assert isinstance(data, bytes)
            return data

        return FramedKeyEncoder(first)

    def events(self, on_second: Callable[[int], bool] | None = None) -> Iterator[FlashSaleEvent]:
        return self.simulation.events(
            max_events=self.options.max_events,
            max_seconds=self.options.duration,
            on_second=on_second,
        )

    def sample(self, count: int = 3) -> list[tuple[FlashSaleEvent, bytes, bytes]]:
        """Serialize the run's first events for real (``--dry-run``); nothing is sent."""
        serialize_value, serialize_key = self._value_encoder(self.schema), self._key_encoder()
        out = []
        for event in self.events():
            out.append((event, serialize_key(event.user_id), serialize_value(event)))
            if len(out) == count:
                break
        return out

    # ------------------------------------------------------------------ the run

    def run(
        self,
        stop: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every: float = 0.5,
        metrics: ProduceMetrics | None = None,
    ) -> ProduceResult:
        """Stream the run; every record ends acknowledged, failed or counted unconfirmed.
        ``metrics`` are brought up to date every ``progress_every`` seconds and at the end."""
        with _steady_gc():
            return self._run(stop, on_progress, progress_every, metrics)

    def _run(
        self,
        stop: threading.Event | None,
        on_progress: Callable[[Progress], None] | None,
        progress_every: float,
        metrics: ProduceMetrics | None,
    ) -> ProduceResult:
        stop = stop or threading.Event()
        options = self.options
        headers = None  # the prefix names the writer
        if options.schema_id_in == "header":
            headers = self._headers.get(self.schema.version)
            if headers is None:  # never silently the other format
                raise UsageError("schema id in header: preflight() finds the GUIDs first")
        elif options.schema_id_in != "prefix":
            raise InvalidOption("schema_id_in", "must be prefix or header", options.schema_id_in)
        serialize_value = primary = self._value_encoder(self.schema)
        serialize_key = self._key_encoder()
        switch_ms = None
        switched: FramedAvroEncoder | None = None
        if options.switch_at is not None and self.switch_schema is not None:
            switch_ms = self.scenario.start_ms + int(options.switch_at * 1000)
            switched = self._value_encoder(self.switch_schema)
        result = ProduceResult(run_id=self.run_id, ledger_path=options.ledger_path)
        if self.product_schema is not None:
            result.catalog_products = publish_catalog(
                self.producer_conf,
                self.registry,
                self.product_schema,
                self._products,
                self.products_topic,
                options.flush_timeout,
            )
            result.catalog_topic = self.products_topic
        producer = Producer(self.producer_conf)
        ledger = Ledger(
            meta={
                "run_id": self.simulation.run_id,
                "scenario": self.scenario.name,
                "start": self.scenario.start.isoformat().replace("+00:00", "Z"),
                "seed": self.seed,
                "schema_version": self.schema.version,
                "topic": options.topic,
                "workers": options.workers,
                "worker": options.worker,
                "shards": options.shards,
                "shard": options.shard,
            },
            brands=self.simulation.brands,
        )
        latencies = result.latencies_ms
        errors = result.errors
        sold_out_ids = self.simulation.sold_out_ids
        # Delivery reports only collect what they are told; the ledger counts the
        # acknowledged events in batches, off the per-record path.
        acked: list[FlashSaleEvent] = []
        ack = acked.append
        sample_latency = latencies.append
        # By event type, for the metrics: sent (counted only when metrics are on) and
        # failed (the rare path).
        sent_kinds: Counter[EventType] | None = Counter() if metrics is not None else None
        failed_kinds: Counter[EventType] = Counter()
        latencies_folded = 0

        def fold() -> None:
            nonlocal latencies_folded
            result.acked += len(acked)
            if metrics is not None and sent_kinds is not None:
                metrics.fold(
                    sent_kinds,
                    Counter(event.event_type for event in acked),
                    failed_kinds,
                    latencies[latencies_folded:],
                    in_flight=sent - result.acked - result.failed,
                )
                sent_kinds.clear()
                failed_kinds.clear()
                latencies_folded = len(latencies)
            ledger.record_many(acked, sold_out_ids)
            acked.clear()
            if len(latencies) >= 400_000:  # keep the most recent samples only
                del latencies[:200_000]
                latencies_folded = max(0, latencies_folded - 200_000)

        def delivered(event: FlashSaleEvent, err: KafkaError | None, msg: Any) -> None:
            if err is None:
                ack(event)
                if len(acked) & 0x7 == 1:  # one delivery latency in eight is enough
                    sample_latency(msg.latency() * 1000.0)
            else:
                result.failed += 1
                failed_kinds[event.event_type] += 1
                errors[err.name()] += 1
                level = logging.WARNING if err.retriable() else logging.ERROR
                log.log(level, "delivery failed for %s: %s", event.event_id, err.str())

        pacer = Pacer(options.speed, sleep=stop.wait)
        event_time = options.timestamp == "event"
        start_ms = self.scenario.start_ms
        topic = options.topic
        produce = producer.produce
        poll = producer.poll
        simulation = self.simulation
        started = time.monotonic()
        last_tick, acked_at_tick = started, 0
        sent = 0
        paced = options.speed is not None
        finished = False  # the loop ran to its end (or was stopped): not cut by an error

        ticking = on_progress is not None or metrics is not None

        def tick(now: float) -> None:
            """Fold the delivery reports; the live line and the metrics see them."""
            nonlocal last_tick, acked_at_tick
            result.sent = sent
            fold()
            if on_progress is not None:
                rate = (result.acked - acked_at_tick) / max(now - last_tick, 1e-6)
                on_progress(self._progress(result, simulation, rate))
            last_tick, acked_at_tick = now, result.acked

        def second_begins(second: int) -> bool:
            """Each simulated second, events or not: keep pace, and stop when asked (a
            very low rate has long runs of empty seconds), and tick at low rates too."""
            if paced:
                pacer.wait_for(float(second))
            # A paced run may wait long between records: tick here too, so the live
            # line and the metrics keep up at low rates.
            if paced and ticking and (now := time.monotonic()) - last_tick >= progress_every:
                poll(0)
                tick(now)
            if stop.is_set():
                result.interrupted = True
                return False
            return True

        try:
            for event in self.events(second_begins):
                if paced:  # a stop wakes the pacer's sleep; the check below ends the run
                    pacer.wait_for((event.timestamp_ms - start_ms) / 1000.0)
                    if stop.is_set():
                        result.interrupted = True
                        break
                elif sent & 0xFF == 0 and stop.is_set():  # unpaced: check now and then
                    result.interrupted = True
                    break
                if (
                    switched is not None
                    and switch_ms is not None
                    and event.timestamp_ms >= switch_ms
                ):
                    serialize_value, switch_ms = switched, None
                    if headers is not None and self.switch_schema is not None:
                        headers = self._headers[self.switch_schema.version]
                value = serialize_value(event)
                key = serialize_key(event.user_id)
                sent += 1
                if sent_kinds is not None:
                    sent_kinds[event.event_type] += 1
                while True:
                    try:
                        # Positional (partition -1: the partitioner's choice): cheaper to parse.
                        if headers is not None:  # the writer named in a header, value bare
                            produce(topic, value[5:], key, -1, partial(delivered, event),
                                    timestamp=event.timestamp_ms if event_time else 0,
                                    headers=headers)  # fmt: skip
                        elif event_time:  # the record's timestamp is the event's
                            produce(topic, value, key, -1, partial(delivered, event),
                                    timestamp=event.timestamp_ms)  # fmt: skip
                        else:
                            produce(topic, value, key, -1, partial(delivered, event))
                        break
                    except BufferError:
                        poll(0.05)  # the local queue is full: serve delivery reports first
                    except KafkaException as exc:  # refused before queueing: counted, not lost
                        delivered(event, exc.args[0], None)
                        break
                if sent & 0xFF == 0:
                    result.sent = sent
                    poll(0)
                    if len(acked) >= 65536:
                        fold()
                    now = time.monotonic()
                    if ticking and now - last_tick >= progress_every:
                        tick(now)
            finished = True
        finally:
            result.sent = sent
            remaining = producer.flush(options.flush_timeout)
            fold()
            result.unconfirmed = remaining
            result.elapsed = time.monotonic() - started
            if remaining:
                log.error(
                    "%d records were not confirmed within the %gs flush timeout",
                    remaining,
                    options.flush_timeout,
                )
            if options.ledger_path is not None:
                # A run cut short by an error (a registry refusing a schema mid-run)
                # is not complete, though all it sent was acknowledged.
                complete = finished and not result.interrupted and result.ok
                ledger.write(options.ledger_path, complete=complete)
            # The ids the records carry: no registry call after the run, so an outage
            # now cannot turn an acknowledged run into an error.
            result.schema_id = primary.schema_id or self._registered.get(self.schema.version)
            if switched is not None and self.switch_schema is not None:
                result.switched_schema_id = switched.schema_id or self._registered.get(
                    self.switch_schema.version
                )
        return result

    def _progress(self, result: ProduceResult, simulation: Simulation, rate: float) -> Progress:
        speed = self.options.speed
        target = float(simulation.current_count) * speed if speed is not None else float("inf")
        return Progress(
            phase=simulation.current_phase,
            target_rate=target,
            achieved_rate=rate,
            sent=result.sent,
            acked=result.acked,
            failed=result.failed,
            in_flight=result.sent - result.acked - result.failed,
            p50_ms=result.percentile(0.5, last=5000),
            p99_ms=result.percentile(0.99, last=5000),
            second=simulation.current_second,
        )
