"""The data-quality tally fed wrong data: one record moved to another minute of arrival,
to another fate (Silver, a quarantine reason, dropped as a duplicate), to another
lateness, or to another topic epoch changes exactly the cells it belongs to, and the
totals that should stay equal do.

The warehouse is built by hand (three small Delta tables), so that each record's fate
is chosen, and the same warehouse with one record changed is compared with it cell by
cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import CommitProperties, Transaction, write_deltalake

from consumers.bronze import BRONZE_SCHEMA, app_id
from consumers.quality import DataQuality, data_quality, quality_per_minute
from consumers.tables import QUARANTINE_SCHEMA

M0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
M1, M2, M3 = (M0 + timedelta(minutes=m) for m in (1, 2, 3))
FATES = ("events", "duplicates", "conflicts", "quarantined")
REASON = {"conflicts": "conflict: event id seen with another body", "quarantined": "bad header: x"}

BRONZE = pa.schema(
    [BRONZE_SCHEMA.field(n) for n in ("topic", "partition", "offset", "kafka_timestamp")]
    + [BRONZE_SCHEMA.field("topic_epoch")]
)
SILVER = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("kafka_topic", pa.string()),
        pa.field("kafka_partition", pa.int32()),
        pa.field("kafka_offset", pa.int64()),
        pa.field("event_time", pa.timestamp("ms", tz="UTC")),
        pa.field("kafka_topic_epoch", pa.int32()),
    ]
)


@dataclass(frozen=True)
class Record:
    """One Bronze record of topic ``t``, partition 0, and where it went."""

    offset: int
    at: datetime  # its Kafka timestamp: the minute of arrival
    fate: str  # one of FATES
    late: float = 2.0  # seconds between its event time and its arrival (events only)
    reason: str | None = None  # the quarantine reason, if not the fate's usual one
    silver_epoch: int = 0  # the topic epoch its Silver row names


def _base() -> list[Record]:
    """Minutes 09:00, 09:01 and 09:03 (09:02 has no record): in 09:00 four events late
    1, 2, 2 and 3 s (p50 2 s, p99 3 s) and one record of each other fate; in 09:01 two
    events late 2 s and one of each other fate; in 09:03 one event; last, a duplicate
    that Silver has processed and a record it has not reached."""
    fates = [
        *(("events", M0, late) for late in (1.0, 2.0, 2.0, 3.0)),
        *((f, M0, 2.0) for f in FATES[1:]),
        *(("events", M1, 2.0) for _ in range(2)),
        *((f, M1, 2.0) for f in FATES[1:]),
        ("events", M3, 2.0),
        ("duplicates", M3, 2.0),
    ]
    return [
        Record(offset, at + timedelta(seconds=offset), fate, late)
        for offset, (fate, at, late) in enumerate(fates)
    ]


BASE = _base()
PROCESSED = BASE[-1].offset  # Silver committed up to here ...
UNPROCESSED = Record(PROCESSED + 1, M3 + timedelta(seconds=50), "duplicates")  # ... not this


def warehouse(path: Path, records: list[Record], committed: int = PROCESSED) -> Path:
    bronze, silver, quarantine = [], [], []
    for r in records:
        bronze.append(
            {"topic": "t", "partition": 0, "offset": r.offset, "kafka_timestamp": r.at,
             "topic_epoch": 0}
        )  # fmt: skip
        where = {"kafka_topic": "t", "kafka_partition": 0, "kafka_offset": r.offset}
        if r.fate == "events":
            event_time = r.at - timedelta(seconds=r.late)
            silver.append(
                {**where, "event_id": f"e{r.offset}", "event_time": event_time,
                 "kafka_topic_epoch": r.silver_epoch}
            )  # fmt: skip
        elif r.fate in REASON:
            reason = r.reason or REASON[r.fate]
            quarantine.append({**where, "kafka_topic_epoch": 0, "reason": reason})
    write_deltalake(str(path / "bronze" / "events"), pa.Table.from_pylist(bronze, BRONZE))
    write_deltalake(
        str(path / "silver" / "events"),
        pa.Table.from_pylist(silver, SILVER),
        commit_properties=CommitProperties(
            app_transactions=[Transaction(app_id("silver", "t", 0), committed)]
        ),
    )
    write_deltalake(
        str(path / "silver" / "quarantine"),
        pa.Table.from_pylist(quarantine, QUARANTINE_SCHEMA),
    )
    return path


def cells(table: pa.Table) -> dict[tuple[datetime, str], Any]:
    return {
        (row["minute"], column): value
        for row in table.to_pylist()
        for column, value in row.items()
        if column != "minute"
    }


def changed(before: pa.Table, after: pa.Table) -> dict[tuple[datetime, str], tuple[Any, Any]]:
    """Every cell that differs: (minute, column) -> (before, after); a minute only one
    side has counts as None on the other."""
    old, new = cells(before), cells(after)
    return {
        key: (old.get(key), new.get(key))
        for key in old.keys() | new.keys()
        if old.get(key) != new.get(key)
    }


def base_cell(base: pa.Table, minute: datetime, column: str) -> Any:
    return cells(base)[minute, column]


def totals(table: pa.Table) -> dict[str, int]:
    return {c: sum(table[c].to_pylist()) for c in ("records", *FATES)}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    path = tmp_path_factory.mktemp("base")
    return quality_per_minute(warehouse(path, [*BASE, UNPROCESSED]))


def quality_of(path: Path, records: list[Record], **kwargs: Any) -> pa.Table:
    return quality_per_minute(warehouse(path, records, **kwargs))


def changing(records: list[Record], offset: int, **change: Any) -> list[Record]:
    """``records`` with the one at ``offset`` changed."""
    assert any(r.offset == offset for r in records)
    return [replace(r, **change) if r.offset == offset else r for r in records]


def first(fate: str, minute: datetime, late: float = 2.0) -> int:
    """The offset of the first record of ``fate`` arriving in ``minute``, late ``late``."""
    return next(
        r.offset
        for r in BASE
        if r.fate == fate and r.at.replace(second=0) == minute and r.late == late
    )


def test_the_base_warehouse_is_tallied_as_built(base: pa.Table) -> None:
    # The reference the other tests change one record of: every fate counted in its
    # minute, the empty minute a zero row, the unprocessed record nowhere.
    rows = {r["minute"]: r for r in base.to_pylist()}
    assert rows == {
        M0: {"minute": M0, "records": 7, "events": 4, "duplicates": 1, "conflicts": 1,
             "quarantined": 1, "lateness_p50_s": 2.0, "lateness_p99_s": 3.0},
        M1: {"minute": M1, "records": 5, "events": 2, "duplicates": 1, "conflicts": 1,
             "quarantined": 1, "lateness_p50_s": 2.0, "lateness_p99_s": 2.0},
        M2: {"minute": M2, "records": 0, "events": 0, "duplicates": 0, "conflicts": 0,
             "quarantined": 0, "lateness_p50_s": None, "lateness_p99_s": None},
        M3: {"minute": M3, "records": 2, "events": 1, "duplicates": 1, "conflicts": 0,
             "quarantined": 0, "lateness_p50_s": 2.0, "lateness_p99_s": 2.0},
    }  # fmt: skip


@pytest.mark.parametrize("fate", FATES)
def test_a_record_moved_to_another_minute_moves_its_two_cells(
    base: pa.Table, tmp_path: Path, fate: str
) -> None:
    # The record arrives a minute later (its event too, so its lateness is the same):
    # its minute loses one record of its fate, the next gains one, nothing else moves.
    offset = first(fate, M0)
    moved = BASE[offset].at + timedelta(minutes=1)
    after = quality_of(tmp_path, [*changing(BASE, offset, at=moved), UNPROCESSED])
    assert changed(base, after) == {
        (M0, "records"): (7, 6),
        (M0, fate): (base_cell(base, M0, fate), base_cell(base, M0, fate) - 1),
        (M1, "records"): (5, 6),
        (M1, fate): (base_cell(base, M1, fate), base_cell(base, M1, fate) + 1),
    }
    assert totals(after) == totals(base)


def test_a_record_moved_into_an_empty_minute_fills_its_zero_row(
    base: pa.Table, tmp_path: Path
) -> None:
    offset = first("duplicates", M1)
    moved = BASE[offset].at + timedelta(minutes=1)
    after = quality_of(tmp_path, [*changing(BASE, offset, at=moved), UNPROCESSED])
    assert changed(base, after) == {
        (M1, "records"): (5, 4),
        (M1, "duplicates"): (1, 0),
        (M2, "records"): (0, 1),
        (M2, "duplicates"): (0, 1),
    }
    assert totals(after) == totals(base)


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s in FATES for t in FATES if s != t],
)
def test_a_record_given_another_fate_moves_one_count_between_two_cells(
    base: pa.Table, tmp_path: Path, source: str, target: str
) -> None:
    # Same record, same minute: counted under its new fate instead of its old one. An
    # event late 2 s leaves or joins a minute whose percentiles stay 2 s and 3 s.
    offset = first(source, M0)
    after = quality_of(tmp_path, [*changing(BASE, offset, fate=target), UNPROCESSED])
    assert changed(base, after) == {
        (M0, source): (base_cell(base, M0, source), base_cell(base, M0, source) - 1),
        (M0, target): (base_cell(base, M0, target), base_cell(base, M0, target) + 1),
    }
    assert totals(after)["records"] == totals(base)["records"]


def test_a_conflict_is_told_from_another_reason_by_its_prefix(
    base: pa.Table, tmp_path: Path
) -> None:
    # "conflict" anywhere but at the start is another reason.
    offset = first("conflicts", M1)
    after = quality_of(
        tmp_path,
        [*changing(BASE, offset, reason="bad header: not a conflict: x"), UNPROCESSED],
    )
    assert changed(base, after) == {(M1, "conflicts"): (1, 0), (M1, "quarantined"): (1, 2)}


@pytest.mark.parametrize(
    ("late", "new", "cell", "value"),
    [
        (3.0, 3.5, "lateness_p99_s", 3.5),  # the latest event, later still
        (2.0, 1.5, "lateness_p50_s", 1.5),  # the median's rank now holds 1.5 s
    ],
)
def test_an_event_of_another_lateness_changes_exactly_its_percentile(
    base: pa.Table, tmp_path: Path, late: float, new: float, cell: str, value: float
) -> None:
    offset = first("events", M0, late)
    after = quality_of(tmp_path, [*changing(BASE, offset, late=new), UNPROCESSED])
    assert changed(base, after) == {(M0, cell): (base_cell(base, M0, cell), value)}


def test_a_silver_row_of_another_topic_epoch_is_not_this_records_event(
    base: pa.Table, tmp_path: Path
) -> None:
    # The record of epoch 0 at this offset was not taken into Silver: dropped, as far
    # as this tally knows; the other epoch's row joins no Bronze record here.
    offset = first("events", M0)  # late 2 s: p50 and p99 stay
    after = quality_of(tmp_path, [*changing(BASE, offset, silver_epoch=1), UNPROCESSED])
    assert changed(base, after) == {(M0, "events"): (4, 3), (M0, "duplicates"): (1, 2)}


@pytest.mark.parametrize(
    ("committed", "expected"),
    [
        # One offset less: the last processed record (a duplicate of 09:03) is not yet.
        (PROCESSED - 1, {(M3, "records"): (2, 1), (M3, "duplicates"): (1, 0)}),
        # One more: the record Silver had not reached is counted, as a duplicate.
        (PROCESSED + 1, {(M3, "records"): (2, 3), (M3, "duplicates"): (1, 2)}),
    ],
)
def test_the_offset_silver_committed_decides_which_records_count(
    base: pa.Table,
    tmp_path: Path,
    committed: int,
    expected: dict[tuple[datetime, str], tuple[int, int]],
) -> None:
    after = quality_of(tmp_path, [*BASE, UNPROCESSED], committed=committed)
    assert changed(base, after) == expected


Change = Callable[[list[Record]], list[Record]]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda rs: changing(rs, first("quarantined", M0), reason="bad header: y"),
            {},
            id="another text of one reason",
        ),
        pytest.param(
            lambda rs: changing(rs, first("quarantined", M0), reason="not avro: y"),
            {
                "quarantined": (
                    {"bad header": 2, "conflict": 2},
                    {"bad header": 1, "conflict": 2, "not avro": 1},
                )
            },
            id="another reason",
        ),
        pytest.param(
            lambda rs: changing(rs, first("events", M1), fate="duplicates"),
            {"events": (7, 6), "duplicates": (3, 4)},
            id="an event dropped",
        ),
        pytest.param(
            lambda rs: changing(rs, first("duplicates", M1), fate="conflicts"),
            {
                "duplicates": (3, 2),
                "quarantined": ({"bad header": 2, "conflict": 2}, {"bad header": 2, "conflict": 3}),
            },
            id="a duplicate quarantined",
        ),
        pytest.param(
            lambda rs: changing(rs, first("events", M1), at=M3 + timedelta(seconds=30)),
            {},
            id="another minute",  # the totals do not see minutes
        ),
    ],
)
def test_the_totals_move_with_one_record(
    tmp_path: Path,
    change: Change,
    expected: dict[str, tuple[Any, Any]],
) -> None:
    # Every record processed (the totals do not look at Silver's offsets): one
    # duplicate in each minute but 09:02.
    before = data_quality(warehouse(tmp_path / "before", BASE))
    assert before == DataQuality(
        records=14, events=7, duplicates=3, quarantined={"bad header": 2, "conflict": 2}
    )
    after = data_quality(warehouse(tmp_path / "after", change(BASE)))
    differences = {
        name: (getattr(before, name), getattr(after, name))
        for name in ("records", "events", "duplicates", "quarantined")
        if getattr(before, name) != getattr(after, name)
    }
    assert differences == expected


def test_a_record_silver_has_not_read_is_pending_not_a_duplicate(tmp_path: Path) -> None:
    before = data_quality(warehouse(tmp_path / "before", BASE))
    after = data_quality(warehouse(tmp_path / "after", [*BASE, UNPROCESSED]))
    assert after == DataQuality(
        records=before.records + 1,
        events=before.events,
        duplicates=before.duplicates,
        quarantined=before.quarantined,
        pending=1,
    )
    assert "1 not yet read by Silver" in after.lines()[0]
    # Once Silver's committed offset covers it, it is counted by its fate.
    read = data_quality(
        warehouse(tmp_path / "read", [*BASE, UNPROCESSED], committed=UNPROCESSED.offset)
    )
    assert read.pending == 0
    assert read.records - read.events - sum(read.quarantined.values()) == read.duplicates
