"""Pipeline throughput, Kafka -> Gold, next to the producer's rate in the same run.

Produces ``--events`` events of the flash sale (schema v1, switching to the newest
half way through the events) as fast as the broker takes them, then drains them
through Bronze, Silver and Gold in this process, and reports both rates, their ratio
(issue 15's target: 0.7 on 500,000 events) and whether the pipeline keeps up with the
scenario's surge at speed 1 (its peak events/s).
"""

from __future__ import annotations

from itertools import accumulate, islice
from pathlib import Path

from bench.stack import bench_stack
from consumers.pipeline import run_pipeline
from producer.config import ClientConfig
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.events import products_topic
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.simulation.scenario_file import load_scenario


def run(events: int) -> None:
    topic = "bench_pipeline"
    with bench_stack(topic) as (_, config, tmp):
        _measure(config, topic, tmp, events)


def _measure(config: ClientConfig, topic: str, tmp: Path, events: int) -> None:
    catalog = load_catalog(bundled_schemas_dir())
    scenario = load_scenario("flash-sale").with_overrides(schema_version=1)
    # The simulated second by which half the events are out: the schema switches there.
    half = next(
        i for i, n in enumerate(accumulate(c for _, _, c in scenario.seconds(7))) if n >= events / 2
    )
    stream = StreamProducer(
        config,
        catalog,
        scenario,
        7,
        ProduceOptions(
            topic=topic,
            max_events=events,
            speed=None,
            create_topic=True,
            switch_at=float(half),
            switch_version=catalog.latest().version,
        ),
    )
    stream.preflight()
    produced = stream.run()
    assert produced.ok
    result = run_pipeline(
        config.kafka(),
        config.registry(),
        topic,
        tmp / "warehouse",
        products_topic=products_topic(topic),
    )
    peak = max(c for _, _, c in islice(scenario.seconds(7), 2 * half + 1))
    produce_rate = produced.acked / produced.elapsed
    pipeline_rate = result.bronze.records / result.elapsed
    print(f"pipeline: {produced.acked:,} events of 'flash-sale' (schema v1, then the newest)")
    print(f"  producer (simulate+serialize+produce)   {produce_rate:>10,.0f} events/s")
    print(
        f"  pipeline Kafka -> Gold                  {pipeline_rate:>10,.0f} events/s   "
        f"ratio {pipeline_rate / produce_rate:.2f}"
    )
    print(
        f"    bronze {result.bronze.records / result.bronze.elapsed:,.0f}/s, "
        f"silver {result.silver.read / result.silver.elapsed:,.0f}/s, "
        f"total {result.elapsed:.1f}s"
    )
    verdict = "keeps up" if pipeline_rate >= peak else "falls behind"
    print(
        f"  surge at speed 1: peak {peak:,} events/s -> the pipeline {verdict} "
        f"({pipeline_rate / peak:.1f}x the peak)"
    )
