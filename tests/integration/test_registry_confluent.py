"""Behaviours of Confluent Schema Registry 8.x, ported from its own tests.

Each test names the test of confluentinc/schema-registry it comes from
(``core/src/test/java/io/confluent/kafka/schemaregistry/rest/RestApiTest.java`` or
``RestApiModeTest.java``); they are written anew here, over raw HTTP and, where the
official ``SchemaRegistryClient`` has a call for it, through that client too.
Tests that change the registry's global config or mode run on a registry of their
own, so that they never disturb the shared stack.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tests.integration.conftest import Endpoints, own_registry

pytestmark = pytest.mark.integration

CT = "application/vnd.schemaregistry.v1+json"


def http(url: str, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
    return requests.request(
        method,
        url + path,
        data=None if body is None else json.dumps(body),
        headers={"Content-Type": CT, **headers},
        timeout=10,
    )


def record(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def body(definition: Any, **extra: Any) -> dict[str, Any]:
    return {"schema": json.dumps(definition), **extra}


def avro(definition: Any) -> Schema:
    return Schema(json.dumps(definition), "AVRO")


F_STRING = {"name": "f", "type": "string"}
G_STRING = {"name": "g", "type": "string", "default": "d"}
G_INT = {"name": "g", "type": "int", "default": 0}


def error_of(response: requests.Response) -> tuple[int, int]:
    return response.status_code, response.json()["error_code"]


@pytest.fixture
def sr(stack: Endpoints) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": stack.registry_url})


@pytest.fixture(scope="module")
def private() -> Iterator[str]:
    """A registry of this module's own, for global config and mode changes."""
    with own_registry() as (url, _):
        yield url


# ---------------------------------------------------------------------------- registration


def test_register_answers_id_version_and_schema(stack: Endpoints, unique: str) -> None:
    # RestApiTest.testBasic, testRegisterSameSchemaOnDifferentSubject
    url, a, b = stack.registry_url, f"conf-{unique}-a", f"conf-{unique}-b"
    # A name of its own: other tests on this registry register R schemas, and an id
    # is shared by every subject that holds its schema.
    name = f"R_{unique}"
    one, two = record(name, F_STRING), record(name, F_STRING, G_STRING)
    first = http(url, "POST", f"/subjects/{a}/versions", body(one)).json()
    canonical = '{"type":"record","name":"' + name + '","fields":[{"name":"f","type":"string"}]}'
    assert (first["version"], first["schema"]) == (1, canonical)
    assert first["schemaType"] == "AVRO" and len(first["guid"]) == 36
    second = http(url, "POST", f"/subjects/{a}/versions", body(two)).json()
    assert second["version"] == 2 and second["id"] != first["id"]
    # The same schema under another subject: the same id, its own version numbers.
    other = SchemaRegistryClient({"url": url}).register_schema_full_response(b, avro(two))
    assert (other.schema_id, other.version, other.guid) == (second["id"], 1, second["guid"])
    by_id = http(url, "GET", f"/schemas/ids/{second['id']}/versions").json()
    assert by_id == [{"subject": a, "version": 2}, {"subject": b, "version": 1}]
    assert http(url, "GET", f"/schemas/ids/{second['id']}/subjects").json() == [a, b]


def test_identity_is_the_canonical_text(stack: Endpoints, subject: str) -> None:
    # RestApiTest.testCanonicalization: whitespace and {"type": ...} do not make a new schema
    url = stack.registry_url
    path = f"/subjects/{subject}/versions"
    spaced = http(url, "POST", path, {"schema": '{   "type":   "string"}'})
    assert spaced.json()["schema"] == '"string"'
    again = http(url, "POST", f"/subjects/{subject}/versions", {"schema": '"string"'})
    assert (again.json()["id"], again.json()["version"]) == (spaced.json()["id"], 1)
    found = SchemaRegistryClient({"url": url}).lookup_schema(
        subject, Schema('{"type":"string"}', "AVRO")
    )
    assert (found.schema_id, found.version) == (spaced.json()["id"], 1)
    assert http(url, "GET", f"/subjects/{subject}/versions").json() == [1]


def test_reordered_attributes_are_one_schema(stack: Endpoints, subject: str) -> None:
    # RestApiTest.testSchemaNormalization (its first part, without references): the order
    # of standard attributes never matters; custom properties' order matters unless
    # ?normalize=true, and {"type": {"type": "int"}} is "int".
    url = stack.registry_url
    http(url, "PUT", f"/config/{subject}", {"compatibility": "NONE"})
    nested = {
        "type": "record",
        "name": "myrecord",
        "extraMetadata": {"a": 1, "b": 2},
        "fields": [{"type": {"type": "int"}, "name": "field0"}],
    }
    plain = {
        "fields": [{"name": "field0", "type": "int"}],
        "name": "myrecord",
        "extraMetadata": {"a": 1, "b": 2},
        "type": "record",
    }
    swapped = {**plain, "extraMetadata": {"b": 2, "a": 1}}
    registered = http(url, "POST", f"/subjects/{subject}/versions?normalize=true", body(nested))
    assert registered.status_code == 200
    found = http(url, "POST", f"/subjects/{subject}", body(plain))
    assert (found.json()["id"], found.json()["version"]) == (registered.json()["id"], 1)
    assert found.json()["schema"] == (
        '{"type":"record","name":"myrecord","fields":[{"name":"field0","type":"int"}],'
        '"extraMetadata":{"a":1,"b":2}}'
    )
    assert error_of(http(url, "POST", f"/subjects/{subject}", body(swapped))) == (404, 40403)
    normalized = http(url, "POST", f"/subjects/{subject}?normalize=true", body(swapped))
    assert normalized.json()["version"] == 1


