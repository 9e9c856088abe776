"""docker-compose.yml and the Dockerfile, checked by parsing: no Docker engine runs here.

What is checked is what `docker compose up` would trip over first: images pinned to
releases of today, ports that match the CLI's defaults, a healthcheck on every
long-running service that others wait for, and a flashsale service that runs the CLI
from this checkout against the internal listeners.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# Confluent Platform's major release line of today (8.x: KRaft only, Kafka 4).
CP_MAJOR = 8
IMAGE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9./-]*):(?P<tag>[A-Za-z0-9][\w.-]*)$")
RELEASE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, Any]:
    return dict(compose()["services"])


def image(service: dict[str, Any]) -> tuple[str, str]:
    match = IMAGE.match(service["image"])
    assert match, service["image"]
    return match["name"], match["tag"]


def release(tag: str) -> tuple[int, ...]:
    match = RELEASE.match(tag)
    assert match, f"{tag} is not a pinned release"
    return tuple(int(part) for part in match.groups())


def test_confluent_platform_8_images_of_one_release() -> None:
    s = services()
    kafka, registry = image(s["kafka"]), image(s["schema-registry"])
    assert kafka[0] == "confluentinc/cp-kafka"
    assert registry[0] == "confluentinc/cp-schema-registry"
    assert kafka[1] == registry[1]  # one platform release, not a mix
    assert release(kafka[1])[0] == CP_MAJOR


def test_kafka_ui_is_the_maintained_kafbat_image() -> None:
    name, tag = image(services()["kafka-ui"])
    assert name == "kafbat/kafka-ui"  # provectuslabs/kafka-ui is no longer maintained
    assert release(tag) >= (1, 0, 0)


@pytest.mark.parametrize("name", sorted(services()))
def test_every_image_is_pinned_or_built_here(name: str) -> None:
    service = services()[name]
    if "build" in service:
        assert service["image"] == "flashsale:local"
        assert (ROOT / service["build"] / "Dockerfile").is_file()
        return
    release(image(service)[1])  # an exact release: no latest, no floating major


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    s = services()
    env = s["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in env
    assert env["CLUSTER_ID"]
    assert not any("zookeeper" in name for name in s)
    assert not any("ZOOKEEPER" in key for key in env)


def test_ports_match_the_cli_defaults_and_never_collide() -> None:
    s = services()
    assert "9092:9092" in s["kafka"]["ports"]
    advertised = s["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT_HOST://localhost:9092" in advertised
    assert "PLAINTEXT://kafka:29092" in advertised  # what the other containers use
    assert "8081:8081" in s["schema-registry"]["ports"]
    published = [p.split(":")[0] for svc in s.values() for p in svc.get("ports", [])]
    assert len(published) == len(set(published)), published


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if service.get("restart") == "no":  # one-shot jobs and the CLI
            continue
        check = service["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"} and len(check["test"]) > 1, name
        assert check["interval"] and check["retries"] >= 1, name


def test_services_wait_only_for_healthy_services_that_have_a_check() -> None:
    s = services()
    for name, service in s.items():
        for needed, how in service.get("depends_on", {}).items():
            assert needed in s, (name, needed)
            assert how["condition"] == "service_healthy", (name, needed)
            assert "healthcheck" in s[needed], (name, needed)


def test_a_one_shot_service_registers_the_schemas_after_the_registry_is_healthy() -> None:
    job = services()["register-schemas"]
    assert job["depends_on"]["schema-registry"]["condition"] == "service_healthy"
    assert job["image"] == "flashsale:local"  # the CLI's image: entrypoint flashsale
    assert job["command"] == ["schemas", "register", "--all"]
    assert job["environment"]["FLASHSALE_SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"


def test_the_flashsale_service_runs_the_cli_against_the_internal_listeners() -> None:
    cli = services()["flashsale"]
    env = cli["environment"]
    assert env["FLASHSALE_BOOTSTRAP_SERVERS"] == "kafka:29092"
    assert env["FLASHSALE_SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"
    assert cli["profiles"] == ["cli"]  # `docker compose run` only, not `up`
    assert set(cli["depends_on"]) == {"kafka", "schema-registry"}
    assert any(v.endswith(":/data") for v in cli["volumes"]) and cli["working_dir"] == "/data"


def test_the_dockerfile_installs_this_checkout_with_flashsale_as_entrypoint() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    base = lines[0].split()
    assert base[0] == "FROM" and base[1].startswith("python:3.11")
    assert "COPY . /src" in lines
    assert any(line.startswith("RUN pip install") and "/src" in line for line in lines)
    assert 'ENTRYPOINT ["flashsale"]' in lines
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".flashsale"} <= set(ignored)  # no local state in the image
