"""The encoder's byte-for-byte comparisons, on runs short enough to be the mutation
command's test (``python -m bench mutation``): a few hundred events of each schema
version against AvroSerializer, and fewer random records against fastavro. The long
runs of test_encoding.py cover more values; these keep each mutant's check to a second.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.contract.catalog import SchemaCatalog
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario
from tests.unit.kafka.test_encoding import (
    WIDE,
    WIDE_VALUES,
    serializer_and_encoder,
    writes_as_fastavro,
)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_short_run_equals_avro_serializer(catalog: SchemaCatalog, version: int) -> None:
    serializer, encoder = serializer_and_encoder(catalog, version, f"short{version}")
    scenario = load_scenario("flash-sale").with_overrides(schema_version=version)
    events = list(Simulation(scenario, 2).events(max_events=600))
    kinds = {e.event_type.value for e in events}
    assert kinds == {"view", "cart", "purchase"}
    assert [encoder(e) for e in events] == [serializer(e) for e in events]


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(dict(WIDE_VALUES)),
    st.sets(st.sampled_from([f["name"] for f in WIDE["fields"]])),
)
def test_a_few_random_records_equal_fastavro(datum: dict[str, Any], distinct: set[str]) -> None:
    writes_as_fastavro(datum, distinct)