def test_invalid_default_is_42201_and_verbose_compatibility_explains(
    stack: Endpoints, subject: str
) -> None:
    # RestApiTest.testSchemaNormalization (its end), testRegisterBadDefault
    url = stack.registry_url
    bad = record(
        "test", {"name": "string_default", "type": "string", "default": None}, namespace="namespace"
    )
    refused = http(url, "POST", f"/subjects/{subject}/versions?normalize=true", body(bad))
    assert error_of(refused) == (422, 42201)
    verbose = http(
        url, "POST", f"/compatibility/subjects/{subject}/versions?verbose=true", body(bad)
    )
    assert verbose.status_code == 200
    assert verbose.json()["is_compatible"] is False
    assert verbose.json()["messages"][0].startswith("Invalid schema")
    terse = http(url, "POST", f"/compatibility/subjects/{subject}/versions", body(bad))
    assert error_of(terse) == (422, 42201)


def test_incompatible_registration_is_40901_naming_the_old_version(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testIncompatibleSchemaBySubject
    sr.set_compatibility(subject, "BACKWARD")
    sr.register_schema(subject, avro(record("myrecord", F_STRING)))
    sr.register_schema(subject, avro(record("myrecord", F_STRING, G_STRING)))
    with pytest.raises(SchemaRegistryError) as refused:
        sr.register_schema(subject, avro(record("myrecord", F_STRING, G_INT)))
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 40901)
    message = refused.value.error_message
    assert message.startswith(
        f'Schema being registered is incompatible with an earlier schema for subject "{subject}"'
    )
    assert "field 'g'" in message and "{oldSchemaVersion: 2}" in message
    assert "{validateFields: 'false', compatibility: 'BACKWARD'}" in message
    latest_text = sr.get_version(subject, 2).schema.schema_str
    assert f"{{oldSchema: '{latest_text}'}}" in message


# ---------------------------------------------------------------------------- compatibility


