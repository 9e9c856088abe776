"""End-to-end produce against raw produce, on one local stack, measured side by side.

Starts its own local stack (Tansu broker + devstack registry) on free ports, pins the
broker to one core and this process to the other (when there are two), and reports:

* serialization alone: AvroSerializer per record, and flashsale's framed encoder;
* raw produce: pre-serialized values of the same size, delivery reports counted;
* end to end: simulate -> serialize -> produce, every delivery report counted;
* the ratio end-to-end / raw, and the hot loop's profile (where the time goes);
* two worker processes against one: their run phases started together, with the CPU
  each side used, and the whole ``flashsale produce --workers`` commands, start-up
  included; and, for scale, how much faster two processes simulate than one here.
"""

from __future__ import annotations

import cProfile
import gc
import io
import multiprocessing
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bench.stack import bench_stack, local_config
from producer.config import ClientConfig
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.kafka.encoding import FramedAvroEncoder
from producer.kafka.produce import (
    PRODUCER_DEFAULTS,
    SERIALIZER_CONF,
    ProduceOptions,
    StreamProducer,
)
from producer.registry.client import Registry
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario

SCENARIO = "default"


def _pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {core})


def _unpin(pid: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, set(range(os.cpu_count() or 1)))


def _stream(
    config: ClientConfig, topic: str, events: int, seed: int, workers: int = 1, worker: int = 0
) -> StreamProducer:
    stream = StreamProducer(
        config,
        load_catalog(bundled_schemas_dir()),
        load_scenario(SCENARIO),
        seed,
        ProduceOptions(
            topic=topic,
            max_events=events,
            speed=None,
            create_topic=True,
            workers=workers,
            worker=worker,
            run_id=f"bench-{topic}",  # every worker's share of one run
            catalog=False,  # events only, as raw produce sends
        ),
    )
    stream.preflight()
    return stream


