"""The same Bronze -> Silver -> Gold layers as a Spark Structured Streaming job.

The job's logic is plain functions over DataFrames, which need no connector and are
tested on a local Spark (``tests/integration/test_spark.py``): the wire header split
into the writer's schema reference and the Avro body (:func:`split_wire`), Silver's
rules (:func:`silver_rules`), the identity of events (:func:`decide_identity`),
Gold (:func:`gold_tables`, :func:`quality_per_minute`, the commit metadata
:func:`gold_commit_metadata`) and where a new checkpoint resumes
(:func:`resume_point`). The connector calls are thin and kept in :func:`main`:
the Kafka source (and :func:`topic_partitions`, through its client), ``from_avro``
and the Delta reads, MERGEs and writes. Those need jars from Maven, which this
project's CI cannot reach, so they are not run here.

``flashsale pipeline spark-submit`` prints the command for your cluster; for Spark
3.5 it is, in short::

    spark-submit \\
      --packages org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.3,\\
    org.apache.spark:spark-avro_2.12:3.5.3,io.delta:delta-spark_2.12:3.3.2 \\
      --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \\
      --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \\
      --conf spark.sql.session.timeZone=UTC \\
      --files consumers/contracts/silver.avsc \\
      consumers/spark_job.py --bootstrap-servers localhost:9092 \\
      --schema-registry-url http://localhost:8081 --topic flash_sale_events \\
      --reader-schema silver.avsc --warehouse /data/warehouse --checkpoints /data/checkpoints

Secrets are read from the driver's environment, never from the command line:
``FLASHSALE_SASL_USERNAME``/``FLASHSALE_SASL_PASSWORD`` (Kafka SASL PLAIN or SCRAM)
and ``FLASHSALE_SCHEMA_REGISTRY_USER_INFO`` (the registry's ``KEY:SECRET``).

* Bronze: the Kafka source as it is (topic, partition, offset, key, value, headers,
  Kafka timestamp) with the writer's schema reference, appended to Delta with a
  checkpoint, so each micro-batch is written exactly once.
* Silver: ``foreachBatch`` over Bronze's stream, with the embedded pipeline's
  semantics (``consumers/silver.py``): records without a valid header are
  quarantined; each writer's records are decoded with ``from_avro(body, writer,
  {"avroSchema": reader})`` (Avro resolution to the reader schema); the rules
  (revenue identity, the catalog's product, category and brand, the shop's
  currencies, event time in range) quarantine what fails; copies of one event id
  with one content (the writer, a GUID resolved to its registry id, and the Avro
  body: one content whichever wire format it came in) are duplicates (Silver keeps
  the lowest coordinates), copies with different contents are a conflict (every
  copy quarantined, the Silver row withdrawn). ``silver/copies`` records every
  copy, as the embedded pipeline's does.
* Gold: each ``gold_sql/*.sql`` KPI over ``silver_events``, ``silver_products`` and
  ``gold_sums`` (a view of ``gold_sql/_sums_by_product.sql`` over ``silver_events``,
  the partial sums the product and category tables add up), the per-minute tables
  filled with zero rows for minutes without events, and
  ``quality_per_minute`` (``consumers/quality.py``'s table), all from one Silver
  version, which each Gold commit names in its ``userMetadata``
  (``{"flashsale.silver_version": "N"}``): ``flashsale kpis --verify-ledger`` and
  ``flashsale report`` read the job's Gold as they read the embedded pipeline's.
* Topic epochs (``pipeline run --on-reset replay``): the job stamps Bronze's rows
  with the highest epoch Bronze holds (the one the embedded pipeline was in), or
  ``--topic-epoch N``. It does not detect a recreated topic itself: Spark's Kafka
  source stops the query on offsets that went back (``failOnDataLoss``); restart it
  with new checkpoints and ``--topic-epoch`` one more to read the new topic from its
  start, keeping the old rows.

The warehouse layout (``bronze/events``, ``silver/events``, ``silver/products``,
``silver/copies``, ``silver/quarantine``, ``gold/<kpi>``) is the embedded
pipeline's. Not done here: the products topic (the job reads ``silver/products`` as
the embedded pipeline writes it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import struct
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pyspark is the optional `spark` extra
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "COORDINATES",
    "READER",
    "SPARK_LINES",
    "Identity",
    "Submit",
    "decide_identity",
    "fill_minutes",
    "gold_commit_metadata",
    "gold_tables",
    "packages",
    "quality_per_minute",
    "resume_point",
    "silver_rules",
    "split_wire",
    "submit_command",
    "writer_schema",
]

HERE = Path(__file__).resolve().parent
READER = HERE / "contracts" / "silver.avsc"
SQL_DIR = HERE / "gold_sql"
# Gold's partial sums (consumers/gold.py's SUMS_SQL): not a KPI table, but the view
# ``gold_sums`` the product and category tables read; a file of ``gold_sql/`` whose
# name starts with "_" is not a KPI.
SUMS_SQL_FILE = "_sums_by_product.sql"
# The header Confluent's header serializer writes the value's schema reference into.
VALUE_SCHEMA_ID_HEADER = "__value_schema_id"
# Silver's rules, as consumers/silver.py has them.
EARLIEST = "2000-01-01 00:00:00"
MAX_AHEAD_DAYS = 30
PER_MINUTE = ("revenue_per_minute", "funnel_per_minute")
MAX_FILLED_MINUTES = 31 * 24 * 60
# A record's coordinates, in the order that decides which copy is the lowest.
COORDINATES = ("kafka_topic", "kafka_topic_epoch", "kafka_partition", "kafka_offset")
# The key of the Silver version in each Gold table's commit (consumers/gold.py's).
SILVER_VERSION = "flashsale.silver_version"


# --------------------------------------------------------------------------- wire format


def split_wire(frame: DataFrame, value: str = "value", headers: str | None = None) -> DataFrame:
    """``frame`` with the writer's schema reference and the Avro body of ``value``:
    ``writer_schema_id`` (long) or ``writer_schema_guid`` (a UUID string), ``body``
    (binary) and ``wire_error`` (null, or why the record has no valid reference: its
    quarantine reason, worded as ``consumers/wire.py`` words it).

    The reference is where Confluent's dual deserializer looks for it: the
    ``__value_schema_id`` header when ``headers`` (the Kafka source's ``headers``
    column, ``includeHeaders=true``) carries one, else the value's prefix. It is magic
    byte 0 and a 4-byte big-endian id, or magic byte 1 and a 16-byte GUID (the header
    serializer's format). The registry lookup of a GUID is :func:`writer_schema`'s."""
    from pyspark.sql import functions as F

    raw = F.col(value)
    if headers is None:
        in_header: Column = F.lit(None).cast("binary")
    else:
        in_header = F.expr(
            f"try_element_at(filter({headers}, h -> h.key = '{VALUE_SCHEMA_ID_HEADER}'), 1).value"
        )
    reference = F.coalesce(in_header, raw)
    magic = F.conv(F.hex(F.substring(reference, 1, 1)), 16, 10).cast("int")
    size = F.when(magic == 1, F.lit(17)).otherwise(F.lit(5))
    where = "header" if headers is not None else "value"
    error = (
        F.when(raw.isNull(), F.lit("bad header: empty value (a tombstone)"))
        .when(
            F.length(reference) < size,
            F.format_string(
                "bad header: %s of %d bytes is shorter than the %d-byte header",
                F.when(in_header.isNotNull(), F.lit(f"{where} {VALUE_SCHEMA_ID_HEADER}")).otherwise(
                    F.lit("value")
                ),
                F.length(reference),
                size,
            ),
        )
        .when(
            ~magic.isin(0, 1),
            F.format_string("bad header: bad magic byte %d (expected 0 or 1)", magic),
        )
    )
    valid = error.isNull()
    # The 4 bytes as the unsigned number they are (long): an id beyond the int range is
    # still a reference, to a writer no registry holds.
    schema_id = F.conv(F.hex(F.substring(reference, 2, 4)), 16, 10).cast("long")
    guid = F.regexp_replace(
        F.lower(F.hex(F.substring(reference, 2, 16))),
        "^(.{8})(.{4})(.{4})(.{4})(.{12})$",
        "$1-$2-$3-$4-$5",
    )
    body = F.when(in_header.isNotNull(), raw).otherwise(raw.substr(size + 1, F.length(raw) - size))
    return frame.select(
        "*",
        F.when(valid & (magic == 0), schema_id).alias("writer_schema_id"),
        F.when(valid & (magic == 1), guid).alias("writer_schema_guid"),
        F.when(valid, body).alias("body"),
        error.alias("wire_error"),
    )


def table_schema_id(schema_id: Column) -> Column:
    """A ``writer_schema_id`` as the tables keep it (int, as the embedded pipeline's):
    null for an id beyond the int range, which no registry holds."""
    from pyspark.sql import functions as F

    return F.when(schema_id <= F.lit(2**31 - 1), schema_id.cast("int"))


class UnknownWriter(Exception):
    """The registry does not know a record's writer schema: its records are
    quarantined with this reason, worded as ``consumers/decode.py`` words it."""


def writer_schema(registry_urls: str, schema_id: int | None, guid: str | None = None) -> str:
    """The writer schema of a record, from the registry: by id (``/schemas/ids/ID``), or
    by GUID (``/schemas/guids/GUID``, Confluent's endpoint for the header serializer's
    GUIDs); :class:`UnknownWriter` when the registry answers that it has none. The
    registry's ``KEY:SECRET`` is read from ``FLASHSALE_SCHEMA_REGISTRY_USER_INFO``.
    ``registry_urls`` may be a comma-separated list; each is tried in turn."""
    path = f"/schemas/ids/{schema_id}" if guid is None else f"/schemas/guids/{guid}"
    missing: list[str] = []
    answer = _ask_registry(registry_urls, path, missing=missing)
    if answer is None:
        kind, value = ("schema id", schema_id) if guid is None else ("schema guid", guid)
        raise UnknownWriter(f"unknown {kind}: {value} ({missing[0] if missing else 'not found'})")
    return str(answer["schema"])


def registered_id(registry_urls: str, guid: str, text: str, subject: str) -> int | None:
    """The registry id of the writer schema ``text`` of GUID ``guid``: the id under which
    ``subject`` holds it, soft-deleted versions too (Confluent's answer by GUID has no
    id), as ``consumers/decode.py`` finds it; None when ``subject`` does not hold it."""
    path = f"/subjects/{urllib.parse.quote(subject, safe='')}?deleted=true"
    answer = _ask_registry(registry_urls, path, {"schema": text})
    if answer is None or answer.get("guid") not in (None, "", guid):
        return None
    return int(answer["id"])


def _ask_registry(
    registry_urls: str, path: str, body: Any = None, missing: list[str] | None = None
) -> Any:
    """The registry's JSON answer to GET ``path`` (POST ``body``, if given); None when
    it answers 404, whose message is then added to ``missing`` (when given). Each of the
    comma-separated ``registry_urls`` is tried in turn."""
    headers = {"Accept": "application/vnd.schemaregistry.v1+json"}
    if body is not None:
        headers["Content-Type"] = "application/vnd.schemaregistry.v1+json"
    user_info = os.environ.get("FLASHSALE_SCHEMA_REGISTRY_USER_INFO")
    if user_info:
        headers["Authorization"] = "Basic " + base64.b64encode(user_info.encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    failure: Exception | None = None
    for url in registry_urls.split(","):
        request = urllib.request.Request(url.strip().rstrip("/") + path, data, headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                if missing is not None:
                    missing.append(_message(exc))
                return None
            failure = exc
        except OSError as exc:
            failure = exc
    raise RuntimeError(f"the Schema Registry cannot answer {path}: {failure}")


def _message(answer: urllib.error.HTTPError) -> str:
    """The ``message`` of a registry's error answer (its JSON body), else the reason."""
    try:
        return str(json.loads(answer.read())["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(answer.reason)


def writer_prefix(
    registry_urls: str, subject: str, schema_id: int | None, guid: str | None, text: str
) -> bytes:
    """What names the writer ``text`` in the prefix wire format: byte 0 and its 4-byte
    id, a GUID's id found by :func:`registered_id`. A GUID ``subject`` does not hold
    keeps its own reference, byte 1 and its 16 bytes (consumers/wire.py's
    ``as_prefixed``)."""
    if guid is not None:
        schema_id = registered_id(registry_urls, guid, text, subject)
        if schema_id is None:
            return b"\x01" + uuid.UUID(guid).bytes
    return struct.pack(">bI", 0, schema_id)


# --------------------------------------------------------------------------- Silver rules


def silver_rules(
    events: DataFrame,
    currencies: tuple[str, ...] = ("USD",),
    catalog: DataFrame | None = None,
    known_categories: DataFrame | None = None,
) -> DataFrame:
    """``events`` (decoded, with Silver's column names and ``ingest_time``) with a
    ``reason`` column: null when the record passes, else why it is quarantined, worded
    as ``consumers/silver.py`` words it. The rules, first failing wins:

    the revenue identity (quantity x price for a purchase, 0.00 otherwise); a product
    id and a category; the catalog's category and brand (``catalog``: product_id,
    category, brand, when the shop published one); without a catalog, the category a
    product was first seen with (``known_categories``: product_id, category of the rows
    already in Silver; else the copy at the lowest coordinates); a currency the shop
    prices in; an event time from 2000 to 30 days after ingestion."""
    from pyspark.sql import functions as F

    c = F.col
    expected = F.when(c("event_type") == "purchase", c("quantity") * c("price")).otherwise(
        F.lit(0).cast("decimal(12,2)")
    )
    revenue = F.format_string(
        "revenue identity: revenue %s != %s for a %s of %d x %s",
        c("revenue").cast("string"),
        expected.cast("string"),
        c("event_type"),
        c("quantity"),
        c("price").cast("string"),
    )
    no_product = F.coalesce(c("product_id"), F.lit("")).eqNullSafe("") | F.coalesce(
        c("category"), F.lit("")
    ).eqNullSafe("")
    frame = events
    if catalog is not None:
        listed = catalog.select(
            c("product_id").alias("_product"),
            c("category").alias("_listed_category"),
            c("brand").alias("_listed_brand"),
            F.lit(True).alias("_listed"),
        )
        frame = frame.join(listed, frame["product_id"] == listed["_product"], "left")
        product = (
            F.when(
                c("_listed").isNull(),
                F.format_string("unknown product: %s is not in the catalog", c("product_id")),
            )
            .when(
                c("_listed_category") != c("category"),
                F.format_string(
                    "unknown product: %s has category %s in the catalog, not %s",
                    c("product_id"),
                    c("_listed_category"),
                    c("category"),
                ),
            )
            .when(
                ~c("_listed_brand").eqNullSafe(c("brand")),
                F.format_string(
                    "unknown product: %s has brand %s in the catalog, not %s",
                    c("product_id"),
                    F.coalesce(c("_listed_brand"), F.lit("None")),
                    F.coalesce(c("brand"), F.lit("None")),
                ),
            )
        )
    else:
        # The first category a product was seen with: Silver's, else that of the copy at
        # the lowest coordinates among those that reach this rule.
        reaching = frame.filter((c("revenue") == expected) & ~no_product)
        first = reaching.groupBy("product_id").agg(
            F.min_by("category", F.struct(*[c(n) for n in COORDINATES])).alias("_first")
        )
        if known_categories is not None:
            known = known_categories.groupBy("product_id").agg(F.first("category").alias("_known"))
            first = first.join(known, "product_id", "full").select(
                "product_id", F.coalesce(c("_known"), c("_first")).alias("_first")
            )
        first = first.withColumnRenamed("product_id", "_product")
        frame = frame.join(first, frame["product_id"] == first["_product"], "left")
        product = F.when(
            c("_first") != c("category"),
            F.format_string(
                "unknown product: %s has category %s, not %s",
                c("product_id"),
                c("_first"),
                c("category"),
            ),
        )
    when = c("event_time")
    shown = F.concat(
        F.date_format(when, "yyyy-MM-dd'T'HH:mm:ss"),
        F.when(F.date_format(when, "SSSSSS") != "000000", F.date_format(when, ".SSSSSS")).otherwise(
            F.lit("")
        ),
        F.lit("+00:00"),
    )
    currency = c("currency") if "currency" in events.columns else F.lit("USD")
    reason = (
        F.when(c("revenue") != expected, revenue)
        .when(no_product, F.lit("unknown product: no product id or category"))
        .when(product.isNotNull(), product)
        .when(
            ~currency.isin(*currencies),
            F.format_string(
                "foreign currency: %s (the shop prices in %s)",
                currency,
                F.lit(", ".join(currencies)),
            ),
        )
        .when(
            (when < F.to_timestamp(F.lit(EARLIEST)))
            | (when > c("ingest_time") + F.expr(f"INTERVAL {MAX_AHEAD_DAYS} DAYS")),
            F.concat(F.lit("time out of range: "), shown),
        )
    )
    return frame.select(*[c(n) for n in events.columns], reason.alias("reason"))


# --------------------------------------------------------------------------- identity


def fingerprint(body: Column, prefix: bytes) -> Column:
    """A record's content as written, as consumers/identity.py has it: its Avro
    ``body`` behind ``prefix``, its writer as the prefix wire format names it
    (:func:`writer_prefix`). A prefix-framed record hashes its value as it came; a
    header-framed one hashes the bytes of the same content prefix-framed."""
    from pyspark.sql import functions as F

    return F.substring(F.sha2(F.concat(F.lit(prefix), body), 256), 1, 32)


@dataclass(frozen=True)
class Identity:
    """What the identity rules decide for a batch (each a DataFrame)."""

    copies: DataFrame  # every copy of the batch's ids, known and new: silver/copies' rows
    conflicting: DataFrame  # event_id: ids whose copies disagree (withdrawn from Silver)
    winners: DataFrame  # the batch's rows Silver keeps (the lowest copy of each id)
    conflicts: DataFrame  # the batch's copies of conflicting ids, with their ``reason``
    earlier_conflicts: DataFrame  # coordinates of earlier copies of conflicting ids
    verdict: DataFrame  # event_id, _conflict, _keep: what the results above are cut from

    def release(self) -> None:
        """Drop the cached copies and verdict (once the batch is written)."""
        self.copies.unpersist()
        self.verdict.unpersist()


def decide_identity(candidates: DataFrame, known_copies: DataFrame | None = None) -> Identity:
    """Which copy of each event Silver keeps, decided by the records, not the order they
    came in (``consumers/identity.py``). ``candidates``: the batch's records that passed
    the rules, with ``event_id``, ``fingerprint`` and the coordinates; ``known_copies``:
    ``silver/copies`` (event_id, fingerprint, coordinates).

    All copies of an id with one fingerprint: Silver keeps the copy at the lowest
    coordinates, the others are duplicates. Copies with different fingerprints: a
    conflict, every copy is quarantined and the id withdrawn from Silver."""
    from pyspark.sql import functions as F

    columns = ["event_id", "fingerprint", *COORDINATES]
    new = candidates.select(*columns)
    copies = new
    if known_copies is not None:
        ids = new.select("event_id").distinct()
        copies = known_copies.select(*columns).join(ids, "event_id", "left_semi").unionByName(new)
    # Every result below reads the copies and the verdict: computed once (cached until
    # :meth:`Identity.release`).
    copies = copies.dropDuplicates(list(COORDINATES)).cache()
    lowest = F.min(F.struct(*[F.col(n) for n in COORDINATES]))
    verdict = (
        copies.groupBy("event_id")
        .agg((F.countDistinct("fingerprint") > 1).alias("_conflict"), lowest.alias("_keep"))
        .cache()
    )
    conflicting = verdict.filter("_conflict").select("event_id")
    keep = verdict.filter(~F.col("_conflict")).select(
        "event_id", *[F.col(f"_keep.{n}").alias(f"_keep_{n}") for n in COORDINATES]
    )
    at_keep = [candidates[n] == keep[f"_keep_{n}"] for n in COORDINATES]
    condition = candidates["event_id"] == keep["event_id"]
    for term in at_keep:
        condition = condition & term
    winners = candidates.join(keep, condition, "left_semi")
    reason = F.format_string("conflict: event %s has copies with other content", F.col("event_id"))
    conflicts = candidates.join(conflicting, "event_id", "left_semi").withColumn("reason", reason)
    earlier = (
        copies.join(conflicting, "event_id", "left_semi")
        .join(new.select(*COORDINATES), list(COORDINATES), "left_anti")
        .withColumn("reason", reason)
    )
    return Identity(copies, conflicting, winners, conflicts, earlier, verdict)


# --------------------------------------------------------------------------- Gold


# The one construct of the Gold SQL that Spark spells differently: Spark 3.5 has no
# EXTRACT(EPOCH ...), and DataFusion and DuckDB have no unix_micros.
_EPOCH = re.compile(r"EXTRACT\(\s*EPOCH\s+FROM\s+([\w.]+)\s*\)", re.IGNORECASE)


def spark_sql(sql: str) -> str:
    """A Gold SQL file in Spark's dialect: ``EXTRACT(EPOCH FROM t)`` (seconds since the
    epoch, fractional) as ``CAST(unix_micros(t) AS DOUBLE) / 1000000``."""
    return _EPOCH.sub(r"(CAST(unix_micros(\1) AS DOUBLE) / 1000000)", sql)


def gold_tables(spark: SparkSession, sql_dir: Path = SQL_DIR) -> dict[str, DataFrame]:
    """Each Gold KPI over the views ``silver_events`` and ``silver_products``: the SQL
    files the embedded engines run (in Spark's dialect, :func:`spark_sql`), the
    per-minute tables filled as the embedded pipeline fills them. The partial sums'
    file (:data:`SUMS_SQL_FILE`) is registered first, as the view ``gold_sums`` over
    ``silver_events`` that the product and category tables read, as the embedded
    engines register it; it is not a table of its own."""
    sums = (sql_dir / SUMS_SQL_FILE).read_text(encoding="utf-8")
    spark.sql(spark_sql(sums)).createOrReplaceTempView("gold_sums")
    tables = {
        p.stem: spark.sql(spark_sql(p.read_text(encoding="utf-8")))
        for p in gold_sql_files(sql_dir)
        if not p.name.startswith("_")
    }
    for name in PER_MINUTE:
        if name in tables:
            tables[name] = fill_minutes(tables[name])
    return tables


def fill_minutes(table: DataFrame) -> DataFrame:
    """``table`` (keyed by ``minute``) with a row for every minute from its first to its
    last: counts 0, money 0.00, rates null where no row was (``consumers/quality.py``)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType, IntegralType

    bounds = table.agg(F.min("minute").alias("lo"), F.max("minute").alias("hi")).first()
    if bounds is None or bounds["lo"] is None:
        return table
    span = int((bounds["hi"] - bounds["lo"]).total_seconds() // 60) + 1
    if span > MAX_FILLED_MINUTES or span == table.select("minute").distinct().count():
        return table
    minutes = table.agg(
        F.explode(F.expr("sequence(min(minute), max(minute), interval 1 minute)")).alias("minute")
    )
    filled = minutes.join(table, "minute", "left")
    out = []
    for field in table.schema.fields:
        column = F.col(field.name)
        if field.name != "minute" and isinstance(field.dataType, IntegralType | DecimalType):
            column = F.coalesce(column, F.lit(0).cast(field.dataType))
        out.append(column.alias(field.name))
    return filled.select(*out).orderBy("minute")


# The data quality per minute: consumers/quality.py's table, in Spark.
_KEYS = ("topic", "topic_epoch", "partition", "offset")


def _short(frame: DataFrame, *extra: str | Column) -> DataFrame:
    """``frame``'s coordinates under Bronze's names (``kafka_offset`` as ``offset``)."""
    from pyspark.sql import functions as F

    return frame.select(*[F.col(f"kafka_{n}").alias(n) for n in _KEYS], *extra)


def quality_per_minute(
    bronze: DataFrame, silver: DataFrame, quarantine: DataFrame | None, copies: DataFrame
) -> DataFrame:
    """The data quality of each minute of arrival (the Kafka timestamp's minute), as
    ``consumers/quality.py`` ``quality_per_minute`` computes it: of the Bronze records
    Silver has processed, ``events`` are in ``silver``, ``conflicts`` and
    ``quarantined`` (every other reason) in ``quarantine``, ``duplicates`` the rest;
    lateness (Kafka timestamp minus event time, seconds) over the events in Silver, as
    nearest-rank percentiles; minutes without records between the first and the last
    are zero rows.

    The records Silver has processed are those of ``bronze`` that ``copies`` (every
    copy of an event that passed the rules) or ``quarantine`` holds: the job writes
    both for each record of a batch (``quarantine`` is None until a record is)."""
    from pyspark.sql import functions as F

    keys = list(_KEYS)
    seen = _short(copies)
    kinds = _short(silver, F.lit("events").alias("kind"))
    if quarantine is not None:
        seen = seen.unionByName(_short(quarantine))
        conflict = F.col("reason").startswith("conflict")  # null for a null reason: not counted
        kind = F.when(conflict, F.lit("conflicts")).when(~conflict, F.lit("quarantined"))
        kinds = kinds.unionByName(_short(quarantine, kind.alias("kind")).filter("kind IS NOT NULL"))
    processed = bronze.join(seen, keys, "left_semi").select(
        *keys, "kafka_timestamp", F.date_trunc("minute", "kafka_timestamp").alias("minute")
    )
    tallied = (
        kinds.join(processed, keys)
        .groupBy("minute")
        .agg(*[F.sum(F.when(F.col("kind") == k, 1).otherwise(0)).alias(k) for k in _KINDS])
    )
    late_ms = F.unix_millis(F.col("kafka_timestamp")) - F.unix_millis(F.col("event_time"))
    lateness = (
        _short(silver, "event_time")
        .join(processed, keys)
        .select("minute", (late_ms / 1000.0).alias("late"))
        .filter("late IS NOT NULL")
        .groupBy("minute")
        .agg(F.array_sort(F.collect_list("late")).alias("late"))
    )

    def nearest_rank(q: float) -> Column:
        rank = F.greatest(F.lit(1), F.ceil(F.lit(q) * F.size("late")).cast("int"))
        return F.element_at("late", rank)

    counts = [F.coalesce(F.col(k), F.lit(0)).cast("bigint") for k in _KINDS]
    table = (
        processed.filter("minute IS NOT NULL")
        .groupBy("minute")
        .agg(F.count("*").alias("records"))
        .join(tallied, "minute", "left")
        .join(lateness, "minute", "left")
        .select(
            "minute",
            "records",
            counts[0].alias("events"),
            (F.col("records") - counts[0] - counts[1] - counts[2]).alias("duplicates"),
            counts[1].alias("conflicts"),
            counts[2].alias("quarantined"),
            nearest_rank(0.50).alias("lateness_p50_s"),
            nearest_rank(0.99).alias("lateness_p99_s"),
        )
        .orderBy("minute")
    )
    return fill_minutes(table)


_KINDS = ("events", "conflicts", "quarantined")


def gold_commit_metadata(silver_version: int) -> str:
    """The ``userMetadata`` of each Gold table's commit: the Silver version the table
    was computed from, a JSON object ``{"flashsale.silver_version": "N"}``, which
    ``flashsale kpis --verify-ledger`` and ``flashsale report`` read
    (``consumers/gold.py``) to refuse a Gold that is not one snapshot of Silver."""
    return json.dumps({SILVER_VERSION: str(silver_version)})


# --------------------------------------------------------------------------- spark-submit

# Spark line -> (Scala version, delta-spark) of the connector packages. delta-spark's own
# wheel states which pyspark each release takes (3.3.x: >=3.5.3,<3.6; 4.0.x: >=4.0).
SPARK_LINES = {
    "3.4": ("2.12", "2.4.0"),
    "3.5": ("2.12", "3.3.2"),
    "4.0": ("2.13", "4.0.1"),
}
DEFAULT_SPARK = "3.5.3"
# librdkafka keys that Spark's Kafka source (the Java client) takes under the same name.
_SAME_IN_JAVA = (
    "security.protocol",
    "sasl.mechanism",
    "client.id",
    "session.timeout.ms",
    "request.timeout.ms",
)
# Secrets never go on the command line: the job reads them from its environment.
SECRET_ENV = {
    "sasl.username": "FLASHSALE_SASL_USERNAME",
    "sasl.password": "FLASHSALE_SASL_PASSWORD",
    "basic.auth.user.info": "FLASHSALE_SCHEMA_REGISTRY_USER_INFO",
}


def gold_sql_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The Gold SQL files, shipped to the cluster with ``--files``: every KPI's, and
    the partial sums' (:data:`SUMS_SQL_FILE`) that some of them read."""
    return sorted(sql_dir.glob("*.sql"))


def packages(spark_version: str) -> list[str]:
    """The Maven packages the job needs on Spark ``spark_version`` (``3.5.3``)."""
    parts = spark_version.split(".")
    line = ".".join(parts[:2])
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or line not in SPARK_LINES:
        known = ", ".join(f"{k}.x" for k in SPARK_LINES)
        raise ValueError(f"Spark {spark_version} is not one the job is packaged for ({known})")
    scala, delta = SPARK_LINES[line]
    return [
        f"org.apache.spark:spark-sql-kafka-0-10_{scala}:{spark_version}",
        f"org.apache.spark:spark-avro_{scala}:{spark_version}",
        f"io.delta:delta-spark_{scala}:{delta}",
    ]


@dataclass(frozen=True)
class Submit:
    """A ``spark-submit`` command line, and what the user must know beside it."""

    argv: list[str]
    environment: list[str]  # variables the job reads secrets from
    left_out: dict[str, str]  # client settings not handed to the job, and why

    def text(self) -> str:
        """The command as a shell line, one option per line."""
        import shlex

        lines: list[list[str]] = [[self.argv[0]]]
        for arg in self.argv[1:]:
            if arg.startswith("--") or arg.endswith(".py"):
                lines.append([arg])
            else:
                lines[-1].append(arg)
        return " \\\n    ".join(shlex.join(line) for line in lines)


def submit_command(
    *,
    spark_version: str,
    kafka: dict[str, str],
    registry: dict[str, str],
    topic: str,
    reader_schema: Path,
    warehouse: str,
    checkpoints: str,
    currencies: tuple[str, ...] = ("USD",),
    job: Path = Path(__file__),
) -> Submit:
    """The ``spark-submit`` command that runs this job on Spark ``spark_version``.

    ``kafka`` holds librdkafka's keys and ``registry`` the Schema Registry client's, as
    flashsale's configuration merged them (secrets already masked: their values are
    never used, only the names of the variables the job reads them from)."""
    java: dict[str, str] = {}
    environment: list[str] = []
    left_out: dict[str, str] = {}
    for key, value in sorted(kafka.items()):
        if key == "bootstrap.servers":
            continue
        if key in SECRET_ENV:
            environment.append(SECRET_ENV[key])
        elif key in _SAME_IN_JAVA:
            java[key] = value
        elif key == "ssl.ca.location":
            java["ssl.truststore.type"] = "PEM"
            java["ssl.truststore.location"] = value
        else:
            left_out[key] = "not a setting the job hands to Spark's Kafka source"
    for key in sorted(registry):
        if key == "url":
            continue
        if key in SECRET_ENV:
            environment.append(SECRET_ENV[key])
        else:
            left_out[key] = "the job's registry client takes only the URL and basic auth"
    argv = [
        "spark-submit",
        "--packages",
        ",".join(packages(spark_version)),
        "--conf",
        "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "--conf",
        "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "--conf",
        "spark.sql.session.timeZone=UTC",
        "--files",
        ",".join(str(p) for p in [reader_schema, *gold_sql_files()]),
        str(job),
        "--bootstrap-servers",
        kafka["bootstrap.servers"],
        "--schema-registry-url",
        registry["url"],
        "--topic",
        topic,
        "--reader-schema",
        reader_schema.name,
        *[arg for c in currencies for arg in ("--currency", c)],
        *[arg for k, v in sorted(java.items()) for arg in ("--kafka-option", f"{k}={v}")],
        "--warehouse",
        warehouse,
        "--checkpoints",
        checkpoints,
    ]
    return Submit(argv, sorted(set(environment)), left_out)


# --------------------------------------------------------------------------- the job


def resume_point(
    bronze: DataFrame | None,
    topic: str,
    epoch: int | None = None,
    partitions: Sequence[int] = (),
) -> tuple[int, str]:
    """Where a new checkpoint of the job's Kafka source starts over ``bronze`` (Bronze as
    it stands, or None before there is one): the topic epoch its records are stamped
    with, and the source's ``startingOffsets``.

    The epoch is ``epoch`` when given (``--topic-epoch``: after the topic was recreated,
    one more than the last, as ``pipeline run --on-reset replay`` counts them), else the
    highest Bronze holds for ``topic`` (0 for a new Bronze), so the job carries on in
    the epoch the embedded pipeline was in. It starts after the last offset Bronze holds
    of each partition in that epoch, or at the topic's start when it holds none. Spark
    takes specific offsets only for every partition of the topic: the topic's
    ``partitions`` that Bronze holds nothing of start at their beginning (-2)."""
    from pyspark.sql import functions as F

    if bronze is None:
        return epoch or 0, "earliest"
    held = (
        bronze.filter(F.col("topic") == topic)
        .groupBy("topic_epoch", "partition")
        .agg(F.max("offset").alias("last"))
        .collect()
    )
    if epoch is None:
        epoch = max((int(r["topic_epoch"]) for r in held), default=0)
    last = {int(r["partition"]): int(r["last"]) for r in held if r["topic_epoch"] == epoch}
    if not last:
        return epoch, "earliest"
    offsets = {p: -2 for p in partitions} | {p: n + 1 for p, n in last.items()}
    return epoch, json.dumps({topic: {str(p): n for p, n in sorted(offsets.items())}})


def topic_partitions(  # pragma: no cover - needs the connector jars
    spark: SparkSession, settings: dict[str, str], topic: str
) -> list[int]:
    """The partitions of ``topic``, asked of the broker by the Kafka client the Kafka
    source brings (``settings``: its ``kafka.*`` options, without the prefix)."""
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("no JVM behind this SparkSession")
    properties = jvm.java.util.Properties()
    deserializer = "org.apache.kafka.common.serialization.ByteArrayDeserializer"
    for key, value in {
        **settings,
        "key.deserializer": deserializer,
        "value.deserializer": deserializer,
    }.items():
        properties.setProperty(key, value)
    consumer = jvm.org.apache.kafka.clients.consumer.KafkaConsumer(properties)
    try:
        found = consumer.partitionsFor(topic)  # null for a topic the broker does not have
        return [] if found is None else sorted(int(p.partition()) for p in found)
    finally:
        consumer.close()


def silver_columns(reader: str) -> list[str]:
    """Silver's columns: the reader schema's fields (``timestamp`` as ``event_time``), then
    each record's coordinates, as ``consumers/silver.py`` stores them."""
    fields = [f["name"] for f in json.loads(reader)["fields"]]
    return [
        *("event_time" if n == "timestamp" else n for n in fields),
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "writer_schema_id",
        "kafka_timestamp",
        "ingest_time",
        "kafka_topic_epoch",
    ]


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The job's command line (what :func:`submit_command` writes after the job's path)."""
    parser = argparse.ArgumentParser(description="flashsale's Bronze -> Silver -> Gold on Spark")
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--schema-registry-url", required=True)
    parser.add_argument("--topic", default="flash_sale_events")
    parser.add_argument("--reader-schema", default=str(READER))
    parser.add_argument("--currency", action="append", dest="currencies")
    parser.add_argument("--kafka-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--topic-epoch",
        type=int,
        help="the epoch of the topic this run reads (default: the highest Bronze holds); "
        "one more after the topic was recreated, with new checkpoints",
    )
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--checkpoints", required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - needs the connector jars
    """The streaming job: the connector calls, around the functions above."""
    from pyspark import SparkFiles
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    args = arguments(argv)
    currencies = tuple(args.currencies or ["USD"])
    kafka = dict(option.split("=", 1) for option in args.kafka_option)
    user, password = (
        os.environ.get("FLASHSALE_SASL_USERNAME"),
        os.environ.get("FLASHSALE_SASL_PASSWORD"),
    )
    if user and password:
        module = (
            "scram.ScramLoginModule"
            if kafka.get("sasl.mechanism", "").startswith("SCRAM")
            else "plain.PlainLoginModule"
        )
        kafka["sasl.jaas.config"] = (
            f"org.apache.kafka.common.security.{module} required "
            f'username="{user}" password="{password}";'
        )
    spark = SparkSession.builder.appName("flashsale-pipeline").getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # The reader schema and the Gold SQL come with --files (or from this checkout).
    shipped = Path(SparkFiles.getRootDirectory())
    reader_path = Path(args.reader_schema)
    if not reader_path.exists():
        reader_path = shipped / reader_path.name
    reader = reader_path.read_text(encoding="utf-8")
    sql_dir = shipped if gold_sql_files(shipped) else SQL_DIR
    w = args.warehouse
    paths = {
        name: f"{w}/{name}"
        for name in ("bronze/events", "silver/events", "silver/copies", "silver/quarantine")
    }

    def delta(name: str) -> DataFrame | None:
        path = paths.get(name, f"{w}/{name}")
        if not spark.catalog.tableExists(f"delta.`{path}`"):
            return None
        return spark.read.format("delta").load(path)

    # A new checkpoint over a Bronze the embedded pipeline (or an earlier job) wrote
    # starts after the offsets Bronze holds of the topic's epoch; otherwise at the topic's
    # start. (Spark uses startingOffsets only when the checkpoint is new.)
    settings = {"bootstrap.servers": args.bootstrap_servers, **kafka}
    epoch, starting = resume_point(
        delta("bronze/events"),
        args.topic,
        args.topic_epoch,
        topic_partitions(spark, settings, args.topic),
    )
    source = spark.readStream.format("kafka")
    for key, value in settings.items():
        source = source.option(f"kafka.{key}", value)
    bronze = split_wire(
        source.option("subscribe", args.topic)
        .option("startingOffsets", starting)
        .option("includeHeaders", "true")
        .load(),
        headers="headers",
    ).select(
        "topic",
        "partition",
        "offset",
        "key",
        "value",
        "headers",
        table_schema_id(F.col("writer_schema_id")).alias("schema_id"),
        F.col("writer_schema_guid").alias("schema_guid"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_timestamp().alias("ingest_time"),
        F.current_date().cast("string").alias("ingest_date"),
        F.lit(epoch).cast("int").alias("topic_epoch"),
    )
    bronze.writeStream.format("delta").partitionBy("ingest_date").option(
        "checkpointLocation", f"{args.checkpoints}/bronze"
    ).start(paths["bronze/events"])

    def write(frame: DataFrame, name: str, merge_on: str, batch_id: int, clause: str) -> None:
        """MERGE ``frame`` into the Delta table ``name`` (created by the first batch); the
        batch id is the transaction version, so a replayed batch is skipped."""
        spark.conf.set("spark.databricks.delta.write.txnAppId", f"flashsale-{name}")
        spark.conf.set("spark.databricks.delta.write.txnVersion", str(batch_id))
        if delta(name) is None:
            frame.write.format("delta").mode("append").save(paths[name])
            return
        frame.createOrReplaceTempView("incoming")
        spark.sql(f"MERGE INTO delta.`{paths[name]}` t USING incoming s ON {merge_on} {clause}")

    same_record = " AND ".join(f"t.{n} = s.{n}" for n in COORDINATES)
    quarantine_columns = [
        "kafka_topic", "kafka_partition", "kafka_offset", "writer_schema_id",
        "kafka_timestamp", "ingest_time", "raw_value", "reason", "quarantined_at",
        "kafka_topic_epoch",
    ]  # fmt: skip

    subject = f"{args.topic}-value"  # the topic's writers (TopicNameStrategy)

    def to_silver(batch: DataFrame, batch_id: int) -> None:
        split = split_wire(batch.drop("schema_id", "schema_guid"), headers="headers")
        framed = split.select(
            *(c for c in split.columns if c != "writer_schema_id"),
            F.col("writer_schema_id").alias("writer_schema_ref"),  # the whole reference
            table_schema_id(F.col("writer_schema_id")).alias("writer_schema_id"),
            F.col("topic").alias("kafka_topic"),
            F.col("topic_epoch").alias("kafka_topic_epoch"),
            F.col("partition").alias("kafka_partition"),
            F.col("offset").alias("kafka_offset"),
            F.col("value").alias("raw_value"),
        )
        framed.persist()
        rejected = [
            framed.filter("wire_error IS NOT NULL").withColumn("reason", F.col("wire_error"))
        ]
        decoded: DataFrame | None = None
        writers = framed.filter("wire_error IS NULL").select(
            "writer_schema_ref", "writer_schema_guid"
        )
        for schema_id, guid in writers.distinct().collect():
            of_writer = framed.filter(
                F.col("writer_schema_ref").eqNullSafe(schema_id)
                & F.col("writer_schema_guid").eqNullSafe(guid)
                & F.col("wire_error").isNull()
            )
            options = {"avroSchema": reader, "mode": "PERMISSIVE"}
            try:
                text = writer_schema(args.schema_registry_url, schema_id, guid)
            except UnknownWriter as exc:  # quarantined, as the embedded Silver does
                rejected.append(of_writer.withColumn("reason", F.lit(str(exc))))
                continue
            # identified as the same content prefix-framed is: a GUID by its id
            prefix = writer_prefix(args.schema_registry_url, subject, schema_id, guid, text)
            part = of_writer.withColumn("e", from_avro("body", text, options)).withColumn(
                "fingerprint", fingerprint(F.col("body"), prefix)
            )
            rejected.append(
                part.filter("e IS NULL").withColumn("reason", F.lit("undecodable body")).drop("e")
            )
            part = part.filter("e IS NOT NULL").select("*", "e.*").drop("e")
            decoded = part if decoded is None else decoded.unionByName(part)
        catalog = delta("silver/products")
        silver = delta("silver/events")
        if decoded is not None:
            decoded = decoded.withColumnRenamed("timestamp", "event_time")
            checked = silver_rules(
                decoded,
                currencies,
                catalog if catalog is not None and not catalog.isEmpty() else None,
                silver.select("product_id", "category") if silver is not None else None,
            )
            rejected.append(checked.filter("reason IS NOT NULL"))
            decision = decide_identity(checked.filter("reason IS NULL"), delta("silver/copies"))
            write(
                decision.copies,
                "silver/copies",
                same_record,
                batch_id,
                "WHEN NOT MATCHED THEN INSERT *",
            )
            bronze_now = spark.read.format("delta").load(paths["bronze/events"])
            earlier = decision.earlier_conflicts.join(
                bronze_now.select(
                    F.col("topic").alias("kafka_topic"),
                    F.col("topic_epoch").alias("kafka_topic_epoch"),
                    F.col("partition").alias("kafka_partition"),
                    F.col("offset").alias("kafka_offset"),
                    F.col("schema_id").alias("writer_schema_id"),
                    "kafka_timestamp",
                    "ingest_time",
                    F.col("value").alias("raw_value"),
                ),
                list(COORDINATES),
            )
            rejected += [decision.conflicts, earlier]
            if silver is not None:
                ids = ", ".join(
                    "'" + r[0].replace("\\", "\\\\").replace("'", "\\'") + "'"
                    for r in decision.conflicting.collect()
                )
                if ids:
                    spark.sql(
                        f"DELETE FROM delta.`{paths['silver/events']}` WHERE event_id IN ({ids})"
                    )
            winners = decision.winners.select(*silver_columns(reader))
            write(
                winners,
                "silver/events",
                "t.event_id = s.event_id",
                batch_id,
                # A kept copy replaces the row of a copy at other (higher) coordinates.
                f"WHEN MATCHED AND NOT ({same_record}) THEN UPDATE SET * "
                "WHEN NOT MATCHED THEN INSERT *",
            )
        quarantine = None
        for frame in rejected:
            part = frame.withColumn("quarantined_at", F.current_timestamp()).select(
                *quarantine_columns
            )
            quarantine = part if quarantine is None else quarantine.unionByName(part)
        if quarantine is not None:
            write(
                quarantine,
                "silver/quarantine",
                same_record,
                batch_id,
                "WHEN NOT MATCHED THEN INSERT *",
            )
        framed.unpersist()
        if decoded is not None:
            decision.release()
        if delta("silver/events") is None:
            return  # nothing has reached Silver yet
        # Gold of one Silver version, which each Gold commit names (gold_commit_metadata)
        # so that `flashsale kpis --verify-ledger` can refuse a Gold of two versions.
        history = f"DESCRIBE HISTORY delta.`{paths['silver/events']}` LIMIT 1"
        version = int(spark.sql(history).collect()[0]["version"])
        silver_now = (
            spark.read.format("delta").option("versionAsOf", version).load(paths["silver/events"])
        )
        silver_now.createOrReplaceTempView("silver_events")
        products = (
            catalog
            if catalog is not None
            else spark.createDataFrame([], "product_id string, category string, brand string")
        )
        products.createOrReplaceTempView("silver_products")
        gold = gold_tables(spark, sql_dir)
        gold["quality_per_minute"] = quality_per_minute(
            spark.read.format("delta").load(paths["bronze/events"]),
            silver_now,
            delta("silver/quarantine"),
            spark.read.format("delta").load(paths["silver/copies"]),
        )
        # Gold's writes are not Silver's transactions.
        spark.conf.unset("spark.databricks.delta.write.txnAppId")
        spark.conf.unset("spark.databricks.delta.write.txnVersion")
        for name, table in gold.items():
            table.write.format("delta").mode("overwrite").option("overwriteSchema", "true").option(
                "userMetadata", gold_commit_metadata(version)
            ).save(f"{w}/gold/{name}")

    (
        spark.readStream.format("delta")
        .load(paths["bronze/events"])
        .writeStream.foreachBatch(to_silver)
        .option("checkpointLocation", f"{args.checkpoints}/silver")
        .start()
        .awaitTermination()
    )


if __name__ == "__main__":
    main()