def test_compatibility_of_an_unknown_subject_and_version(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testCompatibilityNonExistentSubject, testCompatibilityNonExistentVersion,
    # testCompatibilityInvalidVersion
    url, schema = stack.registry_url, record("R", F_STRING)
    assert sr.test_compatibility(subject, avro(schema), "latest") is True
    assert sr.test_compatibility_all_versions(subject, avro(schema)) is True
    unknown = http(url, "POST", f"/compatibility/subjects/{subject}/versions/1", body(schema))
    assert error_of(unknown) == (404, 40402)
    sr.register_schema(subject, avro(schema))
    with pytest.raises(SchemaRegistryError) as missing:
        sr.test_compatibility(subject, avro(schema), 100)
    assert missing.value.error_code == 40402
    invalid = http(
        url, "POST", f"/compatibility/subjects/{subject}/versions/earliest", body(schema)
    )
    assert error_of(invalid) == (422, 42202)


def test_a_soft_deleted_latest_no_longer_constrains(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testIncompatibleSchemaLookupBySubjectAfterDelete
    url = stack.registry_url
    sr.set_compatibility(subject, "BACKWARD")
    one = record("myrecord", F_STRING)
    wrong = record("myrecord", F_STRING, G_STRING)
    correct = record("myrecord", F_STRING, G_INT)
    sr.register_schema(subject, avro(one))
    assert sr.test_compatibility(subject, avro(wrong), "latest") is True
    sr.register_schema(subject, avro(wrong))
    assert sr.test_compatibility(subject, avro(correct), "latest") is False
    refused = http(url, "POST", f"/subjects/{subject}/versions", body(correct))
    assert error_of(refused) == (409, 40901)
    assert sr.delete_version(subject, "latest") == 2
    assert sr.test_compatibility(subject, avro(correct), "latest") is True
    assert http(url, "POST", f"/subjects/{subject}/versions", body(correct)).status_code == 200
    spaced = {"schema": json.dumps(correct, indent=4)}
    assert http(url, "POST", f"/subjects/{subject}", spaced).json()["version"] == 3


# ---------------------------------------------------------------------------- reading


def test_schema_by_id_with_subject_and_raw(
    stack: Endpoints, unique: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testGetOnlySchemaById, testGetVersionSchemaOnly,
    # testGetLatestVersionSchemaOnly, testGetSchemaNonExistingId
    url, a, b = stack.registry_url, f"conf-{unique}-a", f"conf-{unique}-b"
    schema = record("R", F_STRING)
    sr.set_compatibility(a, "NONE")
    sr.register_schema(a, avro(record("Other", F_STRING)))
    schema_id = sr.register_schema(a, avro(schema))
    sr.register_schema(b, avro(schema))
    plain = http(url, "GET", f"/schemas/ids/{schema_id}").json()
    assert set(plain) == {"schema", "schemaType", "guid"}
    with_subject = http(url, "GET", f"/schemas/ids/{schema_id}?subject={a}").json()
    assert (with_subject["subject"], with_subject["version"]) == (a, 2)
    fetched = sr.get_schema(schema_id, subject_name=b)
    assert json.loads(fetched.schema_str) == schema
    raw = http(url, "GET", f"/schemas/ids/{schema_id}/schema")
    assert raw.json() == schema
    assert http(url, "GET", f"/subjects/{a}/versions/latest/schema").json() == schema
    assert http(url, "GET", f"/subjects/{a}/versions/1/schema").json() == record("Other", F_STRING)
    assert error_of(http(url, "GET", "/schemas/ids/2147483000/schema")) == (404, 40403)
    by_guid = sr.get_schema_by_guid(plain["guid"])
    assert json.loads(by_guid.schema_str) == schema
    unknown_guid = http(url, "GET", "/schemas/guids/00000000-0000-0000-0000-000000000000")
    assert error_of(unknown_guid) == (404, 40403)


def test_unknown_subjects_versions_and_ids(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testLookUpSchemaUnderNonExistentSubject, testListVersionsNonExistingSubject,
    # testGetVersionNonExistentSubject, testGetLatestVersionNonExistentSubject,
    # testDeleteNonExistentSubject, testDeleteSchemaVersionInvalidSubject,
    # testGetSubjectsAssociatedWithNotFoundSchemaId, testLookUpNonExistentSchemaUnderSubject,
    # testGetNonExistingVersion, testGetInvalidVersion, testDeleteInvalidVersion
    url, schema = stack.registry_url, record("R", F_STRING)
    for method, path, sent in (
        ("POST", f"/subjects/{subject}", body(schema)),
        ("GET", f"/subjects/{subject}/versions", None),
        ("GET", f"/subjects/{subject}/versions/1", None),
        ("GET", f"/subjects/{subject}/versions/latest", None),
        ("DELETE", f"/subjects/{subject}", None),
        ("DELETE", f"/subjects/{subject}/versions/1", None),
    ):
        assert error_of(http(url, method, path, sent)) == (404, 40401), (method, path)
    with pytest.raises(SchemaRegistryError) as no_id:
        sr.get_subjects_by_schema_id(2147483000)
    assert no_id.value.error_code == 40403
    sr.register_schema(subject, avro(schema))
    other = http(url, "POST", f"/subjects/{subject}", body(record("Other", F_STRING)))
    assert error_of(other) == (404, 40403)
    assert error_of(http(url, "GET", f"/subjects/{subject}/versions/200")) == (404, 40402)
    for bad in ("0", "-2", "2147483648", "first"):
        got = http(url, "GET", f"/subjects/{subject}/versions/{bad}")
        assert error_of(got) == (422, 42202), bad
        assert error_of(http(url, "DELETE", f"/subjects/{subject}/versions/{bad}")) == (
            422,
            42202,
        )
    # Other schema types are Confluent's too, but not served here (42201, as documented).
    json_schema = http(
        url, "POST", f"/subjects/{subject}/versions", {"schema": "{}", "schemaType": "JSON"}
    )
    assert error_of(json_schema) == (422, 42201)


def test_lookup_of_deleted_versions(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testDeleteWithLookup, testDeleteSubjectException
    one, two = avro(record("R", F_STRING)), avro(record("R", F_STRING, G_STRING))
    sr.register_schema(subject, one)
    sr.register_schema(subject, two)
    assert sr.delete_version(subject, 1) == 1
    with pytest.raises(SchemaRegistryError) as hidden:
        SchemaRegistryClient({"url": stack.registry_url}).lookup_schema(subject, one)
    assert hidden.value.error_code == 40403
    assert sr.lookup_schema(subject, one, deleted=True).version == 1
    # back as version 3 (a fresh client: this one would answer from its cache)
    SchemaRegistryClient({"url": stack.registry_url}).register_schema(subject, one)
    assert (
        SchemaRegistryClient({"url": stack.registry_url})
        .lookup_schema(subject, one, deleted=True)
        .version
        == 3
    )
    assert sr.delete_subject(subject) == [2, 3]
    assert (
        SchemaRegistryClient({"url": stack.registry_url})
        .lookup_schema(subject, two, deleted=True)
        .version
        == 2
    )
    with pytest.raises(SchemaRegistryError) as again:
        sr.delete_subject(subject)
    assert again.value.error_code == 40404


# ---------------------------------------------------------------------------- deletion


def test_delete_version_then_register_its_schema_again(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testDeleteSchemaVersionBasic, testSameIdTombstoneStillRunsWhenNoReferences
    url = stack.registry_url
    sr.set_compatibility(subject, "NONE")
    one, two = record("R", F_STRING), record("R", F_STRING, G_STRING)
    id1, id2 = sr.register_schema(subject, avro(one)), sr.register_schema(subject, avro(two))
    assert sr.delete_version(subject, 2) == 2
    assert sr.get_versions(subject) == [1]
    gone = http(url, "GET", f"/subjects/{subject}/versions/2?deleted=true").json()
    assert (gone["version"], gone["id"], gone["deleted"]) == (2, id2, True)
    assert error_of(http(url, "GET", f"/subjects/{subject}/versions/2")) == (404, 40402)
    assert error_of(http(url, "POST", f"/subjects/{subject}", body(two))) == (404, 40403)
    deleted_raw = http(url, "GET", f"/subjects/{subject}/versions/2/schema?deleted=true")
    assert deleted_raw.json() == two
    assert error_of(http(url, "GET", f"/subjects/{subject}/versions/2/schema")) == (404, 40402)
    assert sr.delete_version(subject, "latest") == 1
    assert error_of(http(url, "GET", f"/subjects/{subject}/versions")) == (404, 40401)
    for _ in range(2):  # twice: the second is the live version answering for itself
        again = http(url, "POST", f"/subjects/{subject}/versions", body(two)).json()
        assert (again["id"], again["version"]) == (id2, 3)
    assert http(url, "GET", f"/subjects/{subject}/versions").json() == [3]
    # The soft-deleted version of the same schema is gone; the other one stays.
    assert error_of(http(url, "GET", f"/subjects/{subject}/versions/2?deleted=true")) == (
        404,
        40402,
    )
    kept = http(url, "GET", f"/subjects/{subject}/versions/1?deleted=true").json()
    assert (kept["id"], kept["deleted"]) == (id1, True)


def test_latest_is_a_live_version_even_with_deleted(stack: Endpoints, subject: str) -> None:
    # RestApiTest.testGetLatestVersionDeleteOlder, testDeleteLatestVersion
    url = stack.registry_url
    http(url, "PUT", f"/config/{subject}", {"compatibility": "NONE"})
    for schema in (record("R", F_STRING), record("R", F_STRING, G_STRING)):
        http(url, "POST", f"/subjects/{subject}/versions", body(schema))
    assert http(url, "DELETE", f"/subjects/{subject}/versions/1").json() == 1
    assert http(url, "GET", f"/subjects/{subject}/versions/latest").json()["version"] == 2
    assert http(url, "DELETE", f"/subjects/{subject}/versions/latest").json() == 2
    with_deleted = http(url, "GET", f"/subjects/{subject}/versions/latest?deleted=true")
    assert error_of(with_deleted) == (404, 40402)
    assert error_of(http(url, "GET", f"/subjects/{subject}/versions/latest")) == (404, 40401)


def test_listings_with_deleted_and_deleted_only(
    stack: Endpoints, unique: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testListSoftDeletedSubjectsAndSchemas
    url, one, two = stack.registry_url, f"conf-{unique}-1", f"conf-{unique}-2"
    prefix = f"?subjectPrefix=conf-{unique}"
    sr.set_compatibility(one, "NONE")
    sr.register_schema(one, avro(record("A", F_STRING)))
    sr.register_schema(one, avro(record("B", F_STRING)))
    sr.register_schema(two, avro(record("C", F_STRING)))
    assert sr.delete_version(one, 1) == 1
    assert sr.delete_version(two, 1) == 1
    assert sr.get_versions(one) == [2]
    assert sr.get_versions(one, deleted=True) == [1, 2]
    assert http(url, "GET", f"/subjects/{one}/versions?deletedOnly=true").json() == [1]
    assert http(url, "GET", f"/subjects{prefix}").json() == [one]
    assert http(url, "GET", f"/subjects{prefix}&deleted=true").json() == [one, two]
    assert http(url, "GET", f"/subjects{prefix}&deletedOnly=true").json() == [two]
    assert sr.get_subjects(subject_prefix=f"conf-{unique}", deleted=True) == [one, two]


def test_delete_subject_then_register_again(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testDeleteSubjectAndRegister, testDeleteSubjectPermanent
    url = stack.registry_url
    sr.set_compatibility(subject, "NONE")
    one, two = avro(record("R", F_STRING)), avro(record("R", F_STRING, G_STRING))
    id1, id2 = sr.register_schema(subject, one), sr.register_schema(subject, two)
    assert sr.delete_subject(subject) == [1, 2]
    assert SchemaRegistryClient({"url": url}).register_schema(subject, one) == id1
    assert SchemaRegistryClient({"url": url}).register_schema(subject, two) == id2
    assert sr.get_versions(subject) == [3, 4]
    assert error_of(http(url, "GET", f"/subjects/{subject}/versions/1")) == (404, 40402)
    assert sr.delete_subject(subject) == [3, 4]
    assert sr.delete_subject(subject, permanent=True) == [3, 4]
    assert error_of(http(url, "GET", f"/config/{subject}")) == (404, 40408)  # dropped too
    assert http(url, "GET", f"/schemas/ids/{id1}").status_code == 200  # old data stays readable


def test_subject_config_delete(stack: Endpoints, subject: str, sr: SchemaRegistryClient) -> None:
    # RestApiTest.testGetConfigNonExistentSubject, testSubjectConfigChange; Confluent's
    # ConfigResource.deleteSubjectConfig answers 40401 when the subject has no level.
    url = stack.registry_url
    assert error_of(http(url, "DELETE", f"/config/{subject}")) == (404, 40401)
    sr.set_compatibility(subject, "FULL")
    assert http(url, "DELETE", f"/config/{subject}").json() == {"compatibilityLevel": "FULL"}
    assert error_of(http(url, "GET", f"/config/{subject}")) == (404, 40408)


# ---------------------------------------------------------------------------- references

SUBRECORD = {
    "type": "record",
    "name": "Subrecord",
    "namespace": "otherns",
    "fields": [{"name": "field2", "type": "string"}],
}
MY_RECORD = {
    "type": "record",
    "name": "MyRecord",
    "namespace": "ns",
    "fields": [{"name": "field1", "type": "otherns.Subrecord"}],
}


def test_schema_references(stack: Endpoints, unique: str, sr: SchemaRegistryClient) -> None:
    # RestApiTest.testSchemaReferences (testSchemaReferencesInContext in the default context)
    url, referenced, referrer = stack.registry_url, f"conf-{unique}-ref", f"conf-{unique}-use"
    sr.register_schema(referenced, avro(SUBRECORD))
    ref = {"name": "otherns.Subrecord", "subject": referenced, "version": 1}
    registered = http(
        url, "POST", f"/subjects/{referrer}/versions", body(MY_RECORD, references=[ref])
    ).json()
    assert registered["references"] == [ref]
    assert json.loads(registered["schema"]) == MY_RECORD  # the reference stays a name
    by_id = sr.get_schema(registered["id"], subject_name=referrer)
    assert [(r.name, r.subject, r.version) for r in by_id.references] == [
        ("otherns.Subrecord", referenced, 1)
    ]
    with_subject = http(url, "GET", f"/schemas/ids/{registered['id']}?subject={referrer}").json()
    assert (with_subject["subject"], with_subject["version"]) == (referrer, 1)
    assert sr.get_referenced_by(referenced, 1) == [registered["id"]]
    blocked = http(url, "DELETE", f"/subjects/{referenced}/versions/1")
    assert error_of(blocked) == (422, 42206)
    assert blocked.json()["message"] == (
        "One or more references exist to the schema "
        f"{{magic=1,keytype=SCHEMA,subject={referenced},version=1}}."
    )
    assert error_of(http(url, "DELETE", f"/subjects/{referenced}")) == (422, 42206)
    # A lookup with the same references finds it; the official client's serializer too.
    found = http(url, "POST", f"/subjects/{referrer}", body(MY_RECORD, references=[ref]))
    assert found.json()["id"] == registered["id"]
    # Sent with the referenced type written out and no references: the same schema.
    inlined = {**MY_RECORD, "fields": [{"name": "field1", "type": SUBRECORD}]}
    deep = http(url, "POST", f"/subjects/{referrer}", body(inlined))
    assert (deep.json()["id"], deep.json()["version"]) == (registered["id"], 1)
    assert sr.delete_version(referrer, 1) == 1
    assert sr.get_referenced_by(referenced, 1) == []
    # Soft-deleted, the referrer still holds the version against a permanent delete.
    assert sr.delete_version(referenced, 1) == 1
    permanent = http(url, "DELETE", f"/subjects/{referenced}/versions/1?permanent=true")
    assert error_of(permanent) == (422, 42206)


def test_references_over_several_levels(stack: Endpoints, unique: str) -> None:
    # RestApiTest.testSchemaReferencesMultipleLevels
    url = stack.registry_url
    shared, one, two, root = (f"conf-{unique}-{n}" for n in ("shared", "ref1", "ref2", "root"))
    currency = {
        "type": "enum",
        "name": "Currency",
        "namespace": "myavro.currencies",
        "symbols": ["EUR", "USD"],
    }

    def budget(name: str, amount: str) -> dict[str, Any]:
        return {
            "type": "record",
            "name": name,
            "namespace": "myavro",
            "fields": [
                {"name": "buyerId", "type": "long"},
                {"name": "currency", "type": {"type": "myavro.currencies.Currency"}},
                {"name": amount, "type": "double"},
            ],
        }

    to_currency = [{"name": "myavro.currencies.Currency", "subject": shared, "version": 1}]
    assert http(url, "POST", f"/subjects/{shared}/versions", body(currency)).status_code == 200
    for subject, name, amount in (
        (one, "BudgetDecreased", "amount"),
        (two, "BudgetUpdated", "updatedValue"),
    ):
        answer = http(
            url,
            "POST",
            f"/subjects/{subject}/versions",
            body(budget(name, amount), references=to_currency),
        )
        assert answer.status_code == 200, answer.text
    union = '["myavro.BudgetDecreased","myavro.BudgetUpdated"]'
    refs = [
        {"name": "myavro.BudgetDecreased", "subject": one, "version": -1},
        {"name": "myavro.BudgetUpdated", "subject": two, "version": 1},
    ]
    top = http(url, "POST", f"/subjects/{root}/versions", {"schema": union, "references": refs})
    assert top.status_code == 200, top.text
    assert top.json()["schema"] == union
    assert [r["version"] for r in top.json()["references"]] == [1, 1]  # -1: the latest, fixed
    # The official client resolves the references and serializes a record through them.
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    client = SchemaRegistryClient({"url": url})
    serializer = AvroSerializer(
        client,
        None,
        conf={
            "auto.register.schemas": False,
            "use.latest.version": True,
            "subject.name.strategy": lambda ctx, name: root,
        },
    )
    context = SerializationContext("topic-unused", MessageField.VALUE)
    datum = ("myavro.BudgetUpdated", {"buyerId": 7, "currency": "USD", "updatedValue": 1.5})
    framed = serializer(datum, context)
    assert framed[1:5] == top.json()["id"].to_bytes(4, "big")
    decoded = AvroDeserializer(client)(framed, context)
    assert decoded == {"buyerId": 7, "currency": "USD", "updatedValue": 1.5}


def test_missing_references_are_invalid(stack: Endpoints, unique: str) -> None:
    # RestApiTest.testSchemaMissingReferences, testRegisterInvalidSchemaBadReference
    url, subject = stack.registry_url, f"conf-{unique}-missing"
    without = http(url, "POST", f"/subjects/{subject}/versions", body(MY_RECORD))
    assert error_of(without) == (422, 42201)
    dangling = [{"name": "otherns.Subrecord", "subject": f"conf-{unique}-none", "version": 1}]
    refused = http(
        url, "POST", f"/subjects/{subject}/versions", body(MY_RECORD, references=dangling)
    )
    assert error_of(refused) == (422, 42201)
    assert f"conf-{unique}-none" in refused.json()["message"]
    malformed = http(
        url, "POST", f"/subjects/{subject}/versions", body(MY_RECORD, references=[{"name": "x"}])
    )
    assert error_of(malformed) == (422, 42201)


def test_normalized_lookup_ignores_the_order_of_references(stack: Endpoints, unique: str) -> None:
    # RestApiTest.testSchemaNormalization (with its references)
    url = stack.registry_url
    subs = [
        {
            "type": "record",
            "name": f"Subrecord{n}",
            "namespace": "otherns",
            "fields": [{"name": f"field{n}", "type": "string"}],
        }
        for n in (1, 2)
    ]
    refs = []
    for n, sub in enumerate(subs, start=1):
        http(url, "POST", f"/subjects/conf-{unique}-r{n}/versions", body(sub))
        refs.append(
            {"name": f"otherns.Subrecord{n}", "subject": f"conf-{unique}-r{n}", "version": 1}
        )
    main = record(
        "myrecord",
        {"name": "field1", "type": "otherns.Subrecord1"},
        {"name": "field2", "type": "otherns.Subrecord2"},
    )
    subject = f"conf-{unique}-main"
    first = http(
        url, "POST", f"/subjects/{subject}/versions?normalize=true", body(main, references=refs)
    )
    assert first.status_code == 200, first.text
    swapped = body(main, references=list(reversed(refs)))
    found = http(url, "POST", f"/subjects/{subject}?normalize=true", swapped)
    assert (found.json()["id"], found.json()["version"]) == (first.json()["id"], 1)
    assert error_of(http(url, "POST", f"/subjects/{subject}", swapped)) == (404, 40403)


def test_a_subject_config_can_ask_for_normalized_registrations(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiTest.testNormalizeConfigFallbackAppliedOutsideImportMode;
    # SubjectVersionsResource.register reads normalize from the config in scope
    from confluent_kafka.schema_registry import ConfigCompatibilityLevel, ServerConfig

    url = stack.registry_url  # the client's ServerConfig has no normalize: over HTTP
    answered = http(url, "PUT", f"/config/{subject}", {"normalize": True}).json()
    assert answered == {"normalize": True}
    assert http(url, "GET", f"/config/{subject}").json() == {"normalize": True}
    first = record("R", F_STRING, custom={"a": 1, "b": 2})
    swapped = record("R", F_STRING, custom={"b": 2, "a": 1})
    one = http(url, "POST", f"/subjects/{subject}/versions", body(first)).json()
    again = http(url, "POST", f"/subjects/{subject}/versions", body(swapped)).json()
    assert (again["id"], again["version"]) == (one["id"], 1)
    assert http(url, "POST", f"/subjects/{subject}", body(swapped)).json()["version"] == 1
    full = ServerConfig(compatibility=ConfigCompatibilityLevel.FULL)
    assert sr.set_config(subject, full) == {"compatibility": "FULL"}  # the client's raw answer
    assert sr.get_config(subject).compatibility_level == ConfigCompatibilityLevel.FULL
    assert http(url, "DELETE", f"/config/{subject}").json() == {
        "compatibilityLevel": "FULL",
        "normalize": True,
    }
    bad = http(url, "PUT", f"/config/{subject}", {"normalize": "yes"})
    assert error_of(bad) == (422, 42203)


# ---------------------------------------------------------------------------- metadata


def test_metadata_is_kept_and_carried_to_the_next_registration(
    stack: Endpoints, subject: str
) -> None:
    # RestApiTest.testRegisterWithAndWithoutMetadata
    url = stack.registry_url
    schema = record("myrecord", {"type": "string", "name": "f1"})
    metadata = {"properties": {"application.version": "2"}}
    first = http(url, "POST", f"/subjects/{subject}/versions", body(schema, metadata=metadata))
    assert first.json()["metadata"] == metadata
    second = http(url, "POST", f"/subjects/{subject}/versions", body(schema))
    assert (second.json()["id"], second.json()["version"]) == (first.json()["id"], 1)
    latest = http(url, "GET", f"/subjects/{subject}/versions/latest").json()
    assert latest["metadata"] == metadata


def test_latest_with_metadata_and_schema_listing(stack: Endpoints, unique: str) -> None:
    # SubjectsResource.getLatestWithMetadata, SchemasResource.getSchemas (no RestApiTest of
    # their own); the client's get_latest_with_metadata
    url, subject = stack.registry_url, f"conf-{unique}-meta"
    http(url, "PUT", f"/config/{subject}", {"compatibility": "NONE"})
    for n, app_version in ((1, "1"), (2, "2"), (3, None)):
        metadata = {"properties": {"app": "shop", "application.version": app_version}}
        sent = body(record(f"R{n}", F_STRING), metadata=metadata if app_version else None)
        assert http(url, "POST", f"/subjects/{subject}/versions", sent).status_code == 200
    sr = SchemaRegistryClient({"url": url})
    found = sr.get_latest_with_metadata(subject, {"application.version": "1"})
    assert (found.version, found.schema.metadata.properties.properties["app"]) == (1, "shop")
    # Version 3 sent no metadata, so it carries version 2's: it is the latest with app=shop.
    assert sr.get_latest_with_metadata(subject, {"app": "shop"}).version == 3
    missing = http(url, "GET", f"/subjects/{subject}/metadata?key=app&value=other")
    assert error_of(missing) == (404, 40403)
    unknown = http(url, "GET", f"/subjects/{subject}-none/metadata?key=app&value=shop")
    assert error_of(unknown) == (404, 40401)
    listed = http(url, "GET", f"/schemas?subjectPrefix=conf-{unique}-meta").json()
    assert [(s["subject"], s["version"]) for s in listed] == [(subject, n) for n in (1, 2, 3)]
    latest = http(url, "GET", f"/schemas?subjectPrefix=conf-{unique}-meta&latestOnly=true")
    assert [s["version"] for s in latest.json()] == [3]
    assert http(url, "GET", f"/subjects/{subject}/versions/1/referencedby").json() == []
    gone = http(url, "GET", f"/subjects/{subject}/versions/9/referencedby")
    assert error_of(gone) == (404, 40402)


def test_header_serializer_carries_the_guid_and_latest_with_metadata_picks_the_writer(
    stack: Endpoints, unique: str
) -> None:
    # The newer confluent-kafka serializers: use.latest.with.metadata and the GUID in the
    # __value_schema_id header (SchemasResource.getSchemaByGuid serves the reader side).
    from confluent_kafka.schema_registry import header_schema_id_serializer
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    url, subject = stack.registry_url, f"conf-{unique}-guid"
    http(url, "PUT", f"/config/{subject}", {"compatibility": "NONE"})
    wanted = record("Wanted", F_STRING)
    sent = http(
        url,
        "POST",
        f"/subjects/{subject}/versions",
        body(wanted, metadata={"properties": {"role": "writer"}}),
    ).json()
    http(
        url,
        "POST",
        f"/subjects/{subject}/versions",
        body(record("Newer", G_INT), metadata={"properties": {"role": "other"}}),
    )
    serializer = AvroSerializer(
        SchemaRegistryClient({"url": url}),
        None,
        conf={
            "auto.register.schemas": False,
            "use.latest.with.metadata": {"role": "writer"},
            "schema.id.serializer": header_schema_id_serializer,
            "subject.name.strategy": lambda ctx, name: subject,
        },
    )
    headers: list[tuple[str, bytes]] = []
    context = SerializationContext("topic-unused", MessageField.VALUE, headers)
    payload = serializer({"f": "hello"}, context)
    ((name, value),) = headers
    assert name == "__value_schema_id"
    assert value[0] == 1 and str(uuid.UUID(bytes=value[1:])) == sent["guid"]
    assert payload == b"\x0ahello"  # the bare Avro body: no 5-byte prefix
    fresh = AvroDeserializer(SchemaRegistryClient({"url": url}))
    assert fresh(payload, SerializationContext("topic-unused", MessageField.VALUE, headers)) == {
        "f": "hello"
    }


# ---------------------------------------------------------------------------- modes


def test_subject_mode_read_only_blocks_writes(
    stack: Endpoints, subject: str, sr: SchemaRegistryClient
) -> None:
    # RestApiModeTest.testReadOnlyMode; RestApiTest.testGlobalMode (its subject part)
    url = stack.registry_url
    sr.register_schema(subject, avro(record("R", F_STRING)))
    assert error_of(http(url, "GET", f"/mode/{subject}")) == (404, 40409)
    assert http(url, "GET", f"/mode/{subject}?defaultToGlobal=true").json() == {
        "mode": http(url, "GET", "/mode").json()["mode"]
    }
    assert sr.update_mode(subject, "READONLY") == "READONLY"
    assert sr.get_mode(subject) == "READONLY"
    try:
        refused = [
            http(url, "POST", f"/subjects/{subject}/versions", body(record("S", F_STRING))),
            http(url, "PUT", f"/config/{subject}", {"compatibility": "NONE"}),
            http(url, "DELETE", f"/subjects/{subject}/versions/1"),
            http(url, "DELETE", f"/subjects/{subject}"),
        ]
        for answer in refused:
            assert error_of(answer) == (422, 42205), answer.text
            assert answer.json()["message"] == (
                f"Subject {subject} in context . is in read-only mode"
            )
        # Reading and re-registering what is there still work.
        assert sr.get_versions(subject) == [1]
        same = http(url, "POST", f"/subjects/{subject}/versions", body(record("R", F_STRING)))
        assert same.json()["version"] == 1
    finally:
        assert sr.delete_mode(subject) == "READONLY"
    assert error_of(http(url, "DELETE", f"/mode/{subject}")) == (404, 40401)
    assert http(url, "DELETE", f"/subjects/{subject}").json() == [1]


def test_invalid_modes(stack: Endpoints, subject: str) -> None:
    # RestApiModeTest.testSetForwardModeForNonGlobalContext; ModeResource's 42204
    url = stack.registry_url
    assert error_of(http(url, "PUT", f"/mode/{subject}", {"mode": "SIDEWAYS"})) == (422, 42204)
    forward = http(url, "PUT", f"/mode/{subject}", {"mode": "FORWARD"})
    assert error_of(forward) == (422, 42204)
    assert forward.json()["message"] == "Forward mode only supported on global level"


def test_import_mode_keeps_ids_and_needs_force_over_schemas(private: str) -> None:
    # RestApiModeTest.testImportMode, testInvalidImportMode, testImportModeWithoutId,
    # testRegisterSchemaWithNoIdAfterImport, testImportModeWithSameSchemaDifferentId,
    # RestApiTest.testImportDifferentSchemaOnSameID
    sr = SchemaRegistryClient({"url": private})
    existing = "imp-existing"
    sr.register_schema(existing, avro(record("Existing", F_STRING)))
    with pytest.raises(SchemaRegistryError) as refused:
        sr.update_global_mode("IMPORT")
    assert (refused.value.error_code, refused.value.error_message) == (
        42205,
        "Cannot import since found existing subjects",
    )
    assert sr.update_mode("imp-target", "IMPORT") == "IMPORT"  # an empty subject: allowed
    try:
        schema = record("Imported", F_STRING)
        kept = http(
            private, "POST", "/subjects/imp-target/versions", body(schema, id=1000, version=1)
        )
        assert (kept.json()["id"], kept.json()["version"]) == (1000, 1)
        # The same schema again without an id answers the version that has it.
        again = http(private, "POST", "/subjects/imp-target/versions", body(schema))
        assert (again.json()["id"], again.json()["version"]) == (1000, 1)
        new_without_id = http(
            private, "POST", "/subjects/imp-target/versions", body(record("Other", F_STRING))
        )
        assert error_of(new_without_id) == (422, 42205)
        assert "is not in read-write mode" in new_without_id.json()["message"]
        # The same schema under another id is allowed in IMPORT (as a new version).
        twin = http(
            private, "POST", "/subjects/imp-target/versions", body(schema, id=2000, version=2)
        )
        assert (twin.json()["id"], twin.json()["version"]) == (2000, 2)
        clash = http(
            private,
            "POST",
            "/subjects/imp-target/versions",
            body(record("Different", F_STRING), id=1000, version=3),
        )
        assert error_of(clash) == (422, 42205)
        assert clash.json()["message"] == (
            "Overwrite new schema with id 1000 in context . is not permitted."
        )
        # RestApiTest.testExplicitNormalizeIgnoredInImportMode: stored as sent.
        props = record("Props", {"type": "string", "name": "f", "zprop": "z", "aprop": "a"})
        verbatim = http(
            private,
            "POST",
            "/subjects/imp-props/versions?normalize=true",
            body(props, id=3000, version=1),
        )
        assert verbatim.status_code == 422  # imp-props is not in IMPORT
        sr.update_mode("imp-props", "IMPORT")
        verbatim = http(
            private,
            "POST",
            "/subjects/imp-props/versions?normalize=true",
            body(props, id=3000, version=1),
        )
        assert '"zprop":"z","aprop":"a"' in verbatim.json()["schema"]
        sr.update_mode("imp-props", "READWRITE")
        # RestApiTest.testImportSameSchemaDifferentVersion: importing again is idempotent.
        for version in (3, 1):
            same = http(
                private,
                "POST",
                "/subjects/imp-target/versions",
                body(schema, id=1000, version=version),
            )
            assert (same.json()["id"], same.json()["version"]) == (1000, version)
        # Incompatible schemas are imported as they are: no compatibility check.
        other = http(
            private,
            "POST",
            "/subjects/imp-target/versions",
            body(record("Imported", G_INT), id=1001, version=4),
        )
        assert other.status_code == 200, other.text
        # A version imported again under another schema replaces it (Confluent's put).
        replaced = http(
            private,
            "POST",
            "/subjects/imp-target/versions",
            body(record("Replacing", F_STRING), id=1002, version=3),
        )
        assert (replaced.json()["id"], replaced.json()["version"]) == (1002, 3)
        assert http(private, "GET", "/subjects/imp-target/versions/3").json()["id"] == 1002
    finally:
        sr.update_mode("imp-target", "READWRITE")
    with_id = http(
        private, "POST", f"/subjects/{existing}/versions", body(record("X", F_STRING), id=5000)
    )
    assert error_of(with_id) == (422, 42205)
    assert with_id.json()["message"] == f"Subject {existing} in context . is not in import mode"
    # After an import, new ids continue above the imported ones.
    fresh = sr.register_schema("imp-after", avro(record("After", F_STRING)))
    assert fresh == 3001  # above 3000, the highest imported


def test_global_modes(private: str) -> None:
    # RestApiTest.testGlobalMode; RestApiModeTest.testClearMode, testSetForwardMode,
    # testDeleteGlobalMode
    sr = SchemaRegistryClient({"url": private})
    subject = "glob-subject"
    sr.register_schema(subject, avro(record("G", F_STRING)))
    try:
        assert sr.update_global_mode("READONLY") == "READONLY"
        assert sr.update_mode(subject, "READWRITE") == "READWRITE"
        assert sr.get_mode(subject) == "READWRITE"
        assert sr.delete_mode(subject) == "READWRITE"
        assert http(private, "GET", f"/mode/{subject}?defaultToGlobal=true").json() == {
            "mode": "READONLY"
        }
        sr.update_mode(subject, "READWRITE")
        assert sr.update_global_mode("READONLY_OVERRIDE") == "READONLY_OVERRIDE"
        assert http(private, "GET", f"/mode/{subject}?defaultToGlobal=true").json() == {
            "mode": "READONLY_OVERRIDE"
        }
        refused = http(
            private, "POST", f"/subjects/{subject}/versions", body(record("H", F_STRING))
        )
        assert error_of(refused) == (422, 42205)
        config = http(private, "PUT", "/config", {"compatibility": "FULL"})
        assert error_of(config) == (422, 42205)
        assert sr.update_global_mode("FORWARD") == "FORWARD"
    finally:
        cleared = http(private, "PUT", "/mode", {"mode": None})
        assert cleared.json() == {"mode": None}
        sr.delete_mode(subject)
    assert sr.get_global_mode() == "READWRITE"
    assert http(private, "DELETE", "/mode").json() == {"mode": "READWRITE"}


def test_global_config_change_and_delete(private: str) -> None:
    # RestApiTest.testConfigDefaults, testGlobalConfigChange
    sr = SchemaRegistryClient({"url": private})
    assert sr.get_compatibility() == "BACKWARD"
    assert http(private, "PUT", "/config", {"compatibility": "FORWARD"}).json() == {
        "compatibility": "FORWARD"
    }
    assert http(private, "GET", "/config").json() == {"compatibilityLevel": "FORWARD"}
    assert http(private, "DELETE", "/config").json() == {"compatibilityLevel": "FORWARD"}
    assert sr.get_compatibility() == "BACKWARD"


# ---------------------------------------------------------------------------- robustness


def test_content_negotiation(stack: Endpoints, subject: str) -> None:
    # RestApiTest.testHttpResponseHeaders and Confluent's @Consumes/@Produces lists
    url, schema = stack.registry_url, body(record("R", F_STRING))
    for sent in (
        CT,
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/octet-stream",
    ):
        ok = http(url, "POST", f"/subjects/{subject}/versions", schema, **{"Content-Type": sent})
        assert ok.status_code == 200, sent
    unsupported = http(
        url, "POST", f"/subjects/{subject}/versions", schema, **{"Content-Type": "text/plain"}
    )
    assert error_of(unsupported) == (415, 415)
    for accept, answered in (
        (None, CT),
        ("*/*", CT),
        ("application/json", "application/json"),
        ("application/vnd.schemaregistry+json", "application/vnd.schemaregistry+json"),
        ("text/html, application/json;q=0.5", "application/json"),
    ):
        headers = {} if accept is None else {"Accept": accept}
        got = http(url, "GET", f"/subjects/{subject}/versions", **headers)
        assert (got.status_code, got.headers["content-type"]) == (200, answered), accept
    refused = http(url, "GET", f"/subjects/{subject}/versions", Accept="text/html")
    assert refused.status_code == 406
    assert refused.json()["error_code"] == 406


def test_bad_requests_get_their_status_and_the_server_keeps_serving(
    stack: Endpoints, subject: str
) -> None:
    # RestApiTest.testBad, testRegisterInvalidSchemaBadType; a malformed body, a 5 MB body,
    # unknown paths and methods
    url = stack.registry_url
    path = f"/subjects/{subject}/versions"
    malformed = requests.post(
        url + path, data=b"{not json", headers={"Content-Type": CT}, timeout=10
    )
    assert malformed.status_code == 400
    bad_type = http(url, "POST", path, {"schema": '{"type": "str"}'})
    assert error_of(bad_type) == (422, 42201)
    huge_schema = record("Huge", F_STRING, doc="x" * (5 * 1024 * 1024))
    too_large = http(url, "POST", path, body(huge_schema))
    assert error_of(too_large) == (422, 42209)
    huge_garbage = requests.post(
        url + path, data=b"[" * (5 * 1024 * 1024), headers={"Content-Type": CT}, timeout=30
    )
    assert huge_garbage.status_code == 400
    assert error_of(http(url, "GET", "/schemas/ids/99999999999999999999")) == (404, 40403)
    assert error_of(http(url, "GET", "/no/such/path")) == (404, 404)
    assert error_of(http(url, "PATCH", path, {})) == (405, 405)
    assert error_of(http(url, "POST", path, ["not", "an", "object"])) == (422, 42201)
    assert http(url, "GET", "/").json() == {}
    assert http(url, "POST", path, body(record("R", F_STRING))).json()["version"] == 1
