"""What a pipeline run costs as the warehouse grows: ``python -m bench scale``.

Two warehouses side by side, in one local stack: a small one (20,000 events) and a
large one (``--events``, 2,000,000 by default). Each first drains its topic, then
20,000 more events are produced into it and drained again. Prints:

* the large first drain: events per second Kafka -> Gold and the peak memory (RSS)
  of the ``flashsale pipeline run`` process;
* the time of the 20,000-event run on each warehouse (the best of three rounds, each
  adding 20,000 more: a run of a few seconds varies with the machine), and their ratio
  (what a run costs beyond what is new: 1.0 would be a run whose cost depends only on
  what it adds).

Each pipeline run is the real command in a child process (so its RSS is its own),
with the events produced as fast as the broker takes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.stack import bench_stack
from producer.config import ClientConfig
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.scenario_file import load_scenario

SMALL = 20_000
ADDED = 20_000
ROUNDS = 3


def run(events: int) -> None:
    with bench_stack("bench_scale_small") as (_, config, tmp):
        sides = {}
        for name, size in (("small", SMALL), ("large", events)):
            topic = f"bench_scale_{name}"
            register_contract(Registry(config), load_catalog(bundled_schemas_dir()), topic=topic)
            warehouse = tmp / name
            _produce(config, topic, size, seed=1)
            first = _pipeline(config, topic, warehouse)
            added = []
            for round_ in range(ROUNDS):  # the best of a few: one run is a few seconds
                _produce(config, topic, ADDED, seed=2 + round_)
                added.append(_pipeline(config, topic, warehouse))
            sides[name] = (size, first, min(added))
    size, (seconds, rss), _ = sides["large"]
    print(
        f"scale: a run of {ADDED:,} new events on a warehouse of {SMALL:,} and of {events:,}"
        f" (best of {ROUNDS} rounds each)"
    )
    print(
        f"  first drain of {size:,} events        {size / seconds:>10,.0f} events/s,"
        f" peak RSS {rss / 2**20:,.0f} MiB"
    )
    small, large = sides["small"][2][0], sides["large"][2][0]
    print(f"  {ADDED:,} new on {SMALL:>9,}             {small:>10.2f} s")
    print(
        f"  {ADDED:,} new on {events:>9,}             {large:>10.2f} s   ratio {large / small:.2f}x"
    )


def _produce(config: ClientConfig, topic: str, events: int, seed: int) -> None:
    catalog = load_catalog(bundled_schemas_dir())
    stream = StreamProducer(
        config,
        catalog,
        load_scenario("default"),
        seed,
        ProduceOptions(topic=topic, max_events=events, speed=None, create_topic=True),
    )
    stream.preflight()
    result = stream.run()
    assert result.ok and result.acked == events, f"{result.acked} of {events} acknowledged"


def _pipeline(config: ClientConfig, topic: str, warehouse: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of ``flashsale pipeline run --until-idle``."""
    args = [sys.executable, "-m", "producer.cli", "pipeline", "run", "--until-idle", "--quiet"]
    args += ["--topic", topic, "--warehouse", str(warehouse)]
    args += ["--bootstrap-servers", config.kafka()["bootstrap.servers"]]
    args += ["--schema-registry-url", config.registry()["url"]]
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, f"pipeline run exited {child.returncode}"
    return elapsed, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux
