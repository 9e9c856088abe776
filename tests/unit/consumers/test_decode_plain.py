"""Silver's plain decoding (records read without their logical types, decimals and
timestamps made columns afterwards) against the decoder's reading with them: the same
columns, value for value, for every writer version of the contract; and the writers,
values and bodies it must leave to the whole decoder. Pure logic: the registry's
answers are given by id (no registry is under test here)."""

from __future__ import annotations

import io
import json
import struct
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumers.decode import Decoder, _decimals, plain_columns
from consumers.silver import CONTRACT, SilverJob
from producer.contract.catalog import bundled_schemas_dir
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario

SCHEMAS = bundled_schemas_dir()


class Answers:
    """The registry's answer for each schema id."""

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = texts

    def get_schema(self, schema_id: int) -> Schema:
        if schema_id not in self.texts:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return Schema(self.texts[schema_id], "AVRO")


def writer_text(version: int) -> str:
    return (SCHEMAS / f"flash_sale_event-v{version}.avsc").read_text(encoding="utf-8")


def framed(schema_id: int, text: str, datum: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(json.loads(text)), datum)
    return struct.pack(">bI", 0, schema_id) + body.getvalue()


def decoder(texts: dict[int, str]) -> Decoder:
    reader = CONTRACT.read_text(encoding="utf-8")
    return Decoder(Answers(texts), fastavro.parse_schema(json.loads(reader)), reader)  # type: ignore[arg-type]


@pytest.fixture
def job(tmp_path: Path) -> SilverJob:
    return SilverJob(tmp_path, {"url": "http://127.0.0.1:9"}, "events")


def edge_cases(version: int) -> list[dict[str, Any]]:
    """Values at the ends of what the columns hold: large and negative money, no list
    price, the epoch's first millisecond."""
    base = next(iter(simulated(version, 1)))
    cases = [
        {**base, "price": Decimal("99999999.99"), "revenue": Decimal("9899999999.01")},
        {**base, "price": Decimal("-0.01"), "revenue": Decimal("0.00")},
        {**base, "timestamp": 0},
    ]
    if version >= 2:
        cases += [{**base, "list_price": None}, {**base, "list_price": Decimal("0.10")}]
    return cases


def simulated(version: int, count: int) -> list[dict[str, Any]]:
    scenario = load_scenario("flash-sale").with_overrides(schema_version=version)
    events = Simulation(scenario, seed=version).events(max_events=count)
    return [e.to_avro(version) for e in events]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_plain_decoding_gives_the_columns_of_decoding_with_logical_types(
    job: SilverJob, version: int
) -> None:
    text = writer_text(version)
    values = [framed(7, text, d) for d in simulated(version, 300) + edge_cases(version)]
    decoding = decoder({7: text})
    logical = pa.Table.from_pylist([decoding.decode(v) for v in values], schema=job._wide)
    plain = [decoding.decode_plain(v) for v in values]
    assert all(p is not None for p in plain)
    table = plain_columns(pa.Table.from_pylist(plain, schema=job._plain), decoding.logical)
    assert table.cast(job._wide).equals(logical)


def test_a_writer_whose_logical_types_are_not_the_readers_is_left_to_the_decoder() -> None:
    definition = json.loads(writer_text(3))
    for field in definition["fields"]:
        if field["name"] == "price":
            field["type"] = {**field["type"], "scale": 3}
    text = json.dumps(definition)
    datum = {**simulated(3, 1)[0], "price": Decimal("1.234")}
    value = framed(8, text, datum)
    decoding = decoder({8: text})
    assert decoding.decode_plain(value) is None
    assert decoding.decode(value)["price"] == Decimal("1.234")


def test_a_body_that_does_not_read_cleanly_is_left_to_the_decoder() -> None:
    value = framed(3, writer_text(3), simulated(3, 1)[0])
    decoding = decoder({3: writer_text(3)})
    assert decoding.decode_plain(value) is not None
    for broken in (value + b"\x00", value[:-3], b"\x01" + value[1:], value[:4], None):
        assert decoding.decode_plain(broken) is None
    assert decoding.decode_plain(struct.pack(">bI", 0, 4) + value[5:]) is None  # unknown id


def test_decimal_bytes_become_decimals_of_their_scale() -> None:
    numbers = [0, 1, -1, 255, -256, 2**63, -(2**63) - 1, 10**38 - 1, -(10**38) + 1, None]
    encoded = [
        None if n is None else n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)
        for n in numbers
    ]
    column = _decimals(pa.chunked_array([pa.array(encoded, pa.binary())]), 2)
    assert column.type == pa.decimal128(38, 2)
    exact = Context(prec=40)
    assert column.to_pylist() == [
        None if n is None else Decimal(n).scaleb(-2, exact) for n in numbers
    ]
    with pytest.raises(ValueError, match="38 digits"):
        _decimals(pa.chunked_array([pa.array([(10**38).to_bytes(17, "big")])]), 2)
