"""Registry conformance through Confluent's official SchemaRegistryClient."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tests.conftest import field_of, schema_definition
from tests.integration.conftest import Endpoints

pytestmark = pytest.mark.integration


def client(stack: Endpoints) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": stack.registry_url})


def avro(definition: Any) -> Schema:
    return Schema(json.dumps(definition), "AVRO")


V1 = schema_definition(1)
V2 = schema_definition(2)


def with_region(default: bool) -> dict[str, Any]:
    d = copy.deepcopy(V1)
    region: dict[str, Any] = {"name": "region", "type": "string", "doc": "market"}
    if default:
        region["default"] = "eu"
    d["fields"].append(region)
    return d


def test_register_get_lookup_and_list(stack: Endpoints, subject: str) -> None:
    sr = client(stack)
    id1 = sr.register_schema(subject, avro(V1))
    id2 = sr.register_schema(subject, avro(V2))
    assert id1 != id2

    fresh = client(stack)  # no cache: every answer comes from the server
    assert fresh.register_schema(subject, avro(V1)) == id1  # idempotent
    assert json.loads(fresh.get_schema(id1).schema_str) == V1
    latest = fresh.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, id2)
    first = fresh.get_version(subject, 1)
    assert (first.version, first.schema_id, first.subject) == (1, id1, subject)
    found = client(stack).lookup_schema(subject, avro(V2))
    assert (found.version, found.schema_id) == (2, id2)
    assert subject in fresh.get_subjects()
    assert fresh.get_versions(subject) == [1, 2]


def test_same_schema_under_two_subjects_shares_its_id(stack: Endpoints, unique: str) -> None:
    sr = client(stack)
    a = sr.register_schema(f"a-{unique}", avro(with_region(True)))
    b = client(stack).register_schema(f"b-{unique}", avro(with_region(True)))
    assert a == b
    assert client(stack).get_version(f"b-{unique}", 1).schema_id == a


def test_whitespace_does_not_change_identity(stack: Endpoints, subject: str) -> None:
    compact = json.dumps(V1, separators=(",", ":"))
    spaced = json.dumps(V1, indent=4)
    first = client(stack).register_schema(subject, Schema(compact, "AVRO"))
    assert client(stack).register_schema(subject, Schema(spaced, "AVRO")) == first
    assert client(stack).get_versions(subject) == [1]


def test_soft_then_hard_delete(stack: Endpoints, subject: str) -> None:
    sr = client(stack)
    schema_id = sr.register_schema(subject, avro(V1))
    sr.register_schema(subject, avro(V2))

    assert client(stack).delete_version(subject, 2) == 2
    assert client(stack).get_versions(subject) == [1]
    assert client(stack).delete_subject(subject) == [1]
    assert subject not in client(stack).get_subjects()
    # Old data stays readable: the id still resolves after a soft delete.
    assert json.loads(client(stack).get_schema(schema_id).schema_str) == V1

    assert client(stack).delete_subject(subject, permanent=True) == [1, 2]
    with pytest.raises(SchemaRegistryError) as err:
        client(stack).get_versions(subject)
    assert err.value.error_code == 40401


def test_compatibility_levels_global_and_subject(stack: Endpoints, subject: str) -> None:
    sr = client(stack)
    before = sr.get_compatibility()
    try:
        assert sr.set_compatibility(level="FORWARD")["compatibility"] == "FORWARD"
        assert client(stack).get_compatibility() == "FORWARD"
    finally:
        sr.set_compatibility(level=before)
    assert sr.set_compatibility(subject, "FULL_TRANSITIVE")["compatibility"] == "FULL_TRANSITIVE"
    assert client(stack).get_compatibility(subject) == "FULL_TRANSITIVE"
    with pytest.raises(SchemaRegistryError) as err:
        sr.set_compatibility(subject, "SIDEWAYS")
    assert err.value.error_code == 42203


# v3 requires `region`, which v2 introduced with a default: v3 reads v2's data, but not
# v1's. Only the transitive levels, which look past the latest version, can tell.
LEVELS = {
    "NONE": True,
    "BACKWARD": True,
    "BACKWARD_TRANSITIVE": False,
    "FORWARD": True,
    "FORWARD_TRANSITIVE": True,
    "FULL": True,
    "FULL_TRANSITIVE": False,
}


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_test_compatibility_at_each_level(stack: Endpoints, subject: str, level: str) -> None:
    sr = client(stack)
    sr.set_compatibility(subject, "NONE")
    sr.register_schema(subject, avro(V1))
    sr.register_schema(subject, avro(with_region(True)))
    sr.set_compatibility(subject, level)
    v3 = avro(with_region(False))
    assert client(stack).test_compatibility_all_versions(subject, v3) is LEVELS[level]
    # Against the latest version alone, every level accepts it.
    assert client(stack).test_compatibility(subject, v3, "latest") is True
    if LEVELS[level]:
        assert client(stack).register_schema(subject, v3) > 0
    else:
        with pytest.raises(SchemaRegistryError) as err:
            client(stack).register_schema(subject, v3)
        assert err.value.http_status_code == 409


def test_an_incompatible_change_is_refused_with_409(stack: Endpoints, subject: str) -> None:
    sr = client(stack)
    sr.set_compatibility(subject, "FULL_TRANSITIVE")
    sr.register_schema(subject, avro(V1))
    broken = copy.deepcopy(V2)
    field_of(broken, "quantity")["type"] = "string"
    with pytest.raises(SchemaRegistryError) as err:
        sr.register_schema(subject, avro(broken))
    assert err.value.http_status_code == 409
    assert client(stack).get_versions(subject) == [1]
