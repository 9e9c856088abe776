"""``flashsale demo``: the whole flow on one machine, step by step.

Each step is a method, so the CLI can show progress between them: the local stack,
the schemas, a flash sale produced with a mid-run schema switch (v1 first, then the
newest, as a rolling producer upgrade would), and the pipeline drained into a
warehouse whose KPIs are reconciled with the producer's ledger, and its tables compacted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producer.config import ClientConfig, load_client_config
from producer.contract.catalog import EVENT_FAMILY, SchemaCatalog
from producer.events import products_topic
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.scenario import starting
from producer.simulation.scenario_file import load_scenario

__all__ = ["Demo"]


@dataclass
class Demo:
    """One demo run: a fresh topic and warehouse under ``data_dir/demo/<run id>``."""

    data_dir: Path
    catalog: SchemaCatalog
    broker_port: int = 9092
    registry_port: int = 8081
    speed: float = 30.0
    duration: float = 360.0
    seed: int = 2026
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))
    config: ClientConfig | None = None

    @property
    def topic(self) -> str:
        return f"flash_sale_demo_{self.run_id.replace('-', '_')}"

    @property
    def work(self) -> Path:
        return self.data_dir / "demo" / self.run_id

    @property
    def ledger(self) -> Path:
        return self.work / "ledger.json"

    @property
    def warehouse(self) -> Path:
        return self.work / "warehouse"

    @property
    def newest(self) -> int:
        return self.catalog.latest(EVENT_FAMILY).version

    def start_stack(self, on_progress: Callable[[str], None]) -> None:
        from devstack.stack import LocalStack, StackConfig

        stack = LocalStack(
            StackConfig(
                data_dir=self.data_dir,
                broker_port=self.broker_port,
                registry_port=self.registry_port,
            )
        )
        stack.up(on_progress=on_progress)
        self.config = load_client_config(
            {
                "bootstrap.servers": stack.config.bootstrap_servers,
                "schema.registry.url": stack.config.registry_url,
            },
            environ={},
        )
        self.work.mkdir(parents=True, exist_ok=True)

    def use(self, config: ClientConfig) -> None:
        """Run against a broker and registry of the user's (``demo --external``, e.g. the
        compose stack) instead of starting the local one."""
        self.config = config
        self.work.mkdir(parents=True, exist_ok=True)

    def _config(self) -> ClientConfig:
        if self.config is None:
            raise RuntimeError("start_stack() or use() comes first")
        return self.config

    def register(self) -> None:
        register_contract(Registry(self._config()), self.catalog, topic=self.topic)

    def stream(self) -> StreamProducer:
        """The flash sale's producer, checked and ready to run."""
        stream = StreamProducer(
            self._config(),
            self.catalog,
            # Paced, so it starts now: the chart shows the sale as it happened.
            starting(
                load_scenario("flash-sale").with_overrides(schema_version=1), None, paced=True
            ),
            self.seed,
            ProduceOptions(
                topic=self.topic,
                duration=self.duration,
                speed=self.speed,
                create_topic=True,
                ledger_path=self.ledger,
                switch_at=self.duration / 2,
                switch_version=self.newest,
                run_id=self.run_id,
            ),
        )
        stream.preflight()
        return stream

    def compact(self) -> Any:
        """Compact and vacuum (with the tables' own retention) the demo's warehouse."""
        from consumers.maintenance import compact_warehouse

        return compact_warehouse(self.warehouse)

    def pipeline(
        self, on_step: Callable[[str], None], on_bronze: Callable[[Any], None] | None = None
    ) -> Any:
        """Drain the topic into the warehouse: ``on_step`` sees each layer's line as it
        ends, ``on_bronze`` Bronze's counts and lag after each of its commits."""
        from consumers.pipeline import run_pipeline

        config = self._config()
        return run_pipeline(
            config.kafka(),
            config.registry(),
            self.topic,
            self.warehouse,
            products_topic=products_topic(self.topic),
            on_step=on_step,
            on_bronze=on_bronze,
        )

    @property
    def report_path(self) -> Path:
        return self.work / "report.html"

    def report(self) -> Path:
        """The flash-sale report of the run, reconciled with its ledger."""
        from consumers.report import write_report
        from producer.simulation.ledger import read_ledger

        write_report(self.warehouse, self.report_path, [read_ledger(self.ledger)])
        return self.report_path
