"""Raw HTTP against the registry: Confluent's status codes, error codes and bodies."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.conftest import field_of, schema_definition
from tests.integration.conftest import Endpoints, own_registry

pytestmark = pytest.mark.integration

CT = "application/vnd.schemaregistry.v1+json"


def call(stack: Endpoints, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method,
        stack.registry_url + path,
        data=None if body is None else json.dumps(body),
        headers={"Content-Type": CT},
        timeout=10,
    )


def schema_body(definition: Any) -> dict[str, str]:
    return {"schema": json.dumps(definition)}


def assert_error(
    response: requests.Response, stack: Endpoints, status: int, code: int, message: str
) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["error_code"] == code
    if stack.local:  # Confluent words its messages its own way
        assert body["message"] == message
        assert response.headers["content-type"] == CT


def test_health_and_types(stack: Endpoints) -> None:
    assert call(stack, "GET", "/").json() == {}
    types = call(stack, "GET", "/schemas/types").json()
    assert "AVRO" in types
    if stack.local:
        assert types == ["AVRO"]


def test_unknown_subject(stack: Endpoints, subject: str) -> None:
    assert_error(
        call(stack, "GET", f"/subjects/{subject}/versions"),
        stack,
        404,
        40401,
        f"Subject '{subject}' not found.",
    )


def test_unknown_version_and_invalid_version(stack: Endpoints, subject: str) -> None:
    assert call(
        stack, "POST", f"/subjects/{subject}/versions", schema_body(schema_definition(1))
    ).ok
    assert_error(
        call(stack, "GET", f"/subjects/{subject}/versions/7"),
        stack,
        404,
        40402,
        f"Version 7 not found for subject '{subject}'.",
    )
    assert_error(
        call(stack, "GET", f"/subjects/{subject}/versions/first"),
        stack,
        422,
        42202,
        "The specified version 'first' is not a valid version id. Allowed values are between "
        '[1, 2^31-1] and the string "latest"',
    )
    latest = call(stack, "GET", f"/subjects/{subject}/versions/latest").json()
    assert (latest["subject"], latest["version"]) == (subject, 1)
    assert json.loads(latest["schema"]) == schema_definition(1)
    raw = call(stack, "GET", f"/subjects/{subject}/versions/1/schema").json()
    assert raw == schema_definition(1)


def test_unknown_id(stack: Endpoints) -> None:
    assert_error(
        call(stack, "GET", "/schemas/ids/987654321"),
        stack,
        404,
        40403,
        "Schema 987654321 not found",
    )


def test_invalid_schema(stack: Endpoints, subject: str) -> None:
    bad = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": "x"}]}
    assert_error(
        call(stack, "POST", f"/subjects/{subject}/versions", schema_body(bad)),
        stack,
        422,
        42201,
        "Invalid schema: invalid Avro schema: Default value <x> must match schema type: int",
    )
    assert_error(
        call(stack, "POST", f"/subjects/{subject}/versions", {"schema": "{not json"}),
        stack,
        422,
        42201,
        "Invalid schema: invalid JSON at line 1 column 2: "
        "Expecting property name enclosed in double quotes",
    )


def test_incompatible_schema_names_the_reason(stack: Endpoints, subject: str) -> None:
    call(stack, "PUT", f"/config/{subject}", {"compatibility": "FULL_TRANSITIVE"})
    assert call(
        stack, "POST", f"/subjects/{subject}/versions", schema_body(schema_definition(1))
    ).ok
    broken = copy.deepcopy(schema_definition(2))
    field_of(broken, "quantity")["type"] = "string"
    reason_backward = (
        "new schema (reader) cannot read version 1 (writer) data: field 'quantity': "
        "TYPE_MISMATCH: reader type: string not compatible with writer type: int"
    )
    reason_forward = (
        "version 1 (reader) cannot read new schema (writer) data: field 'quantity': "
        "TYPE_MISMATCH: reader type: int not compatible with writer type: string"
    )
    # Confluent 8.x: 40901, the reasons (the old schema as reader first, as its mutual-read
    # strategy lists them), then the version and text refused against and the level (its
    # Java list's toString, comma-separated).
    v1_text = call(stack, "GET", f"/subjects/{subject}/versions/1").json()["schema"]
    tail = [
        "{oldSchemaVersion: 1}",
        f"{{oldSchema: '{v1_text}'}}",
        "{validateFields: 'false', compatibility: 'FULL_TRANSITIVE'}",
    ]
    assert_error(
        call(stack, "POST", f"/subjects/{subject}/versions", schema_body(broken)),
        stack,
        409,
        40901,
        "Schema being registered is incompatible with an earlier schema for subject "
        f'"{subject}", details: [' + ", ".join([reason_forward, reason_backward, *tail]) + "]",
    )
    verbose = call(
        stack,
        "POST",
        f"/compatibility/subjects/{subject}/versions/latest?verbose=true",
        schema_body(broken),
    )
    assert verbose.status_code == 200
    assert verbose.json()["is_compatible"] is False
    if stack.local:
        assert verbose.json()["messages"] == [reason_forward, reason_backward, *tail]
    terse = call(stack, "POST", f"/compatibility/subjects/{subject}/versions", schema_body(broken))
    assert terse.json() == {"is_compatible": False}


def test_invalid_level(stack: Endpoints, subject: str) -> None:
    assert_error(
        call(stack, "PUT", f"/config/{subject}", {"compatibility": "SIDEWAYS"}),
        stack,
        422,
        42203,
        "Invalid compatibility level 'SIDEWAYS'. Valid values are NONE, BACKWARD, "
        "BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE",
    )


def test_subject_config_falls_back_to_global_only_when_asked(
    stack: Endpoints, subject: str
) -> None:
    assert_error(
        call(stack, "GET", f"/config/{subject}"),
        stack,
        404,
        40408,
        f"Subject '{subject}' does not have subject-level compatibility configured",
    )
    global_level = call(stack, "GET", "/config").json()["compatibilityLevel"]
    fallback = call(stack, "GET", f"/config/{subject}?defaultToGlobal=true").json()
    assert fallback == {"compatibilityLevel": global_level}


def test_hard_delete_before_soft_is_refused(stack: Endpoints, subject: str) -> None:
    assert call(
        stack, "POST", f"/subjects/{subject}/versions", schema_body(schema_definition(1))
    ).ok
    assert_error(
        call(stack, "DELETE", f"/subjects/{subject}/versions/1?permanent=true"),
        stack,
        404,
        40407,
        f"Subject '{subject}' Version 1 was not deleted first before being permanently deleted",
    )
    assert_error(
        call(stack, "DELETE", f"/subjects/{subject}?permanent=true"),
        stack,
        404,
        40405,
        f"Subject '{subject}' was not deleted first before being permanently deleted",
    )
    assert call(stack, "DELETE", f"/subjects/{subject}").json() == [1]
    assert_error(
        call(stack, "DELETE", f"/subjects/{subject}"),
        stack,
        404,
        40404,
        f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently",
    )
    listed = call(stack, "GET", "/subjects?deleted=true").json()
    assert subject in listed
    assert subject not in call(stack, "GET", "/subjects").json()


def test_read_only_mode_refuses_registration(stack: Endpoints, subject: str) -> None:
    assert call(stack, "PUT", f"/mode/{subject}", {"mode": "READONLY"}).json() == {
        "mode": "READONLY"
    }
    try:
        assert_error(
            call(stack, "POST", f"/subjects/{subject}/versions", schema_body(schema_definition(1))),
            stack,
            422,
            42205,
            f"Subject {subject} in context . is in read-only mode",
        )
    finally:
        call(stack, "PUT", f"/mode/{subject}", {"mode": "READWRITE"})


def test_associations_answer_none_so_clients_fall_back(stack: Endpoints, topic: str) -> None:
    # Confluent's AssociationsResource answers an empty list when none exist.
    response = call(
        stack,
        "GET",
        f"/associations/resources/-/{topic}?resourceType=topic&associationType=value",
    )
    assert response.status_code == 200
    assert response.json() == []


def test_openapi_describes_the_endpoints(stack: Endpoints) -> None:
    if not stack.local:  # Confluent's registry publishes no /openapi.json
        pytest.skip("the OpenAPI description is devstack's own")
    spec = call(stack, "GET", "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/subjects/{subject}/versions",
        "/schemas/ids/{id}",
        "/compatibility/subjects/{subject}/versions/{version}",
        "/config/{subject}",
    ):
        assert path in spec["paths"], path
    assert set(spec["paths"]["/subjects/{subject}/versions"]) == {"get", "post"}


def distinct_schema(n: int) -> dict[str, Any]:
    return {
        "type": "record",
        "name": f"Concurrent{n}",
        "fields": [{"name": "n", "type": "int", "default": n}],
    }


@pytest.mark.slow
def test_concurrent_registrations_get_unique_ids_and_gap_free_versions(
    stack: Endpoints, unique: str
) -> None:
    subjects = [f"conc-{unique}-{i}" for i in range(5)]
    for s in subjects:
        call(stack, "PUT", f"/config/{s}", {"compatibility": "NONE"})
    jobs = [(subjects[n % len(subjects)], n) for n in range(50)]

    def register(job: tuple[str, int]) -> tuple[str, int, int]:
        subject_name, n = job
        response = call(
            stack, "POST", f"/subjects/{subject_name}/versions", schema_body(distinct_schema(n))
        )
        assert response.status_code == 200, response.text
        return subject_name, n, response.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(register, jobs))
    ids = [schema_id for _, _, schema_id in results]
    assert len(set(ids)) == 50
    for s in subjects:
        assert call(stack, "GET", f"/subjects/{s}/versions").json() == list(range(1, 11))
        seen = set()
        for version in range(1, 11):
            got = call(stack, "GET", f"/subjects/{s}/versions/{version}").json()
            seen.add(got["id"])
        assert seen == {i for subj, _, i in results if subj == s}


def test_normalize_compares_schemas_in_normalized_form(stack: Endpoints, subject: str) -> None:
    call(stack, "PUT", f"/config/{subject}", {"compatibility": "NONE"})
    original = schema_definition(1)
    reordered = {key: original[key] for key in reversed(list(original))}  # same schema
    first = call(stack, "POST", f"/subjects/{subject}/versions", schema_body(original)).json()
    same = call(
        stack, "POST", f"/subjects/{subject}/versions?normalize=true", schema_body(reordered)
    ).json()
    assert same == first
    found = call(stack, "POST", f"/subjects/{subject}?normalize=true", schema_body(reordered))
    assert (found.json()["id"], found.json()["version"]) == (first["id"], 1)
    # Without normalize too: identity is Avro's canonical text, where key order is gone.
    plain = call(stack, "POST", f"/subjects/{subject}", schema_body(reordered))
    assert (plain.json()["id"], plain.json()["version"]) == (first["id"], 1)


@pytest.mark.slow
def test_basic_auth_guards_everything_but_health(tmp_path: Any) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    with own_registry({"FLASHSALE_REGISTRY_BASIC_AUTH": "sr-user:sr-pass"}) as (url, _):
        denied = requests.get(url + "/subjects", timeout=5)
        assert denied.status_code == 401
        # Confluent's answer (its Java client says "Unauthorized; error code: 401").
        assert denied.json() == {"error_code": 401, "message": "Unauthorized"}
        assert denied.headers["WWW-Authenticate"].startswith("Basic ")
        wrong = requests.get(url + "/subjects", auth=("sr-user", "nope"), timeout=5)
        assert wrong.status_code == 401
        assert requests.get(url + "/subjects", auth=("sr-user", "sr-pass"), timeout=5).json() == []
        client = SchemaRegistryClient({"url": url, "basic.auth.user.info": "sr-user:sr-pass"})
        assert client.get_subjects() == []


def test_a_soft_deleted_version_is_not_checked_for_compatibility(
    stack: Endpoints, subject: str
) -> None:
    # Confluent checks a new schema against the live versions only: a soft-deleted
    # version no longer constrains the subject.
    def record(*fields: dict[str, Any]) -> dict[str, str]:
        return schema_body({"type": "record", "name": "R", "fields": list(fields)})

    a = {"name": "a", "type": "int"}
    b_with_default = {"name": "b", "type": "int", "default": 0}
    b_required = {"name": "b", "type": "int"}
    level = call(stack, "PUT", f"/config/{subject}", {"compatibility": "BACKWARD_TRANSITIVE"})
    assert level.status_code == 200
    for body in (record(a), record(a, b_with_default)):
        assert call(stack, "POST", f"/subjects/{subject}/versions", body).status_code == 200
    reads_only_v2 = record(b_required)  # cannot read v1's data: v1 has no b
    refused = call(stack, "POST", f"/subjects/{subject}/versions", reads_only_v2)
    assert refused.status_code == 409
    assert call(stack, "DELETE", f"/subjects/{subject}/versions/1").json() == 1
    checked = call(stack, "POST", f"/compatibility/subjects/{subject}/versions/latest",
                   reads_only_v2)  # fmt: skip
    assert checked.json()["is_compatible"] is True
    accepted = call(stack, "POST", f"/subjects/{subject}/versions", reads_only_v2)
    assert accepted.status_code == 200, accepted.text
