"""docker-compose.yml, checked by parsing: no Docker engine runs here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return dict(loaded["services"])


def test_confluent_platform_services_and_images() -> None:
    s = services()
    assert s["kafka"]["image"].startswith("confluentinc/cp-kafka:")
    assert s["schema-registry"]["image"].startswith("confluentinc/cp-schema-registry:")
    assert s["kafka-ui"]["image"].startswith("provectuslabs/kafka-ui:")


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    s = services()
    env = s["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in env
    assert not any("zookeeper" in name for name in s)
    assert not any("ZOOKEEPER" in key for key in env)


def test_ports_match_the_cli_defaults() -> None:
    s = services()
    assert "9092:9092" in s["kafka"]["ports"]
    assert (
        "PLAINTEXT_HOST://localhost:9092" in s["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert "8081:8081" in s["schema-registry"]["ports"]


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if service.get("restart") == "no":  # one-shot jobs
            continue
        assert service["healthcheck"]["test"], name


def test_a_one_shot_service_registers_the_schemas_after_the_registry_is_healthy() -> None:
    job = services()["register-schemas"]
    assert job["depends_on"]["schema-registry"]["condition"] == "service_healthy"
    command = " ".join(job["command"]) if isinstance(job["command"], list) else job["command"]
    assert "flashsale" in command
    assert "schemas register" in command
    assert job["environment"]["FLASHSALE_SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"
