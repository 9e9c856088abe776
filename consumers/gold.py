"""Gold: KPI tables from SQL files that run unchanged on DataFusion, DuckDB and Spark.

The SQL in ``gold_sql/`` reads one table, ``silver_events``, and uses only what the
three engines share (``date_trunc``, ``CASE``, window aggregates, ``GREATEST``...).
The embedded engines here are DataFusion (through deltalake's ``QueryBuilder``, over
the Delta table itself) and DuckDB (over the same table as Arrow); Spark runs the
same files in ``consumers/spark_job.py``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder, write_deltalake

from consumers.errors import PipelineError

__all__ = ["ENGINES", "KPI_SQL", "compute_kpis", "kpi_sql", "write_gold"]

SQL_DIR = Path(__file__).resolve().parent / "gold_sql"
ENGINES = ("datafusion", "duckdb")


def kpi_sql() -> dict[str, str]:
    """KPI name -> SQL text."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(SQL_DIR.glob("*.sql"))}


KPI_SQL = kpi_sql()


def _silver(warehouse: Path) -> DeltaTable:
    path = warehouse / "silver" / "events"
    if not DeltaTable.is_deltatable(str(path)):
        raise PipelineError(f"no Silver table in {warehouse}; run: flashsale pipeline run")
    return DeltaTable(str(path))


def compute_kpis(warehouse: Path, engine: str = "datafusion") -> dict[str, pa.Table]:
    """Every KPI table, computed by ``engine`` over the Silver table.

    Whatever the engine, a table has the same Arrow schema: the SQL casts its sums, and
    what the engines still spell differently (string views, the name of UTC, which
    columns may be null) is made one here."""
    silver = _silver(warehouse)
    if engine == "datafusion":
        builder = QueryBuilder().register("silver_events", silver)
        tables = {name: pa.table(builder.execute(sql).read_all()) for name, sql in KPI_SQL.items()}
    elif engine == "duckdb":
        import duckdb

        connection = duckdb.connect()
        try:
            connection.register("silver_events", silver.to_pyarrow_table())
            tables = {name: connection.sql(sql).to_arrow_table() for name, sql in KPI_SQL.items()}
        finally:
            connection.close()
    else:
        raise PipelineError(f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    return {name: _conform(table) for name, table in tables.items()}


def _conform(table: pa.Table) -> pa.Table:
    fields = []
    for f in table.schema:
        kind = f.type
        if pa.types.is_string_view(kind) or pa.types.is_large_string(kind):
            kind = pa.string()
        elif pa.types.is_timestamp(kind):
            kind = pa.timestamp("us", tz="UTC")
        fields.append(pa.field(f.name, kind, nullable=True))
    return table.cast(pa.schema(fields))


def write_gold(warehouse: Path, kpis: dict[str, pa.Table]) -> None:
    """Each KPI table as a Delta table under ``gold/``, replaced on every run."""
    for name, table in kpis.items():
        write_deltalake(
            str(warehouse / "gold" / name), table, mode="overwrite", schema_mode="overwrite"
        )
