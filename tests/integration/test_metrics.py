"""`produce --metrics-port`: Prometheus metrics scraped over HTTP during a real run, whose
counters end equal to the ledger of what the broker acknowledged."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import free_port
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.kafka.outcome import ProduceResult
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.metrics import ProduceMetrics
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.scenario_file import load_scenario
from tests.integration.conftest import Endpoints, cli, config_for, stack_env

pytestmark = pytest.mark.integration

TYPES = ("view", "cart", "purchase")


def scrape(port: int) -> dict[tuple[str, str], float]:
    """Every sample of ``/metrics``: (name, type label or "") -> value."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, sample.labels.get("type", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels.get("le")  # histogram buckets: checked by their count
    }


def by_type(samples: dict[tuple[str, str], float], name: str) -> dict[str, int]:
    return {kind: int(samples.get((name, kind), 0)) for kind in TYPES}


def test_scrapes_during_a_run_climb_and_end_equal_to_the_ledger(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    config = config_for(stack)
    catalog = load_catalog(bundled_schemas_dir())
    register_contract(Registry(config), catalog, topic=topic)
    ledger_path = tmp_path / "ledger.json"
    options = ProduceOptions(topic=topic, duration=60, speed=30.0, create_topic=True,
                             ledger_path=ledger_path)  # fmt: skip
    stream = StreamProducer(config, catalog, load_scenario("flash-sale"), 7, options)
    stream.preflight()
    metrics, port = ProduceMetrics(), free_port()
    metrics.serve(port, host="127.0.0.1")
    outcome: list[object] = []
    run = threading.Thread(
        target=lambda: outcome.append(stream.run(metrics=metrics, progress_every=0.2))
    )
    run.start()
    seen: list[int] = []
    while run.is_alive():
        seen.append(sum(by_type(scrape(port), "flashsale_events_sent_total").values()))
        time.sleep(0.3)
    run.join()
    # Scraped while running: counters that only climb, and climbed before the end.
    assert seen == sorted(seen) and len({n for n in seen if n > 0}) >= 2, seen
    final = scrape(port)
    ledger = json.loads(ledger_path.read_text())
    acked = {kind: ledger["by_event_type"].get(kind, {}).get("events", 0) for kind in TYPES}
    assert ledger["complete"] and sum(acked.values()) == ledger["total_events"] > 0
    assert by_type(final, "flashsale_events_acknowledged_total") == acked
    assert by_type(final, "flashsale_events_sent_total") == acked  # nothing failed
    assert sum(by_type(final, "flashsale_events_failed_total").values()) == 0
    assert final[("flashsale_events_in_flight", "")] == 0
    # About one delivery in eight is timed: the histogram holds exactly the run's
    # samples, in seconds.
    (result,) = outcome
    assert isinstance(result, ProduceResult) and result.ok
    samples = result.latencies_ms
    assert final[("flashsale_delivery_latency_seconds_count", "")] == len(samples) > 0
    assert final[("flashsale_delivery_latency_seconds_sum", "")] == pytest.approx(
        sum(samples) / 1000.0
    )


def test_the_cli_serves_metrics_and_prints_progress_lines_while_producing(
    stack: Endpoints, topic: str
) -> None:
    registered = cli(stack, "schemas", "register", "--all", "--topic", topic)
    assert registered.returncode == 0, registered.stderr
    port = free_port()
    # Paced at the wall clock for 12 s, output captured (not a terminal): a progress
    # line every 5 s, and metrics to scrape meanwhile.
    process = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "produce", "--topic", topic, "--create-topic",
         "--duration", "12s", "--speed", "1", "--metrics-port", str(port)],
        env=stack_env(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sent: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(requests.ConnectionError):  # not serving yet
            sent = by_type(scrape(port), "flashsale_events_sent_total")
        if sum(sent.values()):
            break
        time.sleep(0.2)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert sum(sent.values()) > 0  # scraped while it ran
    assert f"metrics on http://localhost:{port}/metrics" in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("t+")]
    assert len(lines) == 2, stderr  # at 5 s and 10 s; no carriage returns off a terminal
    assert "\r" not in stderr
    clocks = [int(line[2:4]) * 60 + int(line[5:7]) for line in lines]
    assert 3 <= clocks[0] < clocks[1] <= 12, lines  # the simulated clock, moving
    acked = [int(line.split(" acked ")[1].split()[0].replace(",", "")) for line in lines]
    total = int(next(ln for ln in stdout.splitlines() if ln.startswith("acknowledged")).split()[1])
    assert 0 < acked[0] < acked[1] <= total, (lines, stdout)


def test_a_busy_metrics_port_is_refused_before_anything_is_sent(
    stack: Endpoints, topic: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(stack, "produce", "--topic", topic, "--create-topic", "--events", "10",
                     "--metrics-port", str(port))  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == f"Error: --metrics-port {port}: cannot listen: Address already in use\n"
    topics = cli(stack, "consume", "--topic", topic, "--max", "1", "--idle-timeout", "1s")
    assert "does not exist" in topics.stderr  # --create-topic never ran


def labelled(port: int, name: str, label: str) -> dict[str, float]:
    """The samples of metric ``name`` by the value of their ``label``."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        sample.labels.get(label, ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


@pytest.mark.slow
def test_a_following_pipeline_serves_metrics_across_rounds(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    config = config_for(stack)
    catalog = load_catalog(bundled_schemas_dir())
    register_contract(Registry(config), catalog, topic=topic)

    def produce(events: int, seed: int) -> None:
        options = ProduceOptions(topic=topic, max_events=events, speed=None, create_topic=True)
        stream = StreamProducer(config, catalog, load_scenario("default"), seed, options)
        stream.preflight()
        assert stream.run().ok

    def silver_reaches(count: int) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(requests.ConnectionError):
                if labelled(port, "flashsale_pipeline_records_total", "layer").get(
                    "silver"
                ) == float(count):
                    return
            time.sleep(0.3)
        raise AssertionError(f"silver never reached {count}: {process.poll()}")

    produce(1500, 1)
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "pipeline", "run", "--topic", topic,
         "--warehouse", str(tmp_path / "warehouse"), "--interval", "1s",
         "--metrics-port", str(port)],
        env=stack_env(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        silver_reaches(1500)
        time.sleep(max(0.0, started + 6 - time.monotonic()))  # a progress line is due
        produce(1000, 2)  # a later round takes these in
        silver_reaches(2500)
        layers = labelled(port, "flashsale_pipeline_records_total", "layer")
        lag = labelled(port, "flashsale_pipeline_lag", "partition")
        rounds = labelled(port, "flashsale_pipeline_rounds_total", "")[""]
        duplicates = labelled(port, "flashsale_pipeline_duplicates_total", "")[""]
        quarantined = labelled(port, "flashsale_pipeline_quarantined_total", "reason")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert layers == {"bronze": 2500.0, "silver": 2500.0}  # counted once across rounds
    assert set(lag) == {str(p) for p in range(6)} and set(lag.values()) == {0.0}
    assert rounds >= 2 and duplicates == 0 and quarantined == {}
    # Not a terminal: Bronze's progress as plain lines, no carriage returns.
    assert re.search(r"^bronze: [\d,]+ records, [\d,]+/s, lag [\d,]+", stderr, re.M), stderr
    assert "\r" not in stderr
