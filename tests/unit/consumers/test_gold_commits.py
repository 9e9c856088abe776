"""Gold names the Silver version it was built from in each table's commit, in either of
the two forms its writers use: delta-rs's commit property (the embedded pipeline) or
delta-spark's ``userMetadata`` (the Spark job). Anything else is refused, by name."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from consumers.errors import PipelineError
from consumers.gold import GOLD_TABLES, SILVER_VERSION, USER_METADATA, built_from, read_gold


def write(warehouse: Path, name: str, metadata: dict[str, str]) -> None:
    """One Gold table of one row, its commit carrying ``metadata`` as top-level keys of
    commitInfo (where delta-spark writes ``userMetadata``)."""
    write_deltalake(
        str(warehouse / "gold" / name),
        pa.table({"table": [name]}),
        mode="overwrite",
        commit_properties=CommitProperties(custom_metadata=metadata),
    )


def spark_form(version: int) -> dict[str, str]:
    return {USER_METADATA: json.dumps({SILVER_VERSION: str(version)})}


def test_a_gold_whose_commits_carry_the_version_as_spark_writes_it_is_read(
    tmp_path: Path,
) -> None:
    for name in GOLD_TABLES:
        write(tmp_path, name, spark_form(7))
    commit = DeltaTable(str(tmp_path / "gold" / "spikes")).history(1)[0]
    assert commit[USER_METADATA] == '{"flashsale.silver_version": "7"}'
    assert SILVER_VERSION not in commit
    tables, version = read_gold(tmp_path)
    assert version == 7
    assert {n: t["table"].to_pylist() for n, t in tables.items()} == {n: [n] for n in GOLD_TABLES}


def test_the_two_forms_mix_when_they_name_one_version_and_not_otherwise(
    tmp_path: Path,
) -> None:
    first, *rest = GOLD_TABLES
    write(tmp_path, first, {SILVER_VERSION: "3"})
    for name in rest:
        write(tmp_path, name, spark_form(3))
    assert read_gold(tmp_path)[1] == 3
    write(tmp_path, first, {SILVER_VERSION: "4"})
    with pytest.raises(PipelineError, match=rf"not one snapshot of Silver \({first} from 4, "):
        read_gold(tmp_path)


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {USER_METADATA: "nightly rebuild"},
        {USER_METADATA: json.dumps({"silver_version": "3"})},
        {USER_METADATA: json.dumps({SILVER_VERSION: "three"})},
        {USER_METADATA: json.dumps(["flashsale.silver_version", "3"])},
    ],
    ids=["nothing", "free-text", "another-key", "not-a-number", "not-an-object"],
)
def test_a_table_that_names_no_silver_version_is_refused_by_name(
    tmp_path: Path, metadata: dict[str, str]
) -> None:
    for name in GOLD_TABLES:
        write(tmp_path, name, spark_form(3))
    write(tmp_path, "product_sales", metadata)
    with pytest.raises(PipelineError) as raised:
        read_gold(tmp_path)
    assert str(raised.value) == (
        f"Gold in {tmp_path} does not say which Silver version it was built from: the last "
        f"commit of product_sales has neither the commit property {SILVER_VERSION} nor a "
        f"{USER_METADATA} naming it; run: flashsale pipeline run"
    )


def test_built_from_prefers_the_commit_property() -> None:
    both = {SILVER_VERSION: "5", **spark_form(6)}
    assert built_from(both) == "5"
    assert built_from(spark_form(6)) == "6"
    assert built_from({"operation": "WRITE"}) is None
