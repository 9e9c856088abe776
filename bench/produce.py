"""End-to-end produce against raw produce, on one local stack, measured side by side.

Starts its own local stack (Tansu broker + devstack registry) on free ports, pins the
broker to one core and this process to the other (when there are two), and reports:

* serialization alone: AvroSerializer per record, and flashsale's framed encoder;
* raw produce: pre-serialized values of the same size, delivery reports counted;
* end to end: simulate -> serialize -> produce, every delivery report counted;
* the ratio end-to-end / raw, and the hot loop's profile (where the time goes);
* two worker processes (``--workers 2``) against one.
"""

from __future__ import annotations

import cProfile
import gc
import io
import os
import pstats
import subprocess
import sys
import time
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bench.stack import bench_stack
from producer.config import ClientConfig
from producer.encoding import FramedAvroEncoder
from producer.registry import Registry
from producer.scenario import load_scenario
from producer.schemas import bundled_schemas_dir, load_catalog
from producer.simulator import Simulation
from producer.stream import PRODUCER_DEFAULTS, ProduceOptions, StreamProducer

SCENARIO = "default"


def _pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {core})


def _stream(config: ClientConfig, topic: str, events: int, seed: int) -> StreamProducer:
    stream = StreamProducer(
        config,
        load_catalog(bundled_schemas_dir()),
        load_scenario(SCENARIO),
        seed,
        ProduceOptions(topic=topic, max_events=events, speed=None, create_topic=True),
    )
    stream.preflight()
    return stream


def _serializers(config: ClientConfig, topic: str) -> tuple[Any, Any, SerializationContext]:
    schema = load_catalog(bundled_schemas_dir()).get(load_scenario(SCENARIO).schema_version)
    serializer = AvroSerializer(
        Registry(config).client,
        schema.text,
        lambda e, ctx: e.to_avro(schema.version),
        conf={
            "auto.register.schemas": False,
            "use.latest.version": False,
            "subject.name.strategy": topic_subject_name_strategy,
        },
    )
    ctx = SerializationContext(topic, MessageField.VALUE)
    encoder = FramedAvroEncoder(
        schema.parsed, schema.definition, schema.version, lambda e: serializer(e, ctx)
    )
    return serializer, encoder, ctx


def _raw(config: ClientConfig, topic: str, values: list[bytes], keys: list[bytes]) -> float:
    producer = Producer({**PRODUCER_DEFAULTS, **config.kafka()})
    acked = 0

    def delivered(err: Any, msg: Any) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    started = time.perf_counter()
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value, keys[i], on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        if i & 0xFF == 0:
            producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    assert acked == len(values), f"raw produce: {acked} of {len(values)} acknowledged"
    return acked / elapsed


def _workers(config: ClientConfig, topic: str, events: int, workers: int) -> float:
    env = {
        **os.environ,
        "FLASHSALE_BOOTSTRAP_SERVERS": config.bootstrap_servers,
        "FLASHSALE_SCHEMA_REGISTRY_URL": config.registry_url,
    }
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "producer.cli",
                "produce",
                "--scenario",
                SCENARIO,
                "--events",
                str(events),
                "--max-rate",
                "--topic",
                topic,
                "--quiet",
                "--workers",
                str(workers),
                "--worker",
                str(i),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - started
    assert codes == [0] * workers, f"worker exit codes {codes}"
    return events / elapsed


def run(events: int, repeats: int) -> None:
    topic = "bench"
    with bench_stack(topic) as (stack, config, tmp):
        _pin(int((tmp / "broker.pid").read_text()), 0)
        _pin(0, 1)
        stack.ensure_topic(topic, 6)
        _measure(config, topic, events, repeats)


def _measure(config: ClientConfig, topic: str, events: int, repeats: int) -> None:
    print(
        f"produce: {events:,} events of '{SCENARIO}' "
        f"(schema v{load_scenario(SCENARIO).schema_version}), best of {repeats}; "
        "broker pinned to core 0, this process to core 1"
    )

    best: dict[str, float] = {}

    def keep(name: str, rate: float) -> None:
        best[name] = max(best.get(name, 0.0), rate)

    # End to end first, while this process holds nothing big: the sample lists below
    # would make every full garbage collection slower and the producer look slower.
    for attempt in range(repeats):
        stream = _stream(config, topic, events, seed=attempt)
        result = stream.run()
        assert result.ok, f"end to end: {result.lost} records lost"
        keep("end to end (simulate+serialize+produce)", result.acked / result.elapsed)
    sample = list(Simulation(load_scenario(SCENARIO), 1).events(max_events=events))
    serializer, encoder, ctx = _serializers(config, topic)
    for _ in range(repeats):
        started = time.perf_counter()
        values = [serializer(e, ctx) for e in sample]
        keep("AvroSerializer alone", len(sample) / (time.perf_counter() - started))
        started = time.perf_counter()
        values = [encoder(e) for e in sample]
        keep("framed encoder alone", len(sample) / (time.perf_counter() - started))
    size = sum(map(len, values)) // len(values)
    raw_values = [bytes(size)] * len(sample)
    keys = [e.user_id.encode() for e in sample]
    del sample, values
    gc.collect()
    for _ in range(repeats):
        keep(f"raw produce ({size}-byte values)", _raw(config, topic, raw_values, keys))
    del raw_values, keys
    gc.collect()
    profiler = cProfile.Profile()
    stream = _stream(config, topic, events // 2, seed=99)
    profiler.enable()
    stream.run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
    profile_text = "\n".join(
        line
        for line in out.getvalue().splitlines()
        if (line.strip() and "/" in line) or "ncalls" in line
    )

    for name, rate in best.items():
        print(f"  {name:<42} {rate:>10,.0f} events/s")
    raw = best[f"raw produce ({size}-byte values)"]
    e2e = best["end to end (simulate+serialize+produce)"]
    print(f"  ratio end-to-end / raw produce            {e2e / raw:>10.2f}")
    _pin(0, 1)
    one = _workers(config, topic, events, 1)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1))) if hasattr(
        os, "sched_setaffinity"
    ) else None
    two = _workers(config, topic, events, 2)
    print(f"  flashsale produce, 1 process               {one:>10,.0f} events/s (incl. start-up)")
    print(f"  flashsale produce --workers 2              {two:>10,.0f} events/s ({two / one:.2f}x)")
    print("  where the time goes (end to end, cProfile, by own time):")
    for line in profile_text.splitlines():
        print(f"    {line}")
