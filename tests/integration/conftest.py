"""Real services for integration tests: the local stack, or yours through the environment.

With ``FLASHSALE_BOOTSTRAP_SERVERS`` and ``FLASHSALE_SCHEMA_REGISTRY_URL`` set, the
tests run against that stack (for example the docker-compose one); otherwise one
local stack (Tansu broker + devstack registry) is started for the session, through
the same library code as ``flashsale local up``, and stopped by pid at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.stack import LocalStack, StackConfig, free_port
from producer.config import ClientConfig, load_client_config


@dataclass(frozen=True)
class Endpoints:
    bootstrap_servers: str
    registry_url: str
    local: bool  # the devstack registry (exact messages are pinned only there)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    bootstrap = os.environ.get("FLASHSALE_BOOTSTRAP_SERVERS")
    registry = os.environ.get("FLASHSALE_SCHEMA_REGISTRY_URL")
    if bootstrap and registry:
        yield Endpoints(bootstrap, registry.rstrip("/"), local=False)
        return
    data_dir: Path = tmp_path_factory.mktemp("stack")
    local = LocalStack(
        StackConfig(data_dir=data_dir, broker_port=free_port(), registry_port=free_port())
    )
    try:
        local.up()
        yield Endpoints(local.config.bootstrap_servers, local.config.registry_url, local=True)
    finally:
        local.down()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def topic(unique: str) -> str:
    return f"test-{unique}"


@pytest.fixture
def subject(topic: str) -> str:
    return f"{topic}-value"


def stack_env(stack: Endpoints) -> dict[str, str]:
    """This process's environment, pointed at the stack."""
    return {
        **os.environ,
        "FLASHSALE_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "FLASHSALE_SCHEMA_REGISTRY_URL": stack.registry_url,
    }


def cli(stack: Endpoints, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run `flashsale ARGS` as a user would, pointed at the stack through the environment."""
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        capture_output=True,
        text=True,
        env=stack_env(stack),
        timeout=180,
        check=False,
        **kwargs,
    )


@contextmanager
def own_registry(
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A registry of the test's own (memory storage), to stop or break at will: its URL
    once it answers, and its process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.registry", "--port", str(port)],
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def config_for(stack: Endpoints) -> ClientConfig:
    """The client configuration of the test stack (the environment is not consulted)."""
    return load_client_config(
        {"bootstrap.servers": stack.bootstrap_servers, "schema.registry.url": stack.registry_url},
        environ={},
    )
