"""Gold: KPI tables from SQL files that run unchanged on DataFusion, DuckDB and Spark.

The SQL in ``gold_sql/`` reads ``silver_events``, the product dimension
``silver_products`` (the shop's catalog, for categories and brands) and Gold's partial
sums per product ``gold_sums`` (``_sums_by_product.sql``: not a KPI table, but the
relation the product and category tables add up), and uses only what the three
engines share (``date_trunc``, ``CASE``, window aggregates, ``GREATEST``...).
The embedded engines here are DataFusion (through deltalake's ``QueryBuilder``, over
the Delta table itself) and DuckDB (over the same table as Arrow); Spark runs the
same files in ``consumers/spark_job.py``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, QueryBuilder, write_deltalake
from deltalake.exceptions import DeltaError

from consumers.errors import PipelineError
from consumers.evolve import arrow, local_files
from consumers.gold_changes import Changed, Unsure, changed_minutes, ranges
from consumers.products import CATALOG_ORIGIN, ensure_products
from consumers.quality import fill_minutes, quality_of_minutes, quality_per_minute
from consumers.tables import rows_of_keys

__all__ = [
    "BY_MINUTE",
    "ENGINES",
    "FROM_SUMS",
    "GOLD_TABLES",
    "KPI_SQL",
    "SILVER_VERSION",
    "SUMS",
    "SUMS_SCHEMA",
    "SUMS_SQL",
    "USER_METADATA",
    "Refreshed",
    "built_from",
    "compute_kpis",
    "kpi_sql",
    "read_gold",
    "refresh_gold",
    "silver_version",
    "update_kpis",
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
    """KPI name -> SQL text: every file of ``gold_sql/`` but those whose name starts
    with ``_``, which are relations the KPIs read (the partial sums), not KPI tables."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(SQL_DIR.glob("[!_]*.sql"))}


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
# The tables a run updates minute by minute (see :func:`refresh_gold`).
BY_MINUTE = (*PER_MINUTE, "quality_per_minute")

# Gold's partial sums (not a KPI table): per product, category and brand of Silver's
# events, the counts and sums that the product and category tables (:data:`FROM_SUMS`)
# add up, one SQL text (``gold_sql/_sums_by_product.sql``) those tables read as the
# relation ``gold_sums``. Computing Gold whole, ``gold_sums`` is that query over
# ``silver_events`` (a view, on every engine). Sums add and subtract exactly (whole
# numbers, decimals), so a run updates them from the rows it added to and took from
# Silver, and the tables' same SQL reads the updated sums as ``gold_sums`` (see
# :func:`refresh_gold`). Kept under ``gold/`` as a Delta table whose commits name the
# inputs (:func:`gold_inputs`) they are the sums of.
SUMS = "_sums_by_product"
SUMS_SQL = (SQL_DIR / f"{SUMS}.sql").read_text(encoding="utf-8")
_SUM_KEYS = ["product_id", "category", "brand"]
SUMS_SCHEMA = pa.schema(
    [
        pa.field("product_id", pa.string()),
        pa.field("category", pa.string()),
        pa.field("brand", pa.string()),
        pa.field("events", pa.int64()),
        pa.field("views", pa.int64()),
        pa.field("carts", pa.int64()),
        pa.field("purchases", pa.int64()),
        pa.field("units", pa.int64()),
        pa.field("revenue", pa.decimal128(38, 2)),
    ]
)


def _reads_sums(sql: str) -> bool:
    """Whether ``sql`` reads the partial sums, ``gold_sums`` (its comments aside)."""
    return re.search(r"\bgold_sums\b", re.sub(r"--[^\n]*", "", sql)) is not None


# The KPI tables that read the partial sums.
FROM_SUMS = tuple(name for name, sql in KPI_SQL.items() if _reads_sums(sql))


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
    kpis = _computed(warehouse, engine, version, KPI_SQL)
    for name in PER_MINUTE:
        kpis[name] = fill_minutes(kpis[name])
    kpis["quality_per_minute"] = quality_per_minute(warehouse, version)
    pa.default_memory_pool().release_unused()
    return kpis


