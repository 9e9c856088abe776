"""A throwaway local stack for one benchmark run, with the contract registered."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.stack import LocalStack, StackConfig, free_port
from producer.config import ClientConfig, load_client_config
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.registry.client import Registry
from producer.registry.workflows import register_contract


def local_config(servers: str, registry: str) -> ClientConfig:
    """Client configuration for a local stack: its two addresses, nothing from outside."""
    return load_client_config(
        {"bootstrap.servers": servers, "schema.registry.url": registry}, environ={}
    )


@contextmanager
def bench_stack(topic: str) -> Iterator[tuple[LocalStack, ClientConfig, Path]]:
    """(stack, client config, scratch folder); the schemas are registered for ``topic``."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(
            StackConfig(data_dir=Path(tmp), broker_port=free_port(), registry_port=free_port())
        )
        stack.up()
        try:
            config = local_config(stack.config.bootstrap_servers, stack.config.registry_url)
            register_contract(Registry(config), load_catalog(bundled_schemas_dir()), topic=topic)
            yield stack, config, Path(tmp)
        finally:
            stack.down()
