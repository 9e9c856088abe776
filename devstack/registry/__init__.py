"""A Confluent-compatible Schema Registry, for the local stack and the tests."""

from devstack.registry.app import create_app
from devstack.registry.errors import RestError
from devstack.registry.store import RegistryStore

__all__ = ["RegistryStore", "RestError", "create_app"]