def _computed(
    warehouse: Path,
    engine: str,
    version: int | None,
    queries: dict[str, str],
    sums: DeltaTable | None = None,
) -> dict[str, pa.Table]:
    """Each of ``queries`` (name -> SQL) run by ``engine`` over Silver at ``version``,
    with the partial sums as ``gold_sums``: ``sums`` when given (stored ones), else a
    view of :data:`SUMS_SQL` over that Silver (made only when a query reads it)."""
    view = sums is None and any(_reads_sums(sql) for sql in queries.values())
    silver = _silver(warehouse, version)
    products = DeltaTable(str(ensure_products(warehouse)))
    if engine == "datafusion":
        builder = QueryBuilder().register("silver_events", silver)
        builder.register("silver_products", products)
        if sums is not None:
            builder.register("gold_sums", sums)
        elif view:
            builder.execute(f"CREATE VIEW gold_sums AS\n{SUMS_SQL}").read_all()
        tables = {}
        for name, sql in queries.items():
            tables[name] = pa.table(builder.execute(sql).read_all())
            # Arrow's allocator keeps freed pages: given back, the peak is one query's.
            pa.default_memory_pool().release_unused()
    elif engine == "duckdb":
        import duckdb

        connection = duckdb.connect()
        try:
            connection.register("silver_events", arrow(silver))
            connection.register("silver_products", arrow(products))
            if sums is not None:
                connection.register("gold_sums", arrow(sums))
            elif view:
                connection.execute(f"CREATE VIEW gold_sums AS\n{SUMS_SQL}")
            tables = {name: connection.sql(sql).to_arrow_table() for name, sql in queries.items()}
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
    version, the content of the product dimension (a digest: a catalog published
    again unchanged, as every producer run publishes it, changes its version but not
    Gold), the version of the quarantine (data quality), and the Gold code (the SQL
    files, the partial sums' too, and flashsale's version). Bronze is not named: the
    data quality reads only the Bronze records Silver's version has processed."""
    quarantine = warehouse / "silver" / "quarantine"
    code = hashlib.sha256(
        "\0".join(
            [_VERSION, *(f"{n}\0{q}" for n, q in sorted({**KPI_SQL, SUMS: SUMS_SQL}.items()))]
        ).encode()
    ).hexdigest()[:16]
    return ";".join(
        [
            f"silver={version}",
            f"products={_catalog_digest(warehouse)}",
            f"quarantine={_version_of(quarantine)}",
            f"code={code}",
        ]
    )


def _catalog_digest(warehouse: Path) -> str:
    """A digest of the product dimension's products (every column but where each
    record was read from), in product order."""
    table = arrow(DeltaTable(str(ensure_products(warehouse))))
    origin = {f.name for f in CATALOG_ORIGIN}
    table = table.select([n for n in table.column_names if n not in origin])
    rows = table.sort_by("product_id").to_pylist() if table.num_rows else []
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def _version_of(path: Path) -> int:
    return DeltaTable(str(path)).version() if DeltaTable.is_deltatable(str(path)) else -1


class Refreshed(enum.Enum):
    """How :func:`refresh_gold` came by Gold; true when it computed and wrote it."""

    WHOLE = "computed whole"
    UPDATED = "updated from what changed"
    UNCHANGED = "unchanged (nothing new since they were computed)"

    def __bool__(self) -> bool:
        return self is not Refreshed.UNCHANGED


