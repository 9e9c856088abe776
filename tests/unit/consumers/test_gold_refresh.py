"""Gold is computed again exactly when something it is computed from changed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from consumers.gold import GOLD_TABLES, Refreshed, compute_kpis, read_gold, refresh_gold, write_gold
from consumers.products import products_path
from consumers.tables import QUARANTINE_SCHEMA
from tests.unit.consumers.conftest import silver_warehouse


def gold_versions(warehouse: Path) -> dict[str, int]:
    return {n: DeltaTable(str(warehouse / "gold" / n)).version() for n in GOLD_TABLES}


def test_gold_is_computed_once_per_change_of_what_it_is_computed_from(tmp_path: Path) -> None:
    silver_warehouse(tmp_path, seconds=180)
    first, version, how = refresh_gold(tmp_path)
    assert how is Refreshed.WHOLE
    stored = read_gold(tmp_path)
    assert stored[1] == version
    assert all(stored[0][n].equals(first[n]) for n in GOLD_TABLES)
    written = gold_versions(tmp_path)

    # Nothing new: Gold is read as it stands, not written again.
    again, _, how = refresh_gold(tmp_path)
    assert how is Refreshed.UNCHANGED
    assert gold_versions(tmp_path) == written
    assert all(again[n].equals(first[n]) for n in GOLD_TABLES)

    # Each input, changed on its own, makes the next run compute Gold again.
    def changes_gold() -> bool:
        before = gold_versions(tmp_path)
        _, _, how = refresh_gold(tmp_path)
        after = gold_versions(tmp_path)
        computed = how is not Refreshed.UNCHANGED
        assert computed == all(after[n] == before[n] + 1 for n in GOLD_TABLES)
        return computed

    # The catalog published again as it was (read from other offsets) changes nothing
    # Gold reads; a product in another category does.
    products = DeltaTable(str(products_path(tmp_path))).to_pyarrow_table()
    offsets = pc.add(products["kafka_offset"], 1000)
    republished = products.set_column(
        products.schema.get_field_index("kafka_offset"), "kafka_offset", offsets
    )
    write_deltalake(str(products_path(tmp_path)), republished, mode="overwrite")
    assert not changes_gold()
    categories = products["category"].to_pylist()
    moved = products.set_column(
        products.schema.get_field_index("category"),
        "category",
        pa.array(["moved", *categories[1:]], products.schema.field("category").type),
    )
    write_deltalake(str(products_path(tmp_path)), moved, mode="overwrite")  # the catalog
    assert changes_gold()
    assert not changes_gold()
    write_deltalake(
        str(tmp_path / "silver" / "quarantine"), QUARANTINE_SCHEMA.empty_table(), mode="append"
    )
    assert changes_gold()
    silver = DeltaTable(str(tmp_path / "silver" / "events"))
    one = silver.to_pyarrow_table(columns=["event_id"])["event_id"][0].as_py()
    silver.delete(f"event_id = '{one}'")  # Silver itself
    assert changes_gold()
    assert not changes_gold()


def test_a_gold_table_written_by_anything_else_is_computed_again(tmp_path: Path) -> None:
    silver_warehouse(tmp_path, seconds=180)
    kpis, version, _ = refresh_gold(tmp_path)
    # A table replaced without the inputs it was computed from (an older flashsale,
    # the Spark job, a hand edit) is not trusted to be current.
    write_gold(tmp_path, {"spikes": kpis["spikes"].slice(0, 1)}, version)
    again, _, computed = refresh_gold(tmp_path)
    assert computed
    assert again["spikes"].equals(compute_kpis(tmp_path, "datafusion", version)["spikes"])
    assert read_gold(tmp_path)[0]["spikes"].equals(again["spikes"])
