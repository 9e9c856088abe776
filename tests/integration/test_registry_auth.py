"""A Confluent Cloud style properties file, end to end, against a registry that asks
for basic auth (the devstack registry, started with credentials) and the real broker.

The file says what Confluent Cloud's does about the registry
(``basic.auth.credentials.source=USER_INFO`` and ``basic.auth.user.info``) and carries
the Java-only keys its Java flavour has; the broker part is plaintext, as the local
broker is. Wrong credentials end every command in one line and exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Endpoints, own_registry

pytestmark = pytest.mark.integration

KEY, SECRET = "SRKEY", "sr-pass-7f3a"
WRONG = "not-the-pass-91c2"


@pytest.fixture(scope="module")
def guarded_registry() -> Iterator[str]:
    with own_registry({"FLASHSALE_REGISTRY_BASIC_AUTH": f"{KEY}:{SECRET}"}) as (url, _):
        yield url


def properties(tmp_path: Path, stack: Endpoints, url: str, secret: str) -> Path:
    path = tmp_path / f"client-{secret}.properties"
    path.write_text(
        f"""\
# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers={stack.bootstrap_servers}
# Required for correctness in Apache Kafka clients prior to 2.6
client.dns.lookup=use_all_dns_ips
# Best practice for higher availability in Apache Kafka clients prior to 3.0
session.timeout.ms=45000
# Best practice for Kafka producer to prevent data loss
acks=all

# Required connection configs for Confluent Cloud Schema Registry
schema.registry.url={url}
basic.auth.credentials.source=USER_INFO
basic.auth.user.info={KEY}:{secret}
"""
    )
    return path


def flashsale(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with nothing from the environment: the file is the whole configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def test_a_confluent_cloud_file_works_end_to_end(
    stack: Endpoints, guarded_registry: str, topic: str, tmp_path: Path
) -> None:
    config = ["--config", str(properties(tmp_path, stack, guarded_registry, SECRET))]
    register = flashsale("schemas", "register", "--topic", topic, *config)
    assert register.returncode == 0, register.stderr
    assert f"{topic}-value: flash_sale_event v1 registered as id" in register.stdout
    status = flashsale("schemas", "status", "--topic", topic, *config)
    assert status.returncode == 0, status.stderr + status.stdout
    assert "in sync" in status.stdout
    check = flashsale("schemas", "check", "--against-registry", "--topic", topic, *config)
    assert check.returncode == 0, check.stderr
    assert f"is compatible with {topic}-value at FULL_TRANSITIVE" in check.stdout
    produce = flashsale(
        "produce", "--events", "25", "--max-rate", "--topic", topic, "--create-topic",
        "--quiet", *config,
    )  # fmt: skip
    assert produce.returncode == 0, produce.stderr
    consume = flashsale(
        "consume", "--from-beginning", "--max", "25", "--idle-timeout", "20s",
        "--topic", topic, *config,
    )  # fmt: skip
    assert consume.returncode == 0, consume.stderr
    records = [json.loads(line) for line in consume.stdout.splitlines()]
    assert len(records) == 25
    assert {r["event_type"] for r in records} <= {"view", "cart", "purchase"}
    for result in (register, status, check, produce, consume):
        assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("schemas", "register"),
        ("schemas", "status"),
        ("schemas", "check", "--against-registry"),
        ("produce", "--events", "5", "--max-rate"),
        ("consume", "--max", "1"),
    ],
    ids=" ".join,
)
def test_wrong_credentials_are_one_line_and_exit_2(
    stack: Endpoints, guarded_registry: str, topic: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = ["--config", str(properties(tmp_path, stack, guarded_registry, WRONG))]
    result = flashsale(*command, "--topic", topic, *config)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: ")
    assert f"the Schema Registry at {guarded_registry} refused the credentials: " in result.stderr
    assert "Unauthorized (HTTP 401, error 401)" in result.stderr
    assert WRONG not in result.stdout + result.stderr