def refresh_gold(
    warehouse: Path, engine: str = "datafusion"
) -> tuple[dict[str, pa.Table], int, Refreshed]:
    """Gold for Silver as it stands: (tables, Silver version, how: :class:`Refreshed`).

    Computed and written, unless every Gold table's last commit was computed from the
    same inputs (:func:`gold_inputs`): then the tables are read as they stand, and a
    run that brought nothing new (a quiet round of ``--follow``) costs a read, not a
    computation over all of Silver.

    The per-minute tables (:data:`BY_MINUTE`: revenue and funnel per minute of event
    time, the data quality per minute of arrival) are updated minute by minute: only
    the minutes the Delta logs say changed since the Gold as it stands are computed
    again (see :mod:`consumers.gold_changes`), and their rows replace those minutes'
    rows; the zero rows between the first and the last minute are filled again.

    The other tables, each as its own kind allows:

    * the funnel per category, the product funnel and product sales add up counts and
      sums by product, category and brand: Gold keeps those partial sums
      (:data:`SUMS`), a run adds the sums of the rows in the files it added to Silver
      and subtracts those of the files it removed, and the three tables
      (:data:`FROM_SUMS`) are their SQL files run over the updated sums: those files
      read the sums as ``gold_sums``, which a whole computation makes a view of the
      sums' own SQL (:data:`SUMS_SQL`) over Silver, so both ways run one text;
    * the session funnel counts sessions, which span minutes and files: only the
      sessions with a row in a file added or removed can count otherwise, so each is
      taken out as it counted before and put back as it counts now, its rows read by
      id from the files whose statistics can hold it;
    * a spike is a minute against the ten minutes with events before it, so a minute
      that changes moves the score of the ten after it: the series is scored again
      by spikes.sql, from the updated events per minute rather than from Silver;
    * the sold-out moments, sell-out times and stock tracking are the earliest of all
      of Silver's rows: each is still one SQL query over all of Silver, computed
      whole; they read only the stock and time columns and keep few rows (a few
      hundredths of a second each on 2,000,000 events).

    Gold is computed whole, every table, whenever the update cannot be sure: no Gold
    yet, or a Gold whose tables name different inputs or none; another engine than
    DataFusion (the update runs the SQL through it); partial sums missing, or of other
    inputs than the Gold as it stands; the product dimension or the Gold
    code changed; or the logs cannot say what changed (see
    :class:`consumers.gold_changes.Unsure`: a commit or a data file gone, a change of
    Silver's schema)."""
    version = silver_version(warehouse)
    inputs = gold_inputs(warehouse, version)
    last = {_last_inputs(warehouse / "gold" / name) for name in GOLD_TABLES}
    if last == {inputs}:
        return read_gold(warehouse)[0], version, Refreshed.UNCHANGED
    kpis, how = None, Refreshed.UPDATED
    if engine == "datafusion" and len(last) == 1:
        previous = last.pop()
        if previous is not None:
            kpis = update_kpis(warehouse, previous, version, inputs)
    if kpis is None:
        kpis, how = compute_kpis(warehouse, engine, version), Refreshed.WHOLE
        if engine == "datafusion":  # the partial sums the next run updates
            sums = _computed(warehouse, engine, version, {SUMS: SUMS_SQL})[SUMS]
            _write_sums(warehouse, sums, inputs)
    write_gold(warehouse, kpis, version, inputs)
    return kpis, version, how


def update_kpis(
    warehouse: Path, previous: str, version: int, inputs: str
) -> dict[str, pa.Table] | None:
    """Every KPI table for Silver at ``version`` (whose inputs are ``inputs``), its
    per-minute tables updated from the Gold as it stands, computed from ``previous``
    inputs: only the minutes that changed between the two are computed again. None
    when that cannot be done for certain (see :func:`refresh_gold`)."""
    old, new = _parsed(previous), _parsed(inputs)
    if set(old) != {"silver", "products", "quarantine", "code"} or any(
        old[k] != new[k] for k in ("products", "code")
    ):
        return None
    try:
        changed = changed_minutes(
            warehouse, int(old["silver"]), version, int(old["quarantine"]), int(new["quarantine"])
        )
    except Unsure:
        return None
    stored = {name: arrow(DeltaTable(str(warehouse / "gold" / name))) for name in BY_MINUTE}
    if any(table["minute"].null_count for table in stored.values()):
        return None  # a minute of no time: computed whole
    sums = _updated_sums(warehouse, previous, inputs, changed)
    if sums is None:
        return None
    sessions = _session_funnel(warehouse, int(old["silver"]), version, changed)
    if sessions is None:
        return None
    # The tables of FROM_SUMS read the updated sums; the others all of Silver.
    queries = {
        n: q
        for n, q in KPI_SQL.items()
        if n not in BY_MINUTE and n not in ("session_funnel", "spikes")
    }
    kpis = _computed(warehouse, "datafusion", version, queries, sums)
    kpis.update(_per_minute(warehouse, version, changed, stored))
    kpis["session_funnel"] = sessions
    spikes = _spikes(kpis["revenue_per_minute"])
    if spikes is None:
        return None
    kpis["spikes"] = spikes
    return {name: kpis[name] for name in GOLD_TABLES}


