"""Gold: KPI tables from SQL files that run unchanged on DataFusion, DuckDB and Spark.

The SQL in ``gold_sql/`` reads ``silver_events`` and the product dimension
``silver_products`` (the shop's catalog, for categories and brands), and uses only what
the three engines share (``date_trunc``, ``CASE``, window aggregates, ``GREATEST``...).
The embedded engines here are DataFusion (through deltalake's ``QueryBuilder``, over
the Delta table itself) and DuckDB (over the same table as Arrow); Spark runs the
same files in ``consumers/spark_job.py``.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, QueryBuilder, write_deltalake

from consumers.errors import PipelineError
from consumers.evolve import arrow
from consumers.products import ensure_products
from consumers.quality import fill_minutes, quality_per_minute

__all__ = [
    "ENGINES",
    "GOLD_TABLES",
    "KPI_SQL",
    "SILVER_VERSION",
    "USER_METADATA",
    "built_from",
    "compute_kpis",
    "kpi_sql",
    "read_gold",
    "silver_version",
    "write_gold",
]

SQL_DIR = Path(__file__).resolve().parent / "gold_sql"
ENGINES = ("datafusion", "duckdb")
# Each Gold table's commit says which Silver version it was computed from: delta-rs
# writes it as this commit property; delta-spark (the Spark job) as a JSON object
# {SILVER_VERSION: "N"} in the commit's USER_METADATA (its `userMetadata` option).
SILVER_VERSION = "flashsale.silver_version"
USER_METADATA = "userMetadata"
# And everything it was computed from (see :func:`gold_inputs`): a run whose inputs
# are those of the Gold as it stands reads it instead of computing it again.
INPUTS = "flashsale.gold_inputs"


def kpi_sql() -> dict[str, str]:
    """KPI name -> SQL text."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(SQL_DIR.glob("*.sql"))}


KPI_SQL = kpi_sql()
try:
    _VERSION = package_version("flashsale")
except PackageNotFoundError:  # pragma: no cover - run from a checkout not installed
    _VERSION = "unknown"
# Per-minute tables whose minutes without events are zero rows.
PER_MINUTE = ("revenue_per_minute", "funnel_per_minute")
# Every Gold table: the SQL ones, and the data quality per minute (computed in Python,
# see :func:`consumers.quality.quality_per_minute`).
GOLD_TABLES = (*KPI_SQL, "quality_per_minute")


def _silver(warehouse: Path, version: int | None = None) -> DeltaTable:
    path = warehouse / "silver" / "events"
    if not DeltaTable.is_deltatable(str(path)):
        raise PipelineError(f"no Silver table in {warehouse}; run: flashsale pipeline run")
    return DeltaTable(str(path), version=version)


def silver_version(warehouse: Path) -> int:
    """The Silver table's current version."""
    return _silver(warehouse).version()


