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
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka.schema_registry import SchemaRegistryClient
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from consumers.arrow_types import RENAMED, reader_arrow_schema
from consumers.bronze import BRONZE_SCHEMA, app_id
from consumers.decode import Decoder, Rejected
from consumers.errors import PipelineError
from consumers.evolve import add_missing_columns, arrow, read, read_matching
from consumers.evolve import rows as pylist
from consumers.identity import (
    COPIES_SCHEMA,
    SAME_RECORD,
    Coordinates,
    Copy,
    Decision,
    Identity,
    fingerprint,
    insert_new,
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


_COORDINATE_NAMES = [f.name for f in COORDINATES]


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
    last: dict[tuple[int, int], int] = {}
    for row in rows.select(["topic_epoch", "partition", "offset"]).to_pylist():
        key = (row["topic_epoch"] or 0, row["partition"])
        last[key] = max(last.get(key, -1), row["offset"])
    return last


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
        quarantined."""
        self._refuse_unreadable(
            [i for i in pc.unique(rows["schema_id"]).to_pylist() if i is not None]
        )
        candidates: dict[Coordinates, dict[str, Any]] = {}
        copies: list[Copy] = []
        bad: list[dict[str, Any]] = []
        for row in pylist(rows):
            origin = coordinates(row)
            try:
                record = self.decoder.decode(row["value"], value_headers(row))
                self._check(record, row["ingest_time"])
            except Rejected as exc:
                stats.count(str(exc))
                bad.append(quarantined(origin, row["value"], str(exc)))
                continue
            where = _bronze_where(row)
            candidates[where] = {**self._row(record), **origin, "_raw": row["value"]}
            content = fingerprint(row["value"], value_headers(row), self._schema_id_of)
            copies.append(Copy(record["event_id"], content, where))
        decision = self.copies.record(copies)
        conflicts = self._conflicts(decision, candidates)
        for _ in conflicts:
            stats.count("conflict")
        if bad or conflicts:
            self._quarantine(bad + conflicts, replace=last is None)
            stats.quarantined += len(bad) + len(conflicts)
        self._withdraw(decision.conflicting)
        kept = self._kept(decision)
        winners = [
            {k: v for k, v in candidates[where].items() if k != "_raw"}
            for event_id, where in sorted(decision.keep.items())
            if where in candidates and kept.get(event_id) != where
        ]
        inserted = sum(1 for r in winners if r["event_id"] not in kept)
        stats.inserted += inserted
        self._merge(winners, kept, last or {})
        in_batch_conflicts = sum(1 for c in copies if c.event_id in decision.conflicting)
        stats.duplicates += len(copies) - inserted - in_batch_conflicts
        return {where_of(r) for r in bad + conflicts}

    def _conflicts(
        self, decision: Decision, candidates: dict[Coordinates, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Every copy of every conflicting id, as quarantine rows (raw bytes from this
        batch, or from Bronze for copies of earlier runs)."""
        wanted = [c for i in sorted(decision.conflicting) for c in decision.copies[i]]
        older = {c.where for c in wanted if c.where not in candidates}
        bronze = self._bronze_rows(older) if older else {}
        out = []
        for c in wanted:
            reason = f"conflict: event {c.event_id} has copies with other content"
            if c.where in candidates:
                row = candidates[c.where]
                origin = {k: row[k] for k in _COORDINATE_NAMES}
                out.append(quarantined(origin, row["_raw"], reason))
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

    def _kept(self, decision: Decision) -> dict[str, Coordinates]:
        """Where the Silver rows of the ids decided on came from."""
        if not DeltaTable.is_deltatable(str(self.events)):
            return {}
        ids = pa.array(sorted(decision.copies), pa.string())
        table = read_matching(self.events, ["event_id", *_WHERE], "event_id", ids)
        return {r["event_id"]: where_of(r) for r in table.to_pylist()}

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
        for product, category in zip(
            known["product_id"].to_pylist(), known["category"].to_pylist(), strict=True
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

    def _merge(
        self,
        rows: list[dict[str, Any]],
        kept: dict[str, Coordinates],
        last: dict[tuple[int, int], int],
    ) -> None:
        """Write the rows Silver keeps, committing the Bronze offsets read in the same
        commit: appended when Silver has no row of their id (``kept``, read just
        before), upserted when one replaces the row of a copy at higher coordinates."""
        batch = pa.Table.from_pylist(rows, schema=self.schema)
        commit = CommitProperties(
            app_transactions=[
                Transaction(app_id("silver", self.topic, p, epoch), offset)
                for (epoch, p), offset in sorted(last.items())
            ]
        )
        replacing = any(r["event_id"] in kept for r in rows)
        if not DeltaTable.is_deltatable(str(self.events)) or not replacing:
            # An empty append too: it carries the offsets, so the next run does not
            # read these rows again.
            write_deltalake(str(self.events), batch, mode="append", commit_properties=commit)
            return
        if rows:
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
