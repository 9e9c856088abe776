"""Silver's product dimension: the shop's catalog as its products topic says it.

The shop publishes one Avro product record per product on a compacted topic keyed by
product id (``flashsale produce`` does, before its events). Bronze keeps the topic's
records in ``bronze/products``; this job folds them, in partition and offset order,
into ``silver/products``, one row per product: the newest record of a product
replaces the one before, and a tombstone (a record with no value) removes it, as
compaction would. A record that cannot be decoded goes to ``silver/quarantine`` with
reason ``bad product``. Progress is committed with the table, as Silver's is.

Silver checks every event against this table (the product exists, its category and
brand are the catalog's), and Gold takes categories and brands from it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka.schema_registry import SchemaRegistryClient
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.arrow_types import reader_arrow_schema
from consumers.bronze import app_id
from consumers.decode import Decoder, Rejected
from consumers.errors import PipelineError
from consumers.evolve import arrow
from consumers.identity import insert_new
from consumers.tables import COORDINATES, QUARANTINE_SCHEMA, coordinates, quarantined, unprocessed

__all__ = [
    "PRODUCT_CONTRACT",
    "ProductDimension",
    "ProductStats",
    "ensure_products",
    "read_catalog",
]

log = logging.getLogger(__name__)

PRODUCT_CONTRACT = Path(__file__).resolve().parent / "contracts" / "catalog" / "product.avsc"
_JOB = "silver-products"
# Where a product's current record came from: the first of Silver's coordinates.
# Where each product's record was read from: not part of the product.
CATALOG_ORIGIN = COORDINATES[:4]


@dataclass
class ProductStats:
    read: int = 0
    changed: int = 0  # products added or replaced
    removed: int = 0  # by tombstones
    quarantined: int = 0
    products: int = 0  # in the dimension after the run


def products_path(warehouse: Path) -> Path:
    return warehouse / "silver" / "products"


def _schema(reader_schema: Path = PRODUCT_CONTRACT) -> tuple[Any, str, pa.Schema]:
    """(parsed Avro reader, its text, Arrow schema of the dimension) of a product reader
    schema."""
    try:
        text = reader_schema.read_text(encoding="utf-8")
        definition = json.loads(text)
        reader = fastavro.parse_schema(definition)
    except (OSError, ValueError) as exc:
        raise PipelineError(f"silver: product reader schema {reader_schema}: {exc}") from exc
    return reader, text, reader_arrow_schema(definition, CATALOG_ORIGIN)


def ensure_products(warehouse: Path) -> Path:
    """The dimension's path, created empty when there is none yet (Gold joins it
    whether or not a catalog was ever published)."""
    path = products_path(warehouse)
    if not DeltaTable.is_deltatable(str(path)):
        write_deltalake(str(path), _schema()[2].empty_table(), mode="append")
    return path


def read_catalog(warehouse: Path) -> dict[str, tuple[str, str | None]]:
    """Product id -> (category, brand), as the dimension holds them (empty: no catalog)."""
    path = products_path(warehouse)
    if not DeltaTable.is_deltatable(str(path)):
        return {}
    table = arrow(DeltaTable(str(path)), ["product_id", "category", "brand"])
    return {
        r["product_id"]: (r["category"], r["brand"])
        for r in table.to_pylist()
        if r["product_id"] is not None
    }


class ProductDimension:
    """``bronze/products`` -> ``silver/products``, incrementally."""

    def __init__(
        self,
        warehouse: Path,
        registry: dict[str, Any],
        topic: str,
        reader_schema: Path = PRODUCT_CONTRACT,
    ) -> None:
        self.bronze = warehouse / "bronze" / "products"
        self.path = products_path(warehouse)
        self.quarantine = warehouse / "silver" / "quarantine"
        self.topic = topic
        reader, text, self.schema = _schema(reader_schema)
        self.reader_name = reader_schema.name
        self.decoder = Decoder(SchemaRegistryClient(registry), reader, text)

    def run(self) -> ProductStats:
        stats = ProductStats()
        if not DeltaTable.is_deltatable(str(self.path)):
            write_deltalake(str(self.path), self.schema.empty_table(), mode="append")
        if not DeltaTable.is_deltatable(str(self.bronze)):
            return stats
        rows = unprocessed(self.bronze, self.path, _JOB, self.topic)
        stats.read = rows.num_rows
        if rows.num_rows == 0:
            stats.products = arrow(DeltaTable(str(self.path)), ["product_id"]).num_rows
            return stats
        writers = [i for i in pc.unique(rows["schema_id"]).to_pylist() if i is not None]
        self.decoder.refuse_unreadable(
            writers, "silver products", self.reader_name, f"{self.topic}-value"
        )
        current = {r["product_id"]: r for r in arrow(DeltaTable(str(self.path))).to_pylist()}
        bad = []
        last: dict[tuple[int, int], int] = {}
        for row in rows.to_pylist():
            last[(row["topic_epoch"] or 0, row["partition"])] = row["offset"]
            if row["value"] is None:  # a tombstone: the product is gone
                key = (row["key"] or b"").decode("utf-8", errors="replace")
                if current.pop(key, None) is not None:
                    stats.removed += 1
                continue
            try:
                record = self.decoder.decode(row["value"])
            except Rejected as exc:
                bad.append(quarantined(coordinates(row), row["value"], f"bad product: {exc}"))
                continue
            current[record["product_id"]] = {
                **record,
                "kafka_topic": row["topic"],
                "kafka_partition": row["partition"],
                "kafka_offset": row["offset"],
                "writer_schema_id": row["schema_id"],
            }
            stats.changed += 1
        if bad:
            insert_new(self.quarantine, pa.Table.from_pylist(bad, schema=QUARANTINE_SCHEMA))
            stats.quarantined = len(bad)
        table = pa.Table.from_pylist([current[k] for k in sorted(current)], schema=self.schema)
        commit = CommitProperties(
            app_transactions=[
                Transaction(app_id(_JOB, self.topic, p, epoch), offset)
                for (epoch, p), offset in sorted(last.items())
            ]
        )
        write_deltalake(str(self.path), table, mode="overwrite", commit_properties=commit)
        stats.products = table.num_rows
        log.info("silver: %d products in the catalog", stats.products)
        return stats
