"""Compaction and vacuum on real Delta tables in a folder (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from consumers.errors import PipelineError, UnsafeRetention
from consumers.maintenance import compact_warehouse


def small_appends(path: Path, rounds: int, configuration: dict[str, str] | None = None) -> None:
    for i in range(rounds):
        batch = pa.table({"id": [i * 10 + j for j in range(10)], "round": [i] * 10})
        write_deltalake(str(path), batch, mode="append", configuration=configuration)


def rows(path: Path) -> list[dict[str, int]]:
    return sorted(DeltaTable(str(path)).to_pyarrow_table().to_pylist(), key=lambda r: r["id"])


def test_compaction_leaves_one_file_per_table_and_every_row(tmp_path: Path) -> None:
    small_appends(tmp_path / "bronze" / "events", 6)
    small_appends(tmp_path / "gold" / "kpis", 3)
    before = {name: rows(tmp_path / name) for name in ("bronze/events", "gold/kpis")}
    done = compact_warehouse(tmp_path)
    assert [(d.table, d.files_before, d.files_after, d.vacuumed) for d in done] == [
        ("bronze/events", 6, 1, 0),  # the replaced files are kept: a reader may need them
        ("gold/kpis", 3, 1, 0),
    ]
    assert {name: rows(tmp_path / name) for name in before} == before


def test_a_retention_below_the_tables_is_refused_unless_forced(tmp_path: Path) -> None:
    table = tmp_path / "silver" / "events"
    small_appends(table, 3, {"delta.deletedFileRetentionDuration": "interval 2 hours"})
    with pytest.raises(UnsafeRetention) as refused:
        compact_warehouse(tmp_path, retention_hours=1)
    assert str(refused.value) == (
        "compact: silver/events: a retention of 1h is below the table's 2h, so a reader still "
        "on an older version could lose files; give --force to vacuum anyway"
    )
    assert len(DeltaTable(str(table)).file_uris()) == 3  # nothing was touched
    assert compact_warehouse(tmp_path, retention_hours=2)[0].files_after == 1
    # Forced, a zero retention deletes the files compaction replaced.
    small_appends(table, 2)
    forced = compact_warehouse(tmp_path, retention_hours=0, force=True)[0]
    assert (forced.files_before, forced.files_after) == (3, 1)
    assert forced.vacuumed == 6
    assert len(rows(table)) == 50


def test_a_folder_without_tables_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"^compact: warehouse .*: no Delta tables in it$"):
        compact_warehouse(tmp_path)
