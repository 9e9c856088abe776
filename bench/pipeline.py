"""Pipeline throughput, Kafka -> Gold, next to the producer's rate in the same run.

Produces a flash sale (schema v1 switching to the newest) as fast as the broker takes it,
then drains it through Bronze, Silver and Gold, and reports both rates and whether
the pipeline keeps up with the scenario's surge at speed 1 (its peak events/s).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from bench.stack import bench_stack
from consumers.pipeline import run_pipeline
from producer.config import ClientConfig
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.events import products_topic
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.simulation.scenario_file import load_scenario


def run(seconds: float) -> None:
    topic = "bench_pipeline"
    with bench_stack(topic) as (_, config, tmp):
        _measure(config, topic, tmp, seconds)


def _measure(config: ClientConfig, topic: str, tmp: Path, seconds: float) -> None:
    catalog = load_catalog(bundled_schemas_dir())
    scenario = load_scenario("flash-sale").with_overrides(schema_version=1)
    stream = StreamProducer(
        config,
        catalog,
        scenario,
        7,
        ProduceOptions(
            topic=topic,
            duration=seconds,
            speed=None,
            create_topic=True,
            switch_at=seconds / 2,
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
    peak = max(c for _, _, c in islice(scenario.seconds(7), int(seconds)))
    produce_rate = produced.acked / produced.elapsed
    pipeline_rate = result.bronze.records / result.elapsed
    print(f"pipeline: {produced.acked:,} events of 'flash-sale' ({seconds:g} simulated s)")
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
