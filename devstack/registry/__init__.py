"""A Confluent-compatible Schema Registry, for the local stack and the tests."""

from devstack.registry.app import create_app
from devstack.registry.store import RegistryError, RegistryStore

__all__ = ["RegistryError", "RegistryStore", "create_app"]