def compute_kpis(
    warehouse: Path, engine: str = "datafusion", version: int | None = None
) -> dict[str, pa.Table]:
    """Every KPI table, computed by ``engine`` over the Silver table (at ``version``, or
    the current one).

    Whatever the engine, a table has the same Arrow schema: the SQL casts its sums, and
    what the engines still spell differently (string views, the name of UTC, which
    columns may be null) is made one here. Minutes without events between the first
    and the last are zero rows in the per-minute tables (filled here: a series of
    minutes is spelled differently by every engine); spikes are computed over the
    minutes that had events."""
    silver = _silver(warehouse, version)
    products = DeltaTable(str(ensure_products(warehouse)))
    if engine == "datafusion":
        builder = QueryBuilder().register("silver_events", silver)
        builder.register("silver_products", products)
        tables = {name: pa.table(builder.execute(sql).read_all()) for name, sql in KPI_SQL.items()}
    elif engine == "duckdb":
        import duckdb

        connection = duckdb.connect()
        try:
            connection.register("silver_events", arrow(silver))
            connection.register("silver_products", arrow(products))
            tables = {name: connection.sql(sql).to_arrow_table() for name, sql in KPI_SQL.items()}
        finally:
            connection.close()
    else:
        raise PipelineError(f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    kpis = {name: _conform(table) for name, table in tables.items()}
    for name in PER_MINUTE:
        kpis[name] = fill_minutes(kpis[name])
    kpis["quality_per_minute"] = quality_per_minute(warehouse, version)
    return kpis


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


def write_gold(
    warehouse: Path, kpis: dict[str, pa.Table], version: int, inputs: str | None = None
) -> None:
    """Each KPI table as a Delta table under ``gold/``, replaced on every run; each
    commit records the Silver ``version`` the tables were computed from (and all their
    ``inputs``, when given: see :func:`refresh_gold`).

    Delta commits one table at a time, so a crash between two tables leaves Gold
    built from two Silver versions: :func:`read_gold` refuses such a mix."""
    metadata = {SILVER_VERSION: str(version)}
    if inputs is not None:
        metadata[INPUTS] = inputs
    commit = CommitProperties(custom_metadata=metadata)
    for name, table in kpis.items():
        write_deltalake(
            str(warehouse / "gold" / name),
            table,
            mode="overwrite",
            schema_mode="overwrite",
            commit_properties=commit,
        )


def gold_inputs(warehouse: Path, version: int) -> str:
    """What Gold computed from Silver at ``version`` depends on, as one string: that
    version, the versions of the product dimension and of the quarantine (data
    quality), and the Gold code (the SQL files and flashsale's version). Bronze is
    not named: the data quality reads only the Bronze records Silver's version has
    processed."""
    quarantine = warehouse / "silver" / "quarantine"
    code = hashlib.sha256(
        "\0".join([_VERSION, *(f"{n}\0{q}" for n, q in sorted(KPI_SQL.items()))]).encode()
    ).hexdigest()[:16]
    return ";".join(
        [
            f"silver={version}",
            f"products={DeltaTable(str(ensure_products(warehouse))).version()}",
            f"quarantine={_version_of(quarantine)}",
            f"code={code}",
        ]
    )


def _version_of(path: Path) -> int:
    return DeltaTable(str(path)).version() if DeltaTable.is_deltatable(str(path)) else -1


def refresh_gold(
    warehouse: Path, engine: str = "datafusion"
) -> tuple[dict[str, pa.Table], int, bool]:
    """Gold for Silver as it stands: (tables, Silver version, computed).

    Computed and written, unless every Gold table's last commit was computed from the
    same inputs (:func:`gold_inputs`): then the tables are read as they stand, and a
    run that brought nothing new (a quiet round of ``--follow``) costs a read, not a
    computation over all of Silver. Gold is otherwise computed from all of Silver:
    most KPIs (funnels, product sales, sold-out moments, spikes over neighbouring
    minutes) depend on rows of any minute, so they are not updated in place."""
    version = silver_version(warehouse)
    inputs = gold_inputs(warehouse, version)
    if all(_last_inputs(warehouse / "gold" / name) == inputs for name in GOLD_TABLES):
        return read_gold(warehouse)[0], version, False
    kpis = compute_kpis(warehouse, engine, version)
    write_gold(warehouse, kpis, version, inputs)
    return kpis, version, True


def _last_inputs(path: Path) -> str | None:
    if not DeltaTable.is_deltatable(str(path)):
        return None
    value = DeltaTable(str(path)).history(1)[0].get(INPUTS)
    return None if value is None else str(value)


def read_gold(warehouse: Path) -> tuple[dict[str, pa.Table], int]:
    """The Gold tables as they stand, and the Silver version they were all built from."""
    tables: dict[str, pa.Table] = {}
    versions: dict[str, str | None] = {}
    for name in GOLD_TABLES:
        path = warehouse / "gold" / name
        if not DeltaTable.is_deltatable(str(path)):
            raise PipelineError(f"no Gold table {name} in {warehouse}; run: flashsale pipeline run")
        table = DeltaTable(str(path))
        tables[name] = arrow(table)
        versions[name] = built_from(table.history(1)[0])
    unnamed = sorted(n for n, v in versions.items() if v is None)
    if unnamed:
        raise PipelineError(
            f"Gold in {warehouse} does not say which Silver version it was built from: the "
            f"last commit of {', '.join(unnamed)} has neither the commit property "
            f"{SILVER_VERSION} nor a {USER_METADATA} naming it; run: flashsale pipeline run"
        )
    snapshots = {v for v in versions.values() if v is not None}
    if len(snapshots) != 1:
        seen = ", ".join(f"{n} from {v}" for n, v in sorted(versions.items()))
        raise PipelineError(
            f"Gold in {warehouse} is not one snapshot of Silver ({seen}); "
            f"run: flashsale pipeline run"
        )
    return tables, int(snapshots.pop())


def built_from(commit: dict[str, Any]) -> str | None:
    """The Silver version a Gold table's commit (a ``DeltaTable.history`` entry) names:
    the embedded pipeline's commit property :data:`SILVER_VERSION`, else the Spark
    job's :data:`USER_METADATA`, a JSON object holding that key. None when it names
    none, or not as a whole number."""
    version = commit.get(SILVER_VERSION)
    if version is None:
        try:
            metadata = json.loads(commit.get(USER_METADATA) or "null")
        except ValueError:
            return None
        if isinstance(metadata, dict):
            version = metadata.get(SILVER_VERSION)
    if version is None or not str(version).isdigit():
        return None
    return str(version)