def _session_funnel(
    warehouse: Path, silver_from: int, version: int, changed: Changed
) -> pa.Table | None:
    """The session funnel of Silver at ``version``, from the one stored (of Silver at
    ``silver_from``): only the sessions with a row in a file the change added or
    removed can count otherwise than they did, so each of them is taken out as it
    counted then (its rows at ``silver_from``) and put back as it counts now, both
    read by id from the files whose statistics can hold it. None when the stored
    table is not one row, or a file cannot be read so."""
    silver = warehouse / "silver" / "events"
    stored = arrow(DeltaTable(str(warehouse / "gold" / "session_funnel")))
    if stored.num_rows != 1:
        return None
    total, carts, purchases = (
        stored[c][0].as_py() for c in ("sessions", "sessions_with_cart", "sessions_with_purchase")
    )
    if total is None or (total > 0 and (carts is None or purchases is None)):
        return None
    changed_files = changed.silver_added | changed.silver_removed
    touched = _values_of(silver, changed_files, "session_id")
    if touched is None:
        return None
    if len(touched):
        try:
            before = _sessions_of(silver, touched, silver_from)
            after = _sessions_of(silver, touched, version)
        except (ValueError, OSError, DeltaError):  # that version cannot be read (vacuumed)
            return None
        total += after[0] - before[0]
        carts = (carts or 0) + after[1] - before[1]
        purchases = (purchases or 0) + after[2] - before[2]
    if min(total, carts or 0, purchases or 0) < 0:
        return None
    counts = ("NULL", "NULL") if total == 0 else (str(carts), str(purchases))
    sql = f"""
SELECT
    CAST(a AS BIGINT) AS sessions,
    CAST(c AS BIGINT) AS sessions_with_cart,
    CAST(p AS BIGINT) AS sessions_with_purchase,
    ROUND(CAST(c AS DOUBLE) / CAST(NULLIF(a, 0) AS DOUBLE), 6) AS cart_share,
    ROUND(CAST(p AS DOUBLE) / CAST(NULLIF(a, 0) AS DOUBLE), 6) AS purchase_share
FROM (VALUES ({total}, CAST({counts[0]} AS BIGINT), CAST({counts[1]} AS BIGINT))) AS t(a, c, p)
"""
    return _conform(pa.table(QueryBuilder().execute(sql).read_all())).cast(stored.schema)


def _values_of(silver: Path, files: frozenset[str], column: str) -> pa.Array | None:
    """The distinct non-null values of ``column`` in Silver's data ``files``."""
    if not files:
        return pa.array([], pa.string())
    table = DeltaTable(str(silver))
    filesystem = local_files(table)
    schema = pa.schema(table.schema().to_arrow())
    if filesystem is None or table.metadata().partition_columns or column not in schema.names:
        return None
    dataset = ds.dataset(sorted(files), schema=schema, format="parquet", filesystem=filesystem)
    values = pc.unique(dataset.to_table(columns=[column])[column])
    return pc.drop_null(values)


def _sessions_of(silver: Path, ids: pa.Array, version: int) -> tuple[int, int, int]:
    """Of the sessions ``ids``, at Silver ``version``: (those with a row, those with a
    cart, those with a purchase), as the session funnel counts them."""
    rows = rows_of_keys(silver, ["session_id", "event_type"], "session_id", ids, version)
    kind = rows["event_type"]
    flags = pa.table(
        {
            "session_id": rows["session_id"],
            "cart": pc.cast(pc.fill_null(pc.equal(kind, "cart"), False), pa.int64()),
            "purchase": pc.cast(pc.fill_null(pc.equal(kind, "purchase"), False), pa.int64()),
        }
    )
    per = flags.group_by("session_id").aggregate([("cart", "max"), ("purchase", "max")])
    return (
        per.num_rows,
        int(pc.sum(per["cart_max"]).as_py() or 0),
        int(pc.sum(per["purchase_max"]).as_py() or 0),
    )


# The per-minute counts spikes.sql scores: a spike compares a minute with the ten
# minutes with events before it, so the update scores the whole series again, from
# the events per minute of revenue_per_minute instead of all of Silver.
_SPIKES_INNER = (
    "SELECT date_trunc('minute', event_time) AS minute, CAST(COUNT(*) AS BIGINT) AS events\n"
    "        FROM silver_events\n"
    "        GROUP BY date_trunc('minute', event_time)"
)