def _serializers(config: ClientConfig, topic: str) -> tuple[Any, Any, SerializationContext]:
    schema = load_catalog(bundled_schemas_dir()).get(load_scenario(SCENARIO).schema_version)
    serializer = AvroSerializer(
        Registry(config).client,
        schema.text,
        lambda e, ctx: e.to_avro(schema.version),
        conf=SERIALIZER_CONF,
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
                "--run-id",  # the workers' shares of one run
                f"bench-{topic}",
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _simulate(events: int, start: Any) -> float:
    """Seconds to simulate ``events`` events, in this process, once all are ready."""
    start.wait()
    started = time.perf_counter()
    for _ in Simulation(load_scenario(SCENARIO), 3).events(max_events=events):
        pass
    return time.perf_counter() - started


def machine_scaling(events: int, repeats: int) -> float:
    """How much faster two processes do pure-Python work than one, on this machine
    (the best of ``repeats`` for each)."""
    context = multiprocessing.get_context("spawn")
    seconds: dict[int, float] = {}
    with context.Manager() as manager:
        for processes in (1, 2):
            with context.Pool(processes) as pool:
                for _ in range(repeats):
                    start = manager.Barrier(processes)
                    took = float(max(pool.starmap(_simulate, [(events, start)] * processes)))
                    seconds[processes] = min(seconds.get(processes, took), took)
    return 2 * seconds[1] / seconds[2]


def _run_share(
    servers: str, registry: str, topic: str, events: int, workers: int, worker: int, start: Any
) -> tuple[int, float, float, float]:
    """One worker's share, in its own process: (acked, run start, run end, CPU seconds)."""
    config = local_config(servers, registry)
    stream = _stream(config, topic, events, seed=7, workers=workers, worker=worker)
    start.wait()  # every worker is ready: the runs start together
    began, cpu = time.monotonic(), _cpu_seconds(os.getpid())
    result = stream.run()
    assert result.ok, f"worker {worker}: {result.lost} records lost"
    return result.acked, began, began + result.elapsed, _cpu_seconds(os.getpid()) - cpu


def _run_phase(
    config: ClientConfig, topic: str, events: int, workers: int, broker: int, repeats: int
) -> tuple[float, str]:
    """Events/s of ``workers`` processes' runs together, from the first start to the last
    end, best of ``repeats``, and where the CPU went meanwhile (the workers', librdkafka's
    threads included, and the broker's)."""
    context = multiprocessing.get_context("spawn")
    best = (0.0, "")
    with context.Manager() as manager, context.Pool(workers) as pool:
        for _ in range(repeats):
            start = manager.Barrier(workers)
            broker_cpu = _cpu_seconds(broker)
            shares = pool.starmap(
                _run_share,
                [
                    (
                        config.bootstrap_servers,
                        config.registry_url,
                        topic,
                        events,
                        workers,
                        i,
                        start,
                    )
                    for i in range(workers)
                ],
            )
            broker_cpu = _cpu_seconds(broker) - broker_cpu
            acked = sum(share[0] for share in shares)
            assert acked == events, f"{acked} of {events} acknowledged"
            wall = max(s[2] for s in shares) - min(s[1] for s in shares)
            usage = (
                f"CPU: workers {sum(s[3] for s in shares):.2f}s, broker {broker_cpu:.2f}s "
                f"(of {wall:.2f}s x {workers} core{'s' if workers > 1 else ''})"
            )
            best = max(best, (acked / wall, usage))
    return best


def run(events: int, repeats: int) -> None:
    topic = "bench"
    with bench_stack(topic) as (stack, config, tmp):
        broker = int((tmp / "broker.pid").read_text())
        _pin(broker, 0)
        _pin(0, 1)
        stack.ensure_topic(topic, 6)
        _measure(config, topic, events, repeats, broker)


def _raw_share(servers: str, registry: str, topic: str, events: int, size: int) -> float:
    """Raw produce in its own process: ``size``-byte values with the run's keys."""
    config = local_config(servers, registry)
    simulated = Simulation(load_scenario(SCENARIO), 1).events(max_events=events)
    keys = [bytes(6) + e.user_id.encode() for e in simulated]  # a framed key's size
    return _raw(config, topic, [bytes(size)] * len(keys), keys)


def _fresh_raw(config: ClientConfig, topic: str, events: int, size: int) -> float:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        args = (config.bootstrap_servers, config.registry_url, topic, events, size)
        return float(pool.apply(_raw_share, args))


def _measure(config: ClientConfig, topic: str, events: int, repeats: int, broker: int) -> None:
    print(
        f"produce: {events:,} events of '{SCENARIO}' "
        f"(schema v{load_scenario(SCENARIO).schema_version}), best of {repeats}; "
        "broker pinned to core 0, the bench to core 1"
    )

    best: dict[str, float] = {}

    def keep(name: str, rate: float) -> bool:
        better = rate > best.get(name, 0.0)
        best[name] = max(best.get(name, 0.0), rate)
        return better

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
    del sample, values
    gc.collect()
    # End to end and raw produce each in a fresh process (as a user runs it, and with
    # no heap left over from the samples above), in turns, so that both see the
    # machine in the same state: its speed drifts by several percent over minutes.
    e2e_name, raw_name = (
        "end to end (simulate+serialize+produce)",
        f"raw produce ({size}-byte values)",
    )
    ratios, one_usage = [], ""
    for _ in range(repeats):
        e2e, usage = _run_phase(config, topic, events, 1, broker, 1)
        raw = _fresh_raw(config, topic, events, size)
        if keep(e2e_name, e2e):
            one_usage = usage
        keep(raw_name, raw)
        ratios.append(e2e / raw)
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
    print(
        f"  ratio end-to-end / raw produce            {best[e2e_name] / best[raw_name]:>10.2f}"
        f"  (each pair, run in turn: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(f"    end to end, 1 process: {one_usage}")

    # Two workers on both cores, which they share with the broker: their run phases
    # started together, then the whole commands, start-up included, against one.
    one = max(_workers(config, topic, events, 1) for _ in range(repeats))
    _unpin(0)
    _unpin(broker)
    two_run, two_usage = _run_phase(config, topic, events, 2, broker, repeats)
    two = max(_workers(config, topic, events, 2) for _ in range(repeats))
    machine = machine_scaling(events, repeats)
    one_run = best[e2e_name]
    print(
        f"  end to end, 2 worker processes             {two_run:>10,.0f} events/s"
        f" ({two_run / one_run:.2f}x)"
    )
    print(f"    {two_usage}")
    print(f"  flashsale produce, 1 process               {one:>10,.0f} events/s (incl. start-up)")
    print(f"  flashsale produce --workers 2              {two:>10,.0f} events/s ({two / one:.2f}x)")
    print(f"  for scale: 2 processes vs 1 simulating, no I/O {machine:>7.2f}x")
    print("  where the time goes (end to end, cProfile, by own time):")
    for line in profile_text.splitlines():
        print(f"    {line}")
