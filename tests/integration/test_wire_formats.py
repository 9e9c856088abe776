"""The consumers' decoder reads both wire formats through a real registry: the 5-byte
prefix, and the schema GUID (or id) in the ``__value_schema_id`` header, each written
by confluent-kafka's own serializer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    header_schema_id_serializer,
    prefix_schema_id_serializer,
)
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from deltalake import DeltaTable

from consumers.decode import Decoder, Rejected
from tests.integration.conftest import Endpoints, cli

WRITER = {"type": "record", "name": "Sale", "fields": [{"name": "sku", "type": "string"}]}
# Long enough: confluent-kafka's AvroDeserializer refuses any value of 5 bytes or
# fewer, even a bare body whose writer is in the header.
SKU = "A-1-flash-sale"
READER = {
    "type": "record",
    "name": "Sale",
    "fields": [
        {"name": "sku", "type": "string"},
        {"name": "channel", "type": "string", "default": "web"},
    ],
}


def one_record_in_each_format(
    stack: Endpoints, topic: str, subject: str, broken: tuple[bytes, ...] = ()
) -> tuple[Any, bytes, bytes]:
    """WRITER registered, then one record written in the prefix and one in the header
    format into a new one-partition ``topic`` (then a bare body for each ``broken``
    header value): the registered schema and the two values."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    client = SchemaRegistryClient({"url": stack.registry_url})
    registered = client.register_schema_full_response(subject, Schema(json.dumps(WRITER), "AVRO"))
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    prefixed, _ = serialize(stack.registry_url, subject, prefix_schema_id_serializer)
    bare, headers = serialize(stack.registry_url, subject, header_schema_id_serializer)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    producer.produce(topic, prefixed)
    producer.produce(topic, bare, headers=headers)
    for header in broken:
        producer.produce(topic, bare, headers=[("__value_schema_id", header)])
    assert producer.flush(30) == 0
    return registered, prefixed, bare


def serialize(url: str, subject: str, id_serializer: Any) -> tuple[bytes, list[Any]]:
    serializer = AvroSerializer(
        SchemaRegistryClient({"url": url}),
        json.dumps(WRITER),
        conf={
            "auto.register.schemas": False,
            "use.latest.version": True,
            "schema.id.serializer": id_serializer,
            "subject.name.strategy": lambda ctx, name: subject,
        },
    )
    headers: list[Any] = []
    value = serializer({"sku": SKU}, SerializationContext("t", MessageField.VALUE, headers))
    return value, headers


def test_the_decoder_reads_the_prefix_and_the_header_guid(stack: Endpoints, subject: str) -> None:
    client = SchemaRegistryClient({"url": stack.registry_url})
    registered = client.register_schema_full_response(subject, Schema(json.dumps(WRITER), "AVRO"))
    decoder = Decoder(client, fastavro.parse_schema(READER), json.dumps(READER))

    prefixed, no_headers = serialize(stack.registry_url, subject, prefix_schema_id_serializer)
    bare, headers = serialize(stack.registry_url, subject, header_schema_id_serializer)
    assert no_headers == [] and prefixed[0] == 0
    assert bare == prefixed[5:]  # no prefix: the GUID is in the header
    ((name, value),) = headers
    assert name == "__value_schema_id" and value[0] == 1
    assert str(uuid.UUID(bytes=value[1:])) == registered.guid

    expected = {"sku": SKU, "channel": "web"}
    assert decoder.decode(prefixed) == expected
    assert decoder.decode(bare, headers) == expected

    unknown = str(uuid.uuid4())
    with pytest.raises(Rejected, match=f"^unknown schema guid: {unknown} \\("):
        decoder.decode(bare, [("__value_schema_id", b"\x01" + uuid.UUID(unknown).bytes)])