def _spikes(revenue: pa.Table) -> pa.Table | None:
    """The spikes of the minutes with events of ``revenue`` (revenue per minute), by
    spikes.sql's own scoring; None when that SQL no longer reads as expected."""
    sql = KPI_SQL["spikes"]
    if sql.count(_SPIKES_INNER) != 1:
        return None
    busy = revenue.filter(pc.greater(revenue["events"], 0))
    minutes = pc.cast(busy["minute"], pa.int64()).to_pylist()
    rows = ", ".join(
        f"({m}, {e})" for m, e in zip(minutes, busy["events"].to_pylist(), strict=True)
    )
    inner = (
        f"SELECT minute, events FROM (VALUES {rows}) AS m(minute, events)"
        if rows
        else "SELECT CAST(0 AS BIGINT) AS minute, CAST(0 AS BIGINT) AS events WHERE FALSE"
    )
    table = pa.table(QueryBuilder().execute(sql.replace(_SPIKES_INNER, inner)).read_all())
    at = table.schema.get_field_index("minute")
    table = table.set_column(
        at, "minute", pc.cast(pc.cast(table["minute"], pa.int64()), pa.timestamp("us", tz="UTC"))
    )
    return _conform(table)


def _updated_sums(
    warehouse: Path, previous: str, inputs: str, changed: Changed
) -> DeltaTable | None:
    """The partial sums (:data:`SUMS`) of Silver as ``inputs`` name it: those stored for
    ``previous`` inputs, plus the sums of the rows of the files the change added, minus
    those of the files it removed (a file rewritten by a MERGE or a DELETE is removed
    whole and added again without the rows it lost). Stored, and returned as their
    Delta table; None when the stored sums are not those of ``previous`` (nor already
    those of ``inputs``), or a file cannot be summed as the SQL would sum it."""
    path = warehouse / "gold" / SUMS
    last = _last_inputs(path)
    if last == inputs:  # already updated to these inputs (by an update not written)
        return DeltaTable(str(path))
    if last != previous:
        return None
    silver = warehouse / "silver" / "events"
    added = _sums_of_files(silver, changed.silver_added)
    removed = _sums_of_files(silver, changed.silver_removed)
    if added is None or removed is None:
        return None
    counts = SUMS_SCHEMA.names[len(_SUM_KEYS) :]
    taken = removed.select(_SUM_KEYS)
    for name in counts:
        taken = taken.append_column(name, pc.negate(removed[name]))
    stored = arrow(DeltaTable(str(path))).select(SUMS_SCHEMA.names).cast(SUMS_SCHEMA)
    every = pa.concat_tables([stored, added, taken.cast(SUMS_SCHEMA)])
    summed = every.group_by(_SUM_KEYS, use_threads=False).aggregate([(c, "sum") for c in counts])
    summed = summed.rename_columns([n.removesuffix("_sum") for n in summed.column_names])
    summed = summed.select(SUMS_SCHEMA.names).cast(SUMS_SCHEMA)
    if summed.num_rows and any(pc.min(summed[c]).as_py() < 0 for c in counts):
        return None  # more taken than there was: not the sums of these files
    _write_sums(warehouse, summed.filter(pc.greater(summed["events"], 0)), inputs)
    return DeltaTable(str(path))


