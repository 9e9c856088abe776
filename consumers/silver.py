"""Silver: Bronze decoded with the consumer's reader schema, checked, deduplicated.

* Decoding: each record's writer schema comes from the registry by the id in its
  header; fastavro resolves it to the reader schema (the newest this consumer knows,
  ``consumers/contracts/silver.avsc``), so older writers arrive with the reader's
  defaults and newer writers' extra fields are dropped.
* Quality rules: the revenue identity (quantity x price for a purchase, 0 otherwise),
  a known product (an id and a category, and the category it was first seen with),
  a currency the shop prices in (``currencies``; money in another currency is never
  added to the shop's), and an event time in range (after 2000 and at most 30 days
  after ingestion).
  Rejects, and records that cannot be decoded at all (bad magic byte, unknown schema
  id, truncated body), go to a quarantine table with the raw bytes, the coordinates
  and the reason; the pipeline goes on.
* Identity (:mod:`consumers.identity`): copies of one event with the same content are
  duplicates, and Silver keeps the copy at the lowest coordinates; copies with
  different contents are a conflict, quarantined all, withdrawn from Silver. Each
  decision depends only on the set of records, so a rebuild and any sequence of
  incremental runs give the same tables.
* Evolution: when the reader schema gains fields, the table gains the columns, and
  rows written before get the fields' defaults, as a fresh decode would give them.
* Progress: the last Bronze offset processed per (topic epoch, partition) is committed in the same
  Delta commit as the batch's rows (application transactions), so a rerun resumes exactly.
* Cost: a run reads only what Bronze added since the last (in bounded batches, older
  files pruned by their statistics) and, of the tables before it, only the copies and
  rows of the batch's event ids (see :meth:`SilverJob.run`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka.schema_registry import SchemaRegistryClient
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.arrow_types import RENAMED, reader_arrow_schema
from consumers.bronze import BRONZE_SCHEMA, app_id
from consumers.decode import Decoder, Rejected, plain_columns
from consumers.errors import PipelineError
from consumers.evolve import add_missing_columns, arrow, read
from consumers.evolve import rows as pylist
from consumers.identity import (
    COPIES_SCHEMA,
    SAME_RECORD,
    WHERE,
    Coordinates,
    Copy,
    Identity,
    Recorded,
    digests,
    fingerprint,
    insert_new,
    last_per_record,
    where_of,
)
from consumers.products import read_catalog
from consumers.tables import (
    BATCH_ROWS,
    BRONZE_COLUMNS,
    COORDINATES,
    QUARANTINE_SCHEMA,
    coordinates,
    quarantined,
    rows_of_keys,
    unprocessed_batches,
)
from consumers.wire import value_headers

__all__ = ["QUARANTINE_SCHEMA", "SilverJob", "SilverStats"]

log = logging.getLogger(__name__)

CONTRACT = Path(__file__).resolve().parent / "contracts" / "silver.avsc"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=30)


@dataclass
class SilverStats:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    released: int = 0  # records a replay of the quarantine took out of it
    batches: int = 0  # the batches Bronze was read in, each committed on its own
    reasons: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def count(self, reason: str) -> None:
        kind = reason.split(":")[0]
        self.reasons[kind] = self.reasons.get(kind, 0) + 1


Values = npt.NDArray[np.object_]  # a batch's values: bytes, None for a tombstone
Flags = npt.NDArray[np.bool_]

_COORDINATE_NAMES = [f.name for f in COORDINATES]
# The Bronze column of each of Silver's coordinates, in the order of COORDINATES.
_BRONZE_NAMES = [
    "topic",
    "partition",
    "offset",
    "schema_id",
    "kafka_timestamp",
    "ingest_time",
    "topic_epoch",
]
_KEPT_SCHEMA = pa.schema(
    [pa.field("event_id", pa.string()), *(COPIES_SCHEMA.field(n) for n in WHERE)]
)


def _field(table: pa.Table, name: str, default: str | None) -> pa.ChunkedArray:
    """The column ``name`` of decoded records, or ``default`` in every row when the
    reader has no such field (as ``record.get(name, default)`` reads it)."""
    if name in table.column_names:
        return table[name]
    return pa.chunked_array([pa.array([default] * table.num_rows, pa.string())])


def _plainly(schema: pa.Schema) -> pa.Schema:
    """``schema`` as records read without logical types come: decimals as binary,
    timestamps as int64."""
    fields = []
    for f in schema:
        kind = f.type
        if pa.types.is_decimal(kind):
            kind = pa.binary()
        elif pa.types.is_timestamp(kind):
            kind = pa.int64()
        fields.append(pa.field(f.name, kind))
    return pa.schema(fields)


def _widest(schema: pa.Schema, names: list[str]) -> pa.Schema:
    """The first ``names`` fields of ``schema`` as Avro names them, decimals at their
    widest precision: what decoded records are read into before they are checked."""
    avro = {v: k for k, v in RENAMED.items()}
    fields = []
    for name in names:
        kind = schema.field(RENAMED.get(name, name)).type
        if pa.types.is_decimal(kind):
            kind = pa.decimal128(38, kind.scale)
        fields.append(pa.field(avro.get(name, name), kind))
    return pa.schema(fields)


def _with_prefix_framing(rows: pa.Table) -> pa.Table:
    """``rows`` read as prefix-framed records (no Bronze to say otherwise)."""
    rows = rows.append_column("schema_id_in", pa.array(["prefix"] * rows.num_rows))
    return rows.append_column("schema_guid", pa.nulls(rows.num_rows, pa.string()))


_WHERE = ["kafka_topic", "kafka_topic_epoch", "kafka_partition", "kafka_offset"]


def _bronze_where(row: dict[str, Any]) -> Coordinates:
    """The coordinates of a Bronze row."""
    return (row["topic"], row.get("topic_epoch") or 0, row["partition"], row["offset"])


def _last_offsets(rows: pa.Table) -> dict[tuple[int, int], int]:
    """The last offset of each (topic epoch, partition) among Bronze ``rows``."""
    keys = rows.select(["topic_epoch", "partition", "offset"])
    keys = keys.set_column(0, "topic_epoch", pc.fill_null(keys["topic_epoch"], 0))
    spans = keys.group_by(["topic_epoch", "partition"]).aggregate([("offset", "max")])
    return {(r["topic_epoch"], r["partition"]): r["offset_max"] for r in spans.to_pylist()}


class SilverJob:
    """Bronze -> Silver (events) and Silver (quarantine), incrementally."""

    def __init__(
        self,
        warehouse: Path,
        registry: dict[str, Any],
        topic: str,
        reader_schema: Path = CONTRACT,
        currencies: tuple[str, ...] = ("USD",),
    ) -> None:
        self.currencies = currencies
        self.bronze = warehouse / "bronze" / "events"
        self.events = warehouse / "silver" / "events"
        self.quarantine = warehouse / "silver" / "quarantine"
        self.topic = topic
        self.registry = SchemaRegistryClient(registry)
        self.reader_name = reader_schema.name
        try:
            self.reader_text = reader_schema.read_text(encoding="utf-8")
            self.definition = json.loads(self.reader_text)
            self.reader = fastavro.parse_schema(self.definition)
        except (OSError, ValueError) as exc:
            raise PipelineError(f"silver: reader schema {reader_schema}: {exc}") from exc
        self.schema = reader_arrow_schema(self.definition, COORDINATES)
        self._wide = _widest(self.schema, [f["name"] for f in self.definition["fields"]])
        self._plain = _plainly(self._wide)
        self.defaults = {
            RENAMED.get(f["name"], f["name"]): f["default"]
            for f in self.definition["fields"]
            if "default" in f
        }
        self.copies = Identity(warehouse / "silver" / "copies")
        self.warehouse = warehouse
        self._catalog: dict[str, tuple[str, str | None]] = {}
        self.decoder = Decoder(self.registry, self.reader, self.reader_text)
        self._categories: dict[str, str] = {}

    # ------------------------------------------------------------------ the run

    def run(self, max_rows: int | None = None, batch_rows: int = BATCH_ROWS) -> SilverStats:
        """Decode, check and deduplicate what Bronze added since the last run (at most
        ``max_rows`` records of it, in partition and offset order, when given).

        Bronze is read in batches of at most ``batch_rows`` records, each committed
        with its offsets, so memory holds one batch and a run cut short keeps what its
        finished batches did. A batch reads only what it needs of the tables before
        it: the copies and Silver rows of its own event ids, and new rows are appended
        (a MERGE, which reads the whole table, only replaces a row by a copy at lower
        coordinates, which is rare)."""
        stats = SilverStats()
        started = time.monotonic()
        prepared = False
        for rows in unprocessed_batches(
            self.bronze, self.events, "silver", self.topic, batch_rows, self._refuse_unreadable
        ):
            if max_rows is not None:
                rows = rows.slice(0, max_rows - stats.read)
            if rows.num_rows == 0:
                break
            if not prepared:
                self._prepare()
                prepared = True
            stats.read += rows.num_rows
            stats.batches += 1
            self._apply(rows, stats, _last_offsets(rows))
            # What the batch's columns held goes back to the system: Arrow's allocator
            # keeps freed pages for reuse, which made a run's memory grow with its rows.
            pa.default_memory_pool().release_unused()
        stats.elapsed = time.monotonic() - started
        return stats

    def replay_quarantine(self, reason: str | None = None) -> SilverStats:
        """Decode and check again the quarantined records of the topic (those whose
        reason starts with ``reason``, when given), once the reader or the rules are
        fixed. Those that pass go through the identity rules as fresh records would (a
        conflict stays quarantined unless its copies now agree) and leave the
        quarantine; those that still fail stay, with the reason they fail for now.

        Each step is idempotent (copies and quarantine rows are keyed by coordinates,
        Silver by event id), so a replay cut short is finished by running it again.
        Silver's progress through Bronze is not touched."""
        stats = SilverStats()
        started = time.monotonic()
        if not DeltaTable.is_deltatable(str(self.quarantine)):
            return stats
        table = read(self.quarantine, QUARANTINE_SCHEMA.names)
        table = table.filter(pc.equal(table["kafka_topic"], self.topic))
        if reason:
            table = table.filter(pc.starts_with(table["reason"], reason))
        rows = pa.table(
            {
                "topic": table["kafka_topic"],
                "partition": table["kafka_partition"],
                "offset": table["kafka_offset"],
                "key": pa.nulls(table.num_rows, pa.binary()),
                "value": table["raw_value"],
                "schema_id": table["writer_schema_id"],
                "kafka_timestamp": table["kafka_timestamp"],
                "ingest_time": table["ingest_time"],
                "topic_epoch": table["kafka_topic_epoch"],
            }
        ).sort_by(
            [("topic_epoch", "ascending"), ("partition", "ascending"), ("offset", "ascending")]
        )
        rows = self._framed(rows)
        stats.read = rows.num_rows
        if rows.num_rows:
            self._prepare()
            still = self._apply(rows, stats, None)
            passed = [
                r
                for r in rows.select(["topic", "topic_epoch", "partition", "offset"]).to_pylist()
                if _bronze_where(r) not in still
            ]
            self._release(passed)
            stats.released = len(passed)
        stats.elapsed = time.monotonic() - started
        return stats

    def _framed(self, rows: pa.Table) -> pa.Table:
        """Quarantined ``rows`` with what Bronze kept of each record beside its value:
        its key, and where it named its writer (the prefix, or a header with the GUID
        or id), so that a header-framed record is decoded as it came. A record Bronze
        no longer holds keeps the quarantine's value, as prefix-framed."""
        where = ["topic", "topic_epoch", "partition", "offset"]
        kept = ["key", "schema_id_in", "schema_guid"]
        if not rows.num_rows or not DeltaTable.is_deltatable(str(self.bronze)):
            return _with_prefix_framing(rows)
        bronze = read(self.bronze, [*where, *kept])
        bronze = bronze.filter(pc.equal(bronze["topic"], self.topic))
        joined = rows.drop_columns(["key"]).join(bronze, where, join_type="left outer")
        joined = joined.set_column(
            joined.schema.get_field_index("schema_id_in"),
            "schema_id_in",
            pc.fill_null(joined["schema_id_in"], "prefix"),
        )
        return joined.sort_by([(c, "ascending") for c in where[1:]])

    def _refuse_unreadable(self, writers: list[int]) -> None:
        """A reader that cannot read a writer would quarantine every record of it:
        refused before anything moves (no commit, no progress). A run checks the
        writers of all it will read before its first batch."""
        self.decoder.refuse_unreadable(writers, "silver", self.reader_name, f"{self.topic}-value")

    def _prepare(self) -> None:
        """What a run does once before its first batch: the tables gain the reader's
        new columns, the catalog is read, and an older Silver gets its copies."""
        self._evolve()
        self._catalog = read_catalog(self.warehouse)
        if not self._catalog:
            self._load_categories()
        self._backfill_copies()

    def _apply(
        self, rows: pa.Table, stats: SilverStats, last: dict[tuple[int, int], int] | None
    ) -> set[Coordinates]:
        """Decode, check and decide ``rows`` (Bronze's columns) into Silver and the
        quarantine, committing Bronze offsets ``last`` with Silver (None: a replay of
        the quarantine, which moves no progress); adds to ``stats``; the coordinates
        quarantined.

        Records are decoded one by one (fastavro), then checked, decided and written
        in columns: only a record that fails a rule, and the copies of a conflicting
        event, become Python rows again (a rejected record is checked once more, one
        rule after the other, for the reason it is quarantined with)."""
        self._refuse_unreadable(
            [i for i in pc.unique(rows["schema_id"]).to_pylist() if i is not None]
        )
        # Each value as bytes (None: a tombstone), and whether it is header-framed.
        values: Values = rows["value"].to_numpy(zero_copy_only=False)
        header: Flags = pc.fill_null(pc.equal(rows["schema_id_in"], "header"), False).to_numpy(
            zero_copy_only=False
        )
        decoded, records, failed = self._decode(rows, values, header)
        at = decoded["_row"].to_pylist()
        for j in self._suspects(decoded):
            i = at[j]
            row = self._bronze_row(rows, i)
            record = records.get(i) or self.decoder.decode(values[i], value_headers(row))
            try:
                self._check(record, row["ingest_time"])
            except Rejected as exc:
                failed.append((i, str(exc)))
                continue
            if decoded["event_id"][j].as_py() is None:  # a value that fits no column
                raise PipelineError(
                    f"silver: the record at {_bronze_where(row)} passes the rules but a "
                    f"value of it does not fit Silver's columns ({self.schema}); nothing "
                    "of this batch was committed"
                )
        failed.sort()
        bad = []
        for i, reason in failed:
            stats.count(reason)
            bad.append(quarantined(coordinates(self._bronze_row(rows, i)), values[i], reason))
        rejected = pa.array(sorted(i for i, _ in failed), pa.int64())
        good = decoded.filter(pc.invert(pc.is_in(decoded["_row"], value_set=rejected)))
        good = last_per_record(good)
        fingerprints = self._fingerprints(rows, values, header, good["_row"])
        good = good.append_column("fingerprint", fingerprints)
        recorded = self.copies.record_table(good)
        conflicts = self._conflicts(recorded, good, values)
        for _ in conflicts:
            stats.count("conflict")
        if bad or conflicts:
            self._quarantine(bad + conflicts, replace=last is None)
            stats.quarantined += len(bad) + len(conflicts)
        self._withdraw(recorded.conflicting)
        kept = self._kept(recorded.keep["event_id"])
        winners = good.join(recorded.keep, keys=["event_id", *WHERE], join_type="left semi")
        if kept.num_rows:
            winners = winners.join(kept, keys=["event_id", *WHERE], join_type="left anti")
        replacing = pc.is_in(winners["event_id"], value_set=kept["event_id"])
        inserted = winners.num_rows - pc.sum(replacing).as_py() if winners.num_rows else 0
        stats.inserted += inserted
        winners = winners.sort_by("event_id").select(self.schema.names).cast(self.schema)
        self._merge(winners, bool(pc.any(replacing).as_py()), last or {})
        conflicting = pa.array(sorted(recorded.conflicting), pa.string())
        in_batch_conflicts = pc.sum(pc.is_in(good["event_id"], value_set=conflicting)).as_py()
        stats.duplicates += good.num_rows - inserted - (in_batch_conflicts or 0)
        return {where_of(r) for r in bad + conflicts}

    def _bronze_row(self, rows: pa.Table, i: int) -> dict[str, Any]:
        """Bronze row ``i`` of ``rows`` as a dict (for the few rows that need one)."""
        return pylist(rows.slice(i, 1))[0]

    def _decode(
        self, rows: pa.Table, values: Values, header: Flags
    ) -> tuple[pa.Table, dict[int, dict[str, Any]], list[tuple[int, str]]]:
        """(the records that decoded, as :meth:`_columns` gives them; those of them read
        with their logical types, by index in ``rows``; (index, reason) of each record
        that did not decode). Prefix-framed records are read a column at a time when
        their writer allows (:meth:`Decoder.read_columns`); any other, or one that path
        leaves, is read plainly (:meth:`Decoder.decode_plain`) or by the decoder's
        shortest path, and a header-framed one, or one those paths cannot read, by the
        whole decoder."""
        parts = []
        prefixed = ~header
        columns, read = self.decoder.read_columns(
            rows["value"].combine_chunks(), np.flatnonzero(prefixed).astype(np.int64)
        )
        if columns is not None:
            try:
                table = plain_columns(columns.cast(self._plain), self.decoder.logical)
                parts.append(self._columns(table.cast(self._wide), rows, read.tolist()))
            except (ValueError, TypeError, OverflowError):  # read them one by one
                read = np.zeros(0, np.int64)
        left = np.ones(len(values), np.bool_)
        left[read] = False
        plain: list[dict[str, Any]] = []
        plain_at: list[int] = []
        records: dict[int, dict[str, Any]] = {}
        failed: list[tuple[int, str]] = []
        read_plain, read_prefixed = self.decoder.decode_plain, self.decoder.decode_prefixed
        for i in np.flatnonzero(left).tolist():
            raw, record = values[i], None
            if prefixed[i]:
                record = read_plain(raw)
                if record is not None:
                    plain.append(record)
                    plain_at.append(i)
                    continue
                record = read_prefixed(raw)
            if record is None:
                try:
                    record = self.decoder.decode(raw, value_headers(self._bronze_row(rows, i)))
                except Rejected as exc:
                    failed.append((i, str(exc)))
                    continue
            records[i] = record
        if plain:
            try:
                table = pa.Table.from_pylist(plain, schema=self._plain)
                table = plain_columns(table, self.decoder.logical).cast(self._wide)
                parts.append(self._columns(table, rows, plain_at))
            except (ValueError, TypeError, OverflowError):  # read them as the others
                records.update({i: self.decoder.decode(values[i]) for i in plain_at})
        if records or not parts:
            parts.append(
                self._columns(self._logical_table(list(records.values())), rows, list(records))
            )
        decoded = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        return decoded.sort_by("_row"), records, failed

    def _logical_table(self, records: list[dict[str, Any]]) -> pa.Table:
        """Records read with their logical types, in Silver's (widest) columns."""
        try:
            return pa.Table.from_pylist(records, schema=self._wide)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            # A value no column can hold: read row by row, such a row kept as nulls,
            # which the rules reject, so it is checked one rule after the other.
            return pa.concat_tables([self._one(r) for r in records] or [self._wide.empty_table()])

    def _columns(self, table: pa.Table, rows: pa.Table, at: list[int]) -> pa.Table:
        """Decoded records (``table``, of Avro's names) as Silver's columns, beside the
        coordinates of their Bronze rows (``at`` in ``rows``) and ``_row``, the index
        of that row."""
        bronze = rows.take(pa.array(at, pa.int64()))
        table = table.rename_columns([RENAMED.get(n, n) for n in table.column_names])
        for f, name in zip(COORDINATES, _BRONZE_NAMES, strict=True):
            column = bronze[name]
            if f.name == "kafka_topic_epoch":
                column = pc.fill_null(column, 0)
            table = table.append_column(f.name, column.cast(f.type))
        return table.append_column("_row", pa.array(at, pa.int64()))

    def _one(self, record: dict[str, Any]) -> pa.Table:
        """One record as a row of :meth:`_columns`; all nulls when a value of it fits no
        column (such a record fails the rules' tests, and :meth:`_apply` refuses to
        write one that passes them)."""
        try:
            return pa.Table.from_pylist([record], schema=self._wide)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return pa.Table.from_pylist([{}], schema=self._wide)

    def _suspects(self, table: pa.Table) -> list[int]:
        """The indexes of the records that may fail a rule of :meth:`_check`: every
        record that does fails one of these column-wise tests, so the others pass."""
        purchase = pc.equal(table["event_type"], "purchase")
        # quantity x price in decimals wide enough for any int and a price of at most
        # 18 digits (a larger price is a suspect): 10 + 18 digits.
        price = table["price"]
        narrow = pa.decimal128(18, price.type.scale)
        small = pc.less(pc.abs(price), pa.scalar(Decimal(10 ** (18 - narrow.scale)), price.type))
        price = pc.cast(pc.if_else(small, price, pa.scalar(0, price.type)), narrow)
        expected = pc.multiply(pc.cast(table["quantity"], pa.decimal128(10, 0)), price)
        zero = pa.scalar(Decimal("0"), pa.decimal128(1, 0))
        revenue_ok = pc.and_(
            small,
            pc.if_else(
                purchase, pc.equal(table["revenue"], expected), pc.equal(table["revenue"], zero)
            ),
        )
        named = pc.and_(
            pc.greater(pc.utf8_length(_field(table, "product_id", None)), 0),
            pc.greater(pc.utf8_length(_field(table, "category", None)), 0),
        )
        ok = pc.and_(pc.fill_null(revenue_ok, False), pc.fill_null(named, False))
        ok = pc.and_(ok, self._known_products(table, ok))
        ok = pc.and_(
            ok, pc.is_in(_field(table, "currency", "USD"), value_set=pa.array(self.currencies))
        )
        when = pc.cast(table["event_time"], pa.timestamp("us", tz="UTC"))
        latest = pc.add(table["ingest_time"], pa.scalar(MAX_AHEAD, pa.duration("us")))
        ok = pc.and_(ok, pc.greater_equal(when, pa.scalar(EARLIEST, pa.timestamp("us", "UTC"))))
        ok = pc.fill_null(pc.and_(ok, pc.less_equal(when, latest)), False)
        return [j for j, passed in enumerate(ok.to_pylist()) if not passed]

    def _known_products(self, table: pa.Table, checked: pa.Array) -> pa.Array:
        """Whether each row's product is the shop's: as the catalog lists it, or (no
        catalog) with the category it was first seen with; ``checked``: the rows that
        reach this rule (only those teach a product's first category)."""
        if self._catalog:
            listed = pa.array(list(self._catalog), pa.string())
            index = pc.index_in(_field(table, "product_id", None), value_set=listed)
            category = pc.take(pa.array([c for c, _ in self._catalog.values()]), index)
            brand = pc.take(pa.array([b for _, b in self._catalog.values()], pa.string()), index)
            same_brand = pc.if_else(
                pc.is_null(brand),
                pc.is_null(_field(table, "brand", None)),
                pc.equal(brand, _field(table, "brand", None)),
            )
            ok = pc.and_(
                pc.equal(category, _field(table, "category", None)), pc.fill_null(same_brand, False)
            )
            return pc.fill_null(ok, False)
        first = self._categories.setdefault
        return pa.array(
            [
                not reached or first(product, category) == category
                for product, category, reached in zip(
                    _field(table, "product_id", None).to_pylist(),
                    _field(table, "category", None).to_pylist(),
                    checked.to_pylist(),
                    strict=True,
                )
            ],
            pa.bool_(),
        )

    def _fingerprints(
        self,
        rows: pa.Table,
        values: Values,
        header: Flags,
        at: pa.Array,
    ) -> pa.Array:
        """The content fingerprint of the records at ``at`` (indexes into ``rows``,
        whose ``values`` are header-framed where ``header`` says)."""
        index = at.to_numpy(zero_copy_only=False)
        # prefix-framed: the content is the value as it is
        out = digests(values[index])
        for j in np.flatnonzero(header[index]).tolist():
            out[j] = self._header_fingerprint(rows, int(index[j]))
        return pa.array(out, pa.string())

    def _header_fingerprint(self, rows: pa.Table, i: int) -> str:
        row = self._bronze_row(rows, i)
        return fingerprint(row["value"], value_headers(row), self._schema_id_of)

    def _conflicts(
        self, recorded: Recorded, good: pa.Table, values: Values
    ) -> list[dict[str, Any]]:
        """Every copy of every conflicting id, as quarantine rows (raw bytes from this
        batch, or from Bronze for copies of earlier runs)."""
        if not recorded.conflicting:
            return []
        copies = recorded.copies_of(recorded.conflicting)
        wanted = [c for i in sorted(recorded.conflicting) for c in copies[i]]
        ids = pa.array(sorted(recorded.conflicting), pa.string())
        mine = good.filter(pc.is_in(good["event_id"], value_set=ids))
        candidates = {where_of(r): r for r in pylist(mine.select([*_COORDINATE_NAMES, "_row"]))}
        older = {c.where for c in wanted if c.where not in candidates}
        bronze = self._bronze_rows(older) if older else {}
        out = []
        for c in wanted:
            reason = f"conflict: event {c.event_id} has copies with other content"
            if c.where in candidates:
                row = candidates[c.where]
                origin = {k: row[k] for k in _COORDINATE_NAMES}
                out.append(quarantined(origin, values[row["_row"]], reason))
            elif c.where in bronze:
                found = bronze[c.where]
                out.append(quarantined(coordinates(found), found["value"], reason))
        return out

    def _bronze_rows(self, wanted: set[Coordinates]) -> dict[Coordinates, dict[str, Any]]:
        table = read(self.bronze, BRONZE_COLUMNS)
        partitions = pa.array(sorted({w[2] for w in wanted}), pa.int32())
        table = table.filter(pc.is_in(table["partition"], value_set=partitions))
        found = {}
        for row in table.to_pylist():
            where = _bronze_where(row)
            if where in wanted:
                found[where] = row
        return found

    def _kept(self, ids: pa.Array) -> pa.Table:
        """The Silver rows of ``ids``: each one's event id and coordinates."""
        if not len(ids) or not DeltaTable.is_deltatable(str(self.events)):
            return _KEPT_SCHEMA.empty_table()
        table = rows_of_keys(self.events, ["event_id", *_WHERE], "event_id", ids)
        return table.select(["event_id", *_WHERE]).cast(_KEPT_SCHEMA)

    def _withdraw(self, conflicting: frozenset[str]) -> None:
        """Take conflicting ids out of Silver (their copies are quarantined)."""
        if not conflicting or not DeltaTable.is_deltatable(str(self.events)):
            return
        quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in sorted(conflicting))
        DeltaTable(str(self.events)).delete(f"event_id IN ({quoted})")

    def _backfill_copies(self) -> None:
        """A Silver written before ``silver/copies`` existed: its rows become the first
        copies (their content read back from Bronze)."""
        if self.copies.exists() or not DeltaTable.is_deltatable(str(self.events)):
            return
        silver = read(self.events, ["event_id", *_WHERE])
        wire = ["value", "schema_id_in", "schema_guid", "schema_id"]
        bronze = read(self.bronze, ["topic", "topic_epoch", "partition", "offset", *wire])
        found = {_bronze_where(r): r for r in bronze.to_pylist()}
        copies = []
        for r in silver.to_pylist():
            where = where_of(r)
            if where in found:
                row = found[where]
                content = fingerprint(row["value"], value_headers(row), self._schema_id_of)
                copies.append(Copy(r["event_id"], content, where))
        if not copies:
            write_deltalake(str(self.copies.path), COPIES_SCHEMA.empty_table(), mode="append")
        self.copies.add(copies)
        log.info("silver: recorded %d copies of the events already in Silver", len(copies))

    # ------------------------------------------------------------------ decoding and rules

    def _schema_id_of(self, guid: str) -> int | None:
        """The registry id of a header-framed record's writer (for its fingerprint)."""
        return self.decoder.schema_id_of(guid, f"{self.topic}-value")

    def _check(self, record: dict[str, Any], ingested: datetime) -> None:
        quantity, price, revenue = record["quantity"], record["price"], record["revenue"]
        expected = quantity * price if record["event_type"] == "purchase" else Decimal("0.00")
        if revenue != expected:
            raise Rejected(
                f"revenue identity: revenue {revenue} != {expected} for a "
                f"{record['event_type']} of {quantity} x {price}"
            )
        product, category = record.get("product_id"), record.get("category")
        if not product or not category:
            raise Rejected("unknown product: no product id or category")
        if self._catalog:  # the shop's catalog decides
            listed = self._catalog.get(product)
            if listed is None:
                raise Rejected(f"unknown product: {product} is not in the catalog")
            if listed[0] != category:
                raise Rejected(
                    f"unknown product: {product} has category {listed[0]} in the catalog, "
                    f"not {category}"
                )
            if listed[1] != record.get("brand"):
                raise Rejected(
                    f"unknown product: {product} has brand {listed[1]} in the catalog, "
                    f"not {record.get('brand')}"
                )
        else:  # no catalog published: a product keeps the category it was first seen with
            known = self._categories.setdefault(product, category)
            if known != category:
                raise Rejected(f"unknown product: {product} has category {known}, not {category}")
        currency = record.get("currency", "USD")
        if currency not in self.currencies:
            raise Rejected(
                f"foreign currency: {currency} (the shop prices in {', '.join(self.currencies)})"
            )
        when: datetime = record["timestamp"]
        if not EARLIEST <= when <= ingested + MAX_AHEAD:
            raise Rejected(f"time out of range: {when.isoformat()}")

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        return {RENAMED.get(k, k): v for k, v in record.items()}

    # ------------------------------------------------------------------ tables

    def _evolve(self) -> None:
        """Add the reader's new columns to an existing table, filled with their defaults
        (and Silver's own new columns to both tables, null in older rows)."""
        _add_missing_columns(self.quarantine, QUARANTINE_SCHEMA)
        missing = _add_missing_columns(self.events, self.schema)
        if not missing:
            return
        table = DeltaTable(str(self.events))
        values = {
            f.name: self.defaults[f.name] for f in missing if self.defaults.get(f.name) is not None
        }
        if values:
            table.update(new_values=values)
        log.info("silver: added columns %s", ", ".join(f.name for f in missing))

    def _load_categories(self) -> None:
        if self._categories or not DeltaTable.is_deltatable(str(self.events)):
            return
        known = arrow(DeltaTable(str(self.events)), ["product_id", "category"])
        # Each product's first category in the table's order, as a loop over its rows
        # with setdefault would find it (an ordered aggregation needs one thread).
        first = known.group_by("product_id", use_threads=False).aggregate(
            [("category", "first", pc.ScalarAggregateOptions(skip_nulls=False))]
        )
        for product, category in zip(
            first["product_id"].to_pylist(), first["category_first"].to_pylist(), strict=True
        ):
            self._categories.setdefault(product, category)

    def _quarantine(self, rows: list[dict[str, Any]], replace: bool = False) -> None:
        """Quarantine ``rows``; with ``replace``, a record already there takes the reason
        it fails for now (a replay), else it keeps the one it came with."""
        batch = pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
        if not replace or not DeltaTable.is_deltatable(str(self.quarantine)):
            insert_new(self.quarantine, batch)
            return
        (
            DeltaTable(str(self.quarantine))
            .merge(batch, SAME_RECORD, source_alias="s", target_alias="t")
            .when_matched_update(
                {"reason": "s.reason", "quarantined_at": "s.quarantined_at"},
                predicate="t.reason <> s.reason",
            )
            .when_not_matched_insert_all()
            .execute()
        )

    def _release(self, passed: list[dict[str, Any]]) -> None:
        """Take the records at the coordinates ``passed`` out of the quarantine."""
        if not passed:
            return
        names = ["topic", "topic_epoch", "partition", "offset"]
        batch = pa.Table.from_pylist(
            passed, schema=pa.schema([BRONZE_SCHEMA.field(n) for n in names])
        ).rename_columns(_WHERE)
        (
            DeltaTable(str(self.quarantine))
            .merge(batch, SAME_RECORD, source_alias="s", target_alias="t")
            .when_matched_delete()
            .execute()
        )

    def _merge(self, batch: pa.Table, replacing: bool, last: dict[tuple[int, int], int]) -> None:
        """Write the rows Silver keeps, committing the Bronze offsets read in the same
        commit: appended when Silver has no row of their ids, upserted when one
        (``replacing``) replaces the row of a copy at higher coordinates."""
        commit = CommitProperties(
            app_transactions=[
                Transaction(app_id("silver", self.topic, p, epoch), offset)
                for (epoch, p), offset in sorted(last.items())
            ]
        )
        if not DeltaTable.is_deltatable(str(self.events)) or not replacing:
            # An empty append too: it carries the offsets, so the next run does not
            # read these rows again.
            write_deltalake(str(self.events), batch, mode="append", commit_properties=commit)
            return
        if batch.num_rows:
            metrics = (
                DeltaTable(str(self.events))
                .merge(
                    batch,
                    "t.event_id = s.event_id",
                    source_alias="s",
                    target_alias="t",
                    commit_properties=commit,
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
            changed = sum(
                int(str(metrics.get(key, 0)))
                for key in ("num_target_rows_inserted", "num_target_rows_updated")
            )
            if changed:
                return
        # A MERGE that changes nothing commits nothing, progress included: an empty
        # append carries the offsets, so the next run does not read these rows again.
        write_deltalake(
            str(self.events), self.schema.empty_table(), mode="append", commit_properties=commit
        )


def _add_missing_columns(path: Path, schema: pa.Schema) -> list[pa.Field]:
    """Add to the table at ``path`` the columns of ``schema`` it lacks (the topic epoch
    filled with 0); those columns."""
    return add_missing_columns(path, schema)
