"""Gold's product and category tables have one SQL text each, whether computed whole
(over a view of the partial sums' SQL over Silver) or updated (over the partial sums
stored and updated), and the partial sums' SQL file is not a KPI table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import consumers.gold as gold
from consumers import spark_job
from consumers.gold import (
    FROM_SUMS,
    GOLD_TABLES,
    KPI_SQL,
    SQL_DIR,
    SUMS,
    SUMS_SQL,
    compute_kpis,
    gold_inputs,
    read_gold,
    refresh_gold,
    update_kpis,
)
from tests.unit.consumers.test_gold_minutes import _last, gold_of_a_first_minute


def _code(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def test_the_product_and_category_tables_read_the_sums_and_nothing_else_sums_silver() -> None:
    assert FROM_SUMS == ("funnel_per_category", "product_funnel", "product_sales")
    assert (SQL_DIR / f"{SUMS}.sql").read_text(encoding="utf-8") == SUMS_SQL
    assert "silver_events" in _code(SUMS_SQL) and "gold_sums" not in _code(SUMS_SQL)
    for name in FROM_SUMS:
        sql = _code(KPI_SQL[name])
        assert "FROM gold_sums" in sql, name
        assert "silver_events" not in sql and "event_type" not in sql, name
    # No second text of them in the code: gold.py holds no query of the sums.
    source = Path(gold.__file__).read_text(encoding="utf-8")
    assert "FROM gold_sums" not in source and "event_type = 'view'" not in source
    # A comment naming gold_sums does not make a table one of them.
    assert all("gold_sums" not in _code(KPI_SQL[n]) for n in KPI_SQL if n not in FROM_SUMS)


def test_whole_and_updated_gold_run_the_same_sql_text_of_each_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every query run, by which path: the tables of FROM_SUMS are their SQL file's
    # text, to the letter, whether over the sums' view or over the stored sums.
    w, minutes, previous = gold_of_a_first_minute(tmp_path)
    w.arrive(minutes[1][:40])
    runs: list[tuple[dict[str, str], bool]] = []
    computed = gold._computed

    def spy(*args: Any, **kwargs: Any) -> dict[str, pa.Table]:
        queries = args[3]
        sums = args[4] if len(args) > 4 else kwargs.get("sums")
        runs.append((dict(queries), sums is not None))
        return computed(*args, **kwargs)

    monkeypatch.setattr(gold, "_computed", spy)
    version = DeltaTable(str(w.silver)).version()
    assert update_kpis(tmp_path, previous, version, gold_inputs(tmp_path, version)) is not None
    compute_kpis(tmp_path, "datafusion", version)
    compute_kpis(tmp_path, "duckdb", version)
    for name in FROM_SUMS:
        texts = [(q[name], stored) for q, stored in runs if name in q]
        assert texts == [
            (KPI_SQL[name], True),  # updated: over the stored sums
            (KPI_SQL[name], False),  # whole, DataFusion: over the sums' view
            (KPI_SQL[name], False),  # whole, DuckDB
        ], name
        assert KPI_SQL[name] == (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def test_the_partial_sums_file_is_no_kpi_table(tmp_path: Path) -> None:
    w, minutes, _ = gold_of_a_first_minute(tmp_path)
    assert SUMS not in KPI_SQL and SUMS not in GOLD_TABLES
    assert sorted(p.stem for p in SQL_DIR.glob("*.sql")) == sorted([*KPI_SQL, SUMS])
    # Stored beside Gold's tables, as the sums a run updates, but neither computed,
    # read nor listed as one of them.
    gold_dir = tmp_path / "gold"
    assert sorted(p.name for p in gold_dir.iterdir()) == sorted([*GOLD_TABLES, SUMS])
    w.arrive(minutes[1][:40])
    kpis, _, computed = refresh_gold(tmp_path)
    assert computed and set(kpis) == set(GOLD_TABLES)
    assert set(read_gold(tmp_path)[0]) == set(GOLD_TABLES)
    assert set(compute_kpis(tmp_path, "duckdb")) == set(GOLD_TABLES)
    # Spark ships the sums' file with the KPIs' (it registers the view from it).
    shipped = spark_job.gold_sql_files()
    assert SQL_DIR / f"{SUMS}.sql" == spark_job.SQL_DIR / spark_job.SUMS_SQL_FILE
    assert sorted(p.stem for p in shipped) == sorted([*KPI_SQL, SUMS])


def test_a_change_of_the_sums_sql_is_a_change_of_gold_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Gold and its stored sums name the code they were computed by: the sums' SQL is
    # part of it, so that sums of another text are never updated as if they were these.
    w, _, previous = gold_of_a_first_minute(tmp_path)
    version = DeltaTable(str(w.silver)).version()
    assert gold_inputs(tmp_path, version) == previous == _last(tmp_path)
    monkeypatch.setattr(gold, "SUMS_SQL", SUMS_SQL.replace("ELSE 0 END", "END"))
    assert gold_inputs(tmp_path, version) != previous