def _sums_of_files(silver: Path, files: frozenset[str]) -> pa.Table | None:
    """What :data:`SUMS_SQL` sums over the rows of Silver's data ``files`` (paths inside
    the table), as :data:`SUMS_SCHEMA` rows; None when it cannot be summed the same
    way here (a table not on the local disk or partitioned, a column missing, or a
    purchase without a quantity or revenue, which SQL's sum would skip)."""
    if not files:
        return SUMS_SCHEMA.empty_table()
    table = DeltaTable(str(silver))
    filesystem = local_files(table)
    schema = pa.schema(table.schema().to_arrow())
    needed = [*_SUM_KEYS, "event_type", "quantity", "revenue"]
    if filesystem is None or table.metadata().partition_columns:
        return None
    if any(name not in schema.names for name in needed):
        return None
    rows = ds.dataset(sorted(files), schema=schema, format="parquet", filesystem=filesystem)
    rows = rows.to_table(columns=needed)
    kind = rows["event_type"]
    purchase = pc.fill_null(pc.equal(kind, "purchase"), False)
    if (
        pc.any(pc.and_(purchase, pc.is_null(rows["quantity"]))).as_py()
        or pc.any(pc.and_(purchase, pc.is_null(rows["revenue"]))).as_py()
    ):
        return None
    money = SUMS_SCHEMA.field("revenue").type

    def count(mask: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.cast(pc.fill_null(mask, False), pa.int64())

    parts = pa.table(
        {
            **{name: rows[name] for name in _SUM_KEYS},
            "events": pa.array([1] * rows.num_rows, pa.int64()),
            "views": count(pc.equal(kind, "view")),
            "carts": count(pc.equal(kind, "cart")),
            "purchases": count(purchase),
            "units": pc.if_else(
                purchase, pc.cast(rows["quantity"], pa.int64()), pa.scalar(0, pa.int64())
            ),
            "revenue": pc.if_else(purchase, pc.cast(rows["revenue"], money), pa.scalar(0, money)),
        }
    )
    counts = SUMS_SCHEMA.names[len(_SUM_KEYS) :]
    summed = parts.group_by(_SUM_KEYS, use_threads=False).aggregate([(c, "sum") for c in counts])
    summed = summed.rename_columns([n.removesuffix("_sum") for n in summed.column_names])
    return summed.select(SUMS_SCHEMA.names).cast(SUMS_SCHEMA)


def _write_sums(warehouse: Path, sums: pa.Table, inputs: str) -> None:
    """Store the partial sums of Silver as ``inputs`` name it (replacing the last)."""
    write_deltalake(
        str(warehouse / "gold" / SUMS),
        sums.select(SUMS_SCHEMA.names).cast(SUMS_SCHEMA),
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=CommitProperties(custom_metadata={INPUTS: inputs}),
    )


def _parsed(inputs: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in inputs.split(";") if "=" in part)


def _per_minute(
    warehouse: Path, version: int, changed: Changed, stored: dict[str, pa.Table]
) -> dict[str, pa.Table]:
    """The per-minute tables: ``stored`` with the ``changed`` minutes computed again."""
    spans = ranges(changed.event_minutes)
    fresh: dict[str, pa.Table] = {}
    if spans:
        fresh = _computed(
            warehouse,
            "datafusion",
            version,
            {name: _of_minutes(KPI_SQL[name], spans) for name in PER_MINUTE},
        )
    revenue = _replaced(
        stored["revenue_per_minute"],
        fresh.get("revenue_per_minute"),
        changed.event_minutes,
        lambda t: pc.greater(t["events"], 0),
    )
    # A minute has a funnel row when it has events, zero rows being the minutes between.
    real = pc.cast(revenue.filter(pc.greater(revenue["events"], 0))["minute"], pa.int64())
    funnel = _replaced(
        stored["funnel_per_minute"],
        fresh.get("funnel_per_minute"),
        changed.event_minutes,
        lambda t: pc.is_in(pc.cast(t["minute"], pa.int64()), value_set=real),
    )
    quality_spans = ranges(changed.arrival_minutes)
    quality = _replaced(
        stored["quality_per_minute"],
        quality_of_minutes(warehouse, version, quality_spans) if quality_spans else None,
        changed.arrival_minutes,
        lambda t: pc.greater(t["records"], 0),
    )
    return {
        "revenue_per_minute": revenue,
        "funnel_per_minute": funnel,
        "quality_per_minute": quality,
    }


def _of_minutes(sql: str, spans: list[tuple[int, int]]) -> str:
    """``sql`` over the rows of Silver whose event time is in ``spans`` (half-open
    ranges of microseconds since the epoch): ``silver_events`` becomes a view of them,
    over the same table registered as ``silver_events`` too (a file's statistics rule
    out those that hold none)."""
    utc = "'Timestamp(Microsecond, Some(\"UTC\"))'"

    def at(micros: int) -> str:
        return f"arrow_cast(to_timestamp_micros({micros}), {utc})"

    where = " OR ".join(f"(event_time >= {at(lo)} AND event_time < {at(hi)})" for lo, hi in spans)
    return f"WITH silver_events AS (SELECT * FROM silver_events WHERE {where})\n{sql}"


def _replaced(
    stored: pa.Table,
    fresh: pa.Table | None,
    minutes: frozenset[int],
    holds_rows: Callable[[pa.Table], pa.ChunkedArray],
) -> pa.Table:
    """``stored`` with the rows of ``minutes`` replaced by ``fresh``'s (those of them
    that hold rows), sorted by minute, the minutes between the first and the last
    that hold none filled again with zero rows."""
    if not minutes:
        return stored
    at = pc.cast(stored["minute"], pa.int64())
    kept = stored.filter(pc.invert(pc.is_in(at, value_set=pa.array(sorted(minutes), pa.int64()))))
    if fresh is not None:
        kept = pa.concat_tables([kept, fresh.cast(stored.schema)])
    kept = kept.filter(holds_rows(kept)).sort_by("minute")
    return fill_minutes(kept)


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