def test_bronze_keeps_the_writer_each_record_names(
    stack: Endpoints, topic: str, subject: str, tmp_path: Path
) -> None:
    from deltalake import DeltaTable

    from consumers.bronze import BronzeIngest

    registered, prefixed, bare = one_record_in_each_format(stack, topic, subject, (b"\x01\x02",))

    table = tmp_path / "bronze"
    kafka = {"bootstrap.servers": stack.bootstrap_servers, "session.timeout.ms": 6000}
    BronzeIngest(kafka, topic, table).run(until_idle=True, idle_seconds=1.0)
    rows = DeltaTable(str(table)).to_pyarrow_table().sort_by("offset").to_pylist()
    named = [(r["schema_id_in"], r["schema_id"], r["schema_guid"], r["value"]) for r in rows]
    assert named == [
        ("prefix", registered.schema_id, None, prefixed),
        ("header", None, registered.guid, bare),  # the value as it came: the bare body
        ("header", None, None, bare),  # an unreadable header: Silver will say why
    ]


def test_flashsale_consume_reads_both_formats(stack: Endpoints, topic: str, subject: str) -> None:

    from tests.integration.conftest import cli

    registered, _, _ = one_record_in_each_format(stack, topic, subject)

    read = cli(stack, "consume", "--topic", topic, "--from-beginning", "--max", "2",
               "--show-schema-id")  # fmt: skip
    assert read.returncode == 0 and read.stderr == "", read.stderr
    assert [json.loads(line) for line in read.stdout.splitlines()] == [
        {"_schema_id": registered.schema_id, "sku": SKU},
        {"_schema_id": None, "_schema_guid": registered.guid, "sku": SKU},
    ]


@pytest.mark.slow
def test_produce_with_the_schema_id_in_a_header_reconciles_end_to_end_and_after_a_replay(
    stack: Endpoints, topic: str, tmp_path: Path
) -> None:
    # produce names the writer by its GUID in the header, across a mid-run switch from
    # v1 to v3; the records are what Confluent's header serializer writes, and the
    # pipeline takes them to Gold, which equals the ledger.
    assert cli(stack, "schemas", "register", "--all", "--topic", topic).returncode == 0
    ledger, warehouse = tmp_path / "ledger.json", tmp_path / "warehouse"
    produced = cli(stack, "produce", "--topic", topic, "--create-topic", "--schema-id-in",
                   "header", "--scenario", "flash-sale", "--schema-version", "1",
                   "--switch-to-version", "3", "--switch-at", "2m", "--max-rate",
                   "--duration", "4m", "--rate-multiplier", "0.05", "--ledger", str(ledger),
                   "--quiet")  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    guids = {
        version: SchemaRegistryClient({"url": stack.registry_url})
        .lookup_schema(f"{topic}-value", Schema(schema_text(version), "AVRO"))
        .guid
        for version in (1, 3)
    }
    # A shop that prices in EUR only: Silver quarantines every event (its money is
    # USD). Fixed, the quarantine is replayed: each record is decoded as it came, by
    # the GUID its header named, not taken for a prefix-framed one.
    ran = cli(stack, "pipeline", "run", "--until-idle", "--topic", topic,
              "--warehouse", str(warehouse), "--currency", "EUR")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    quarantine = DeltaTable(str(warehouse / "silver" / "quarantine")).to_pyarrow_table()
    assert quarantine.num_rows == json.loads(ledger.read_text())["total_events"] > 0
    assert {r.split(":")[0] for r in quarantine["reason"].to_pylist()} == {"foreign currency"}
    replayed = cli(stack, "pipeline", "replay-quarantine", "--topic", topic,
                   "--warehouse", str(warehouse))  # fmt: skip
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert DeltaTable(str(warehouse / "silver" / "quarantine")).to_pyarrow_table().num_rows == 0
    bronze = DeltaTable(str(warehouse / "bronze" / "events")).to_pyarrow_table().to_pylist()
    assert bronze and {row["schema_id_in"] for row in bronze} == {"header"}
    assert {row["schema_guid"] for row in bronze} == set(guids.values())  # both versions
    assert all(row["value"][:1] != b"\x00" for row in bronze)  # no prefix: the bare body
    verified = cli(stack, "kpis", "--warehouse", str(warehouse), "--verify-ledger", str(ledger))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "reconciled: every Gold table equals the ledger (" in verified.stdout
    events = json.loads(ledger.read_text())["total_events"]
    silver = DeltaTable(str(warehouse / "silver" / "events")).to_pyarrow_table()
    assert silver.num_rows == events == len(bronze)


def schema_text(version: int) -> str:
    from producer.contract.catalog import bundled_schemas_dir, load_catalog

    return load_catalog(bundled_schemas_dir()).get(version).text
