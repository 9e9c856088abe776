"""Gold's per-minute tables updated minute by minute give what a computation of the whole
of Silver gives, run after run, whatever changed: events appended, events arriving late
into old minutes, a conflicting event withdrawn (Silver's files rewritten), records
quarantined, a row replaced by a copy arriving later, duplicates dropped, quiet minutes
opening and closing gaps. And Gold is computed whole when the logs cannot say what
changed. Real Delta tables, committed as Silver's job commits them, and real engines."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.schema import Field, PrimitiveType

from consumers.arrow_types import RENAMED, reader_arrow_schema
from consumers.bronze import app_id
from consumers.gold import (
    BY_MINUTE,
    GOLD_TABLES,
    INPUTS,
    SUMS,
    SUMS_SCHEMA,
    SUMS_SQL,
    Refreshed,
    _computed,
    compute_kpis,
    gold_inputs,
    read_gold,
    refresh_gold,
    update_kpis,
)
from consumers.gold_changes import Unsure, changed_minutes
from consumers.products import ensure_products
from consumers.silver import CONTRACT, COORDINATES
from consumers.tables import QUARANTINE_SCHEMA
from producer.kafka.catalog import product_records
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario
from tests.unit.consumers.conftest import RAW

SILVER_SCHEMA = reader_arrow_schema(json.loads(CONTRACT.read_text()), COORDINATES)


@dataclass
class Warehouse:
    """A warehouse grown as the pipeline grows it: Bronze takes in records, then Silver
    takes each in (its row, with the Bronze offset committed), drops it as a duplicate
    or quarantines it."""

    path: Path
    offset: int = -1
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # Silver, by event id

    @property
    def silver(self) -> Path:
        return self.path / "silver" / "events"

    def arrive(
        self,
        events: list[dict[str, Any]],
        at: datetime | None = None,
        duplicates: int = 0,
        quarantined: int = 0,
    ) -> None:
        """``events`` (Silver rows without coordinates) reach Bronze, each 1.5 s after
        it happened or all ``at`` that moment; the first ``duplicates`` of them are sent
        again; the last ``quarantined`` are quarantined instead of entering Silver."""
        bronze, silver, bad = [], [], []
        sent = [*events, *events[:duplicates]]
        for i, event in enumerate(sent):
            self.offset += 1
            stamp = at or event["event_time"] + timedelta(seconds=1.5)
            where = {
                "kafka_topic": "t",
                "kafka_partition": 0,
                "kafka_offset": self.offset,
                "writer_schema_id": 1,
                "kafka_timestamp": stamp,
            }
            bronze.append({"topic": "t", "partition": 0, "offset": self.offset, **_ts(stamp)})
            if i >= len(events):
                continue  # a duplicate: dropped
            if i >= len(events) - quarantined:
                bad.append({**where, "raw_value": b"?", "reason": "foreign currency: EUR"})
            else:
                silver.append({**event, **where})
        write_deltalake(str(self.path / "bronze" / "events"), _bronze(bronze), mode="append")
        if bad:
            self.quarantine(bad)
        for row in silver:
            self.rows[row["event_id"]] = row
        write_deltalake(
            str(self.silver),
            pa.Table.from_pylist(silver, schema=SILVER_SCHEMA),
            mode="append",
            commit_properties=self._progress(),
        )

    def quarantine(self, rows: list[dict[str, Any]]) -> None:
        now = datetime.now(UTC)
        write_deltalake(
            str(self.path / "silver" / "quarantine"),
            pa.Table.from_pylist([{**r, "quarantined_at": now} for r in rows], QUARANTINE_SCHEMA),
            mode="append",
        )

    def withdraw(self, event_id: str) -> None:
        """A copy of ``event_id`` with other content arrived: Silver deletes the event
        (rewriting its files) and quarantines both copies."""
        row = self.rows.pop(event_id)
        DeltaTable(str(self.silver)).delete(f"event_id = '{event_id}'")
        self.offset += 1
        stamp = row["kafka_timestamp"] + timedelta(minutes=3)
        write_deltalake(
            str(self.path / "bronze" / "events"),
            _bronze([{"topic": "t", "partition": 0, "offset": self.offset, **_ts(stamp)}]),
            mode="append",
        )
        reason = f"conflict: event {event_id} has copies with other content"
        copy = {**_where(row), "kafka_offset": self.offset, "kafka_timestamp": stamp}
        self.quarantine(
            [
                {**_where(row), "raw_value": b"a", "reason": reason},
                {**copy, "raw_value": b"b", "reason": reason},
            ]
        )
        write_deltalake(
            str(self.silver),
            SILVER_SCHEMA.empty_table(),
            mode="append",
            commit_properties=self._progress(),
        )

    def replace(self, event_id: str, at: datetime) -> None:
        """A copy of ``event_id`` at higher coordinates, arrived ``at``, replaces its
        row (Silver's MERGE)."""
        self.offset += 1
        write_deltalake(
            str(self.path / "bronze" / "events"),
            _bronze([{"topic": "t", "partition": 0, "offset": self.offset, **_ts(at)}]),
            mode="append",
        )
        row = {**self.rows[event_id], "kafka_offset": self.offset, "kafka_timestamp": at}
        self.rows[event_id] = row
        (
            DeltaTable(str(self.silver))
            .merge(
                pa.Table.from_pylist([row], schema=SILVER_SCHEMA),
                "t.event_id = s.event_id",
                source_alias="s",
                target_alias="t",
                commit_properties=self._progress(),
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    def resend(self, count: int, at: datetime) -> None:
        """``count`` records already in Silver are sent again, arriving ``at``: Silver
        drops them all as duplicates, and commits only its progress."""
        stamps = [
            {"topic": "t", "partition": 0, "offset": self.offset + 1 + i} for i in range(count)
        ]
        self.offset += count
        write_deltalake(
            str(self.path / "bronze" / "events"),
            _bronze([{**r, **_ts(at)} for r in stamps]),
            mode="append",
        )
        write_deltalake(
            str(self.silver),
            SILVER_SCHEMA.empty_table(),
            mode="append",
            commit_properties=self._progress(),
        )

    def requarantine(self, reason: str) -> None:
        """A replay of the quarantine: every record there fails for ``reason`` now
        (a MERGE of the quarantine, and an empty commit of Silver's)."""
        quarantine = DeltaTable(str(self.path / "silver" / "quarantine"))
        (
            quarantine.merge(
                quarantine.to_pyarrow_table(),
                "t.kafka_offset = s.kafka_offset",
                source_alias="s",
                target_alias="t",
            )
            .when_matched_update({"reason": f"'{reason}'"})
            .execute()
        )
        write_deltalake(str(self.silver), SILVER_SCHEMA.empty_table(), mode="append")

    def _progress(self) -> CommitProperties:
        done = Transaction(app_id("silver", "t", 0), self.offset)
        return CommitProperties(app_transactions=[done])


def _ts(stamp: datetime) -> dict[str, Any]:
    return {"kafka_timestamp": stamp}


def _bronze(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=RAW)


def _where(row: dict[str, Any]) -> dict[str, Any]:
    names = ["kafka_topic", "kafka_partition", "kafka_offset", "writer_schema_id"]
    return {**{n: row[n] for n in names}, "kafka_timestamp": row["kafka_timestamp"]}


def sale(seconds: float, run_id: str = "minutes") -> tuple[list[dict[str, Any]], Simulation]:
    """A flash sale's first ``seconds`` of events, as Silver rows without coordinates."""
    simulation = Simulation(load_scenario("flash-sale"), 1, run_id=run_id)
    rows = []
    for event in simulation.events(max_seconds=seconds):
        datum = event.to_avro(3)
        datum["timestamp"] = datetime.fromtimestamp(event.timestamp_ms / 1000, tz=UTC)
        rows.append({RENAMED.get(k, k): v for k, v in datum.items()})
    return rows, simulation


def with_catalog(path: Path, simulation: Simulation) -> Warehouse:
    products = [
        {**r, "kafka_topic": "p", "kafka_partition": 0, "kafka_offset": i, "writer_schema_id": 2}
        for i, r in enumerate(product_records(simulation))
    ]
    write_deltalake(str(ensure_products(path)), pa.Table.from_pylist(products), mode="overwrite")
    return Warehouse(path)


def minute_of(row: dict[str, Any]) -> datetime:
    stamp: datetime = row["event_time"]
    return stamp.replace(second=0, microsecond=0)


def gold_is_whole_silver(warehouse: Path) -> None:
    """Gold as refreshed, returned and as stored, equals every table computed whole."""
    previous = _last(warehouse)
    version = DeltaTable(str(warehouse / "silver" / "events")).version()
    updated = update_kpis(warehouse, previous, version, gold_inputs(warehouse, version))
    assert updated is not None, "the update fell back to computing Gold whole"
    kpis, refreshed, how = refresh_gold(warehouse)
    assert how is Refreshed.UPDATED and refreshed == version
    whole = compute_kpis(warehouse, "datafusion", version)
    stored, built = read_gold(warehouse)
    assert built == version
    for name in GOLD_TABLES:
        assert updated[name].schema == whole[name].schema, name
        assert updated[name].to_pylist() == whole[name].to_pylist(), name
        assert kpis[name].to_pylist() == whole[name].to_pylist(), name
        assert stored[name].to_pylist() == whole[name].to_pylist(), name


def gold_is_computed_whole(warehouse: Path, previous: str | None = None) -> None:
    """Gold cannot be updated from the one computed from ``previous`` inputs (when
    given), and a refresh computes it whole: every table as :func:`compute_kpis` has it."""
    version = DeltaTable(str(warehouse / "silver" / "events")).version()
    if previous is not None:
        assert update_kpis(warehouse, previous, version, gold_inputs(warehouse, version)) is None
    kpis, _, how = refresh_gold(warehouse)
    assert how is Refreshed.WHOLE
    whole = compute_kpis(warehouse, "datafusion", version)
    for name in GOLD_TABLES:
        assert kpis[name].to_pylist() == whole[name].to_pylist(), name


def _last(warehouse: Path) -> str:
    values = {
        str(DeltaTable(str(warehouse / "gold" / n)).history(1)[0][INPUTS]) for n in GOLD_TABLES
    }
    assert len(values) == 1
    return values.pop()


def chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """``rows`` a minute of event time at a time."""
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or minute_of(rows[i]) != minute_of(rows[start]):
            yield rows[start:i]
            start = i


def test_per_minute_tables_updated_run_by_run_equal_gold_computed_whole(tmp_path: Path) -> None:
    rows, simulation = sale(420)
    minutes = list(chunks(rows))
    assert len(minutes) >= 7
    w = with_catalog(tmp_path, simulation)
    # Minute 0, but for a few events held back; Gold computed whole (there is none yet).
    late = minutes[0][-5:]
    w.arrive(minutes[0][:-5], duplicates=3)
    assert refresh_gold(tmp_path)[2] is Refreshed.WHOLE
    # Minute 1, with duplicates and quarantined records.
    w.arrive(minutes[1], duplicates=4, quarantined=6)
    gold_is_whole_silver(tmp_path)
    # The held-back events of minute 0 arrive during minute 2 (a late arrival changes
    # an old minute of event time and a new minute of arrival).
    arrival = minute_of(minutes[2][0]) + timedelta(seconds=30)
    w.arrive(late, at=arrival)
    w.arrive(minutes[2])
    gold_is_whole_silver(tmp_path)
    # Minutes 3 and 4 stay quiet; minute 5 opens a gap of zero rows.
    w.arrive(minutes[5][:40])
    gold_is_whole_silver(tmp_path)
    # A conflicting event of minute 1 is withdrawn (Silver's files are rewritten).
    w.withdraw(minutes[1][10]["event_id"])
    gold_is_whole_silver(tmp_path)
    # The gap closes: minutes 3 and 4 arrive, and the rest of minute 5.
    w.arrive(minutes[3] + minutes[4], duplicates=2, quarantined=3)
    w.arrive(minutes[5][40:])
    gold_is_whole_silver(tmp_path)
    # A copy arriving later replaces an event's row (Silver's MERGE).
    w.replace(minutes[2][3]["event_id"], minute_of(minutes[5][0]) + timedelta(seconds=20))
    gold_is_whole_silver(tmp_path)
    # Records already in Silver sent again, alone in a minute of arrival: duplicates.
    w.resend(7, minute_of(minutes[6][0]) + timedelta(seconds=5))
    gold_is_whole_silver(tmp_path)
    # A replay of the quarantine: its records fail for another reason now.
    w.requarantine("conflict: replayed")
    gold_is_whole_silver(tmp_path)
    # One event far ahead (a gap of zero rows), then withdrawn: the range shrinks back.
    ahead = {**minutes[6][0], "event_time": minute_of(minutes[6][0]) + timedelta(minutes=4)}
    w.arrive([ahead])
    gold_is_whole_silver(tmp_path)
    w.withdraw(ahead["event_id"])
    gold_is_whole_silver(tmp_path)
    # Nothing new: read, not computed.
    assert refresh_gold(tmp_path)[2] is Refreshed.UNCHANGED


def gold_of_a_first_minute(
    tmp_path: Path,
) -> tuple[Warehouse, list[list[dict[str, Any]]], str]:
    """A warehouse of a sale's first minute with its Gold: (it, the sale's minutes of
    rows, the inputs its Gold was computed from)."""
    rows, simulation = sale(150)
    minutes = list(chunks(rows))
    w = with_catalog(tmp_path, simulation)
    w.arrive(minutes[0])
    refresh_gold(tmp_path)
    return w, minutes, _last(tmp_path)


def test_gold_is_computed_whole_when_a_file_the_log_names_is_gone(tmp_path: Path) -> None:
    w, minutes, previous = gold_of_a_first_minute(tmp_path)
    w.withdraw(minutes[0][2]["event_id"])
    w.arrive(minutes[1])
    # The files the withdrawal rewrote are vacuumed: what was in them is unknown.
    DeltaTable(str(w.silver)).vacuum(
        retention_hours=0, dry_run=False, enforce_retention_duration=False
    )
    version = DeltaTable(str(w.silver)).version()
    with pytest.raises(Unsure, match="gone"):
        changed_minutes(tmp_path, int(previous.split(";")[0].split("=")[1]), version, 0, 1)
    gold_is_computed_whole(tmp_path, previous)
    # And from there, the next run is updated minute by minute again.
    w.arrive(minutes[2])
    gold_is_whole_silver(tmp_path)


def test_a_change_of_silver_schema_or_of_the_catalog_computes_gold_whole(tmp_path: Path) -> None:
    w, minutes, previous = gold_of_a_first_minute(tmp_path)
    w.arrive(minutes[1])
    DeltaTable(str(w.silver)).alter.add_columns([Field("note", PrimitiveType("string"))])
    version = DeltaTable(str(w.silver)).version()
    assert update_kpis(tmp_path, previous, version, gold_inputs(tmp_path, version)) is None
    refresh_gold(tmp_path)
    previous = _last(tmp_path)
    products = DeltaTable(str(ensure_products(tmp_path))).to_pyarrow_table()
    # The catalog published again as it was: nothing Gold reads changed.
    write_deltalake(str(ensure_products(tmp_path)), products, mode="overwrite")
    assert update_kpis(tmp_path, previous, version, gold_inputs(tmp_path, version)) is not None
    # A product in another category: every table that takes the catalog's changes.
    where = products.schema.get_field_index("category")
    moved = ["moved", *products["category"].to_pylist()[1:]]
    kind = products.schema.field("category").type
    moved_table = products.set_column(where, "category", pa.array(moved, kind))
    write_deltalake(str(ensure_products(tmp_path)), moved_table, mode="overwrite")
    assert update_kpis(tmp_path, previous, version, gold_inputs(tmp_path, version)) is None
    assert set(BY_MINUTE) < set(GOLD_TABLES)


def test_a_gold_without_partial_sums_or_with_others_is_computed_whole_once(
    tmp_path: Path,
) -> None:
    # A Gold written before the partial sums existed: the next change computes Gold
    # whole and stores the sums, and the run after is updated from them.
    w, minutes, previous = gold_of_a_first_minute(tmp_path)
    shutil.rmtree(tmp_path / "gold" / SUMS)
    w.arrive(minutes[1][:30])
    version = DeltaTable(str(w.silver)).version()
    assert update_kpis(tmp_path, previous, version, gold_inputs(tmp_path, version)) is None
    assert refresh_gold(tmp_path)[2] is Refreshed.WHOLE
    assert _last_sums(tmp_path) == _last(tmp_path)
    w.arrive(minutes[1][30:])
    gold_is_whole_silver(tmp_path)
    # Sums stored for other inputs (a run that stopped between them and Gold's
    # tables) are not those of Gold as it stands: Gold is computed whole.
    previous = _last(tmp_path)
    sums = DeltaTable(str(tmp_path / "gold" / SUMS)).to_pyarrow_table()
    other = CommitProperties(custom_metadata={INPUTS: "silver=0;from=another run"})
    write_deltalake(str(tmp_path / "gold" / SUMS), sums, mode="overwrite", commit_properties=other)
    w.arrive(minutes[2][:20])
    gold_is_computed_whole(tmp_path, previous)
    w.arrive(minutes[2][20:])
    gold_is_whole_silver(tmp_path)


def test_partial_sums_are_the_sums_of_silver_as_it_stands(tmp_path: Path) -> None:
    # After updates that added, withdrew and replaced rows, the sums stored equal
    # those computed from all of Silver.
    w, minutes, _ = gold_of_a_first_minute(tmp_path)
    w.arrive(minutes[1], duplicates=3, quarantined=2)
    gold_is_whole_silver(tmp_path)
    w.withdraw(minutes[0][4]["event_id"])
    w.replace(minutes[1][2]["event_id"], minute_of(minutes[1][0]) + timedelta(seconds=50))
    gold_is_whole_silver(tmp_path)
    version = DeltaTable(str(w.silver)).version()
    keys = [(c, "ascending") for c in SUMS_SCHEMA.names[:3]]
    stored = DeltaTable(str(tmp_path / "gold" / SUMS)).to_pyarrow_table().sort_by(keys)
    whole = _computed(tmp_path, "datafusion", version, {SUMS: SUMS_SQL})[SUMS]
    assert stored.to_pylist() == whole.cast(SUMS_SCHEMA).sort_by(keys).to_pylist()


def _last_sums(warehouse: Path) -> str:
    return str(DeltaTable(str(warehouse / "gold" / SUMS)).history(1)[0][INPUTS])


def test_silver_compacted_and_vacuumed_between_two_runs_gives_the_same_gold(
    tmp_path: Path,
) -> None:
    # Compaction moves rows without changing them (no minute, no sum changes), and
    # the vacuum after it takes the files of Silver's earlier version away: what
    # needs them (the sessions' earlier rows) is then computed whole.
    w, minutes, _ = gold_of_a_first_minute(tmp_path)
    w.arrive(minutes[1][:30])
    refresh_gold(tmp_path)
    DeltaTable(str(w.silver)).optimize.compact()
    DeltaTable(str(w.silver)).vacuum(
        retention_hours=0, dry_run=False, enforce_retention_duration=False
    )
    w.arrive(minutes[1][30:])
    gold_is_computed_whole(tmp_path)
