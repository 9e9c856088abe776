"""The registry against its own OpenAPI document, with schemathesis (issue 13).

Requests generated from ``/openapi.json`` go to a registry of this module's own (they
change global modes and levels at random): no answer may be a 5xx, and every answer's
status, media type and body must be what the document says. Bounded in examples so
the whole run stays a few seconds.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.registry.app import create_app
from devstack.registry.canonical import canonical_text
from devstack.registry.openapi import openapi_document
from devstack.registry.schemas import guid_of
from devstack.registry.store import RegistryStore
from tests.integration.conftest import own_registry

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# One schema registered before the run, named in the document's examples, so that the
# operations also answer 200s (random ids and subjects would only ever be 404s).
SEED_SUBJECT = "openapi-seed"
SEED_TEXT = canonical_text(
    {"type": "record", "name": "Seed", "fields": [{"name": "f", "type": "string"}]}
)
SEED_PARAMETERS = {
    "subject": SEED_SUBJECT,
    "version": "1",
    "id": 1,
    "guid": guid_of(SEED_TEXT, "[]", None, None),
}


def with_seed_examples(document: dict[str, Any]) -> dict[str, Any]:
    """The document, with the seed as the example of every path parameter and schema body
    of the operations that read or register (deleting it would starve the others)."""
    seeded = copy.deepcopy(document)
    for item in seeded["paths"].values():
        for method, operation in item.items():
            if method == "delete":
                continue
            for parameter in operation.get("parameters", ()):
                if parameter["in"] == "path" and parameter["name"] in SEED_PARAMETERS:
                    parameter["example"] = SEED_PARAMETERS[parameter["name"]]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                if media["schema"] == {"$ref": "#/components/schemas/SchemaRequest"}:
                    media["example"] = {"schema": SEED_TEXT}
    return seeded


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    with own_registry() as (url, _):
        seeded = requests.post(
            f"{url}/subjects/{SEED_SUBJECT}/versions",
            data=json.dumps({"schema": SEED_TEXT}),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            timeout=10,
        )
        assert (seeded.status_code, seeded.json()["id"]) == (200, 1)
        yield url


# The document itself (the served one is checked equal below); schemathesis's lazy
# fixture loader does not run on pytest 9, so the base URL is given at each call.
schema = schemathesis.openapi.from_dict(with_seed_examples(openapi_document()))


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same requests on every run, so a failure replays
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_matches_the_document(registry: str, case: schemathesis.Case) -> None:
    case.call_and_validate(base_url=registry, checks=CHECKS)


def test_the_document_names_exactly_the_served_routes() -> None:
    app = create_app(RegistryStore())
    served = {
        (route.path, method.lower())
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD" and getattr(route, "include_in_schema", True)
    }
    documented = {
        (path, method) for path, item in openapi_document()["paths"].items() for method in item
    }
    assert documented == served


def test_the_document_is_served(registry: str) -> None:
    served = requests.get(registry + "/openapi.json", timeout=5).json()
    assert served == openapi_document()
