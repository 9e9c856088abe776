"""Silver's quality rules on one decoded record at a time: each rule passes the record
that meets it exactly and rejects, with its own message, the one that misses it by the
smallest step (a cent, a millisecond, another category). Pure logic: no broker, no
registry is asked (the job is built with an address nothing listens on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from consumers.arrow_types import RENAMED
from consumers.decode import Rejected
from consumers.silver import SilverJob, SilverStats, _bronze_where, _last_offsets

INGESTED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def job(tmp_path: Path) -> SilverJob:
    return SilverJob(tmp_path, {"url": "http://127.0.0.1:9"}, "events", currencies=("USD",))


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "event_type": "purchase",
        "product_id": "p-1",
        "category": "shoes",
        "brand": "acme",
        "quantity": 3,
        "price": Decimal("19.99"),
        "revenue": Decimal("59.97"),
        "currency": "USD",
        "timestamp": INGESTED - timedelta(seconds=5),
    }
    return {**base, **changes}


def reason(job: SilverJob, rec: dict[str, Any]) -> str | None:
    """Why ``rec`` is rejected (None: it passes), checked both ways Silver checks: the
    column-wise test picks it as a suspect exactly when the rule by rule check rejects
    it (for these records of ordinary sizes), and the latter says why."""
    suspect = suspected(job, rec)
    try:
        job._check(rec, INGESTED)
    except Rejected as exc:
        assert suspect, f"rejected ({exc}) but not a suspect of the column-wise test"
        return str(exc)
    assert not suspect, "passes the rules but is a suspect of the column-wise test"
    return None


def suspected(job: SilverJob, rec: dict[str, Any]) -> bool:
    """Whether ``rec``, as the one row of a decoded batch, is a suspect of the rules'
    column-wise test (a field ``rec`` lacks has the reader's default, as decoding
    gives it)."""
    defaults = {f["name"]: f["default"] for f in job.definition["fields"] if "default" in f}
    table = pa.Table.from_pylist([{**defaults, **rec}], schema=job._wide)
    table = table.rename_columns([RENAMED.get(n, n) for n in table.column_names])
    ingested = pa.array([INGESTED], pa.timestamp("us", tz="UTC"))
    return job._suspects(table.append_column("ingest_time", ingested)) == [0]


def test_a_purchase_whose_revenue_is_quantity_times_price_passes(job: SilverJob) -> None:
    assert reason(job, record()) is None


@pytest.mark.parametrize("revenue", ["59.96", "59.98", "19.99", "0.00"])
def test_a_purchase_off_by_a_cent_breaks_the_revenue_identity(job: SilverJob, revenue: str) -> None:
    assert reason(job, record(revenue=Decimal(revenue))) == (
        f"revenue identity: revenue {revenue} != 59.97 for a purchase of 3 x 19.99"
    )


@pytest.mark.parametrize("kind", ["view", "cart"])
def test_a_view_or_cart_carries_no_revenue(job: SilverJob, kind: str) -> None:
    assert reason(job, record(event_type=kind, revenue=Decimal("0.00"))) is None
    assert reason(job, record(event_type=kind, revenue=Decimal("59.97"))) == (
        f"revenue identity: revenue 59.97 != 0.00 for a {kind} of 3 x 19.99"
    )


@pytest.mark.parametrize("missing", ["product_id", "category"])
@pytest.mark.parametrize("empty", [None, ""])
def test_a_record_without_product_or_category_is_an_unknown_product(
    job: SilverJob, missing: str, empty: str | None
) -> None:
    assert reason(job, record(**{missing: empty})) == "unknown product: no product id or category"


def test_the_catalog_decides_product_category_and_brand(job: SilverJob) -> None:
    job._catalog = {"p-1": ("shoes", "acme"), "p-2": ("hats", None)}
    assert reason(job, record()) is None
    assert reason(job, record(product_id="p-2", category="hats", brand=None)) is None
    assert reason(job, record(product_id="p-3")) == "unknown product: p-3 is not in the catalog"
    assert reason(job, record(category="hats")) == (
        "unknown product: p-1 has category shoes in the catalog, not hats"
    )
    assert reason(job, record(brand="other")) == (
        "unknown product: p-1 has brand acme in the catalog, not other"
    )
    assert reason(job, record(product_id="p-2", category="hats", brand="acme")) == (
        "unknown product: p-2 has brand None in the catalog, not acme"
    )
    assert reason(job, record(brand=None)) == (
        "unknown product: p-1 has brand acme in the catalog, not None"
    )


def test_with_the_catalog_no_category_is_learnt_from_the_records(job: SilverJob) -> None:
    job._catalog = {"p-1": ("shoes", "acme")}
    assert reason(job, record()) is None
    assert job._categories == {}


def test_without_a_catalog_a_product_keeps_the_category_first_seen(job: SilverJob) -> None:
    assert reason(job, record()) is None
    assert reason(job, record(event_id="e-2", brand="any other")) is None
    assert reason(job, record(event_id="e-3", category="hats")) == (
        "unknown product: p-1 has category shoes, not hats"
    )
    assert reason(job, record(event_id="e-4", product_id="p-2", category="hats")) is None
    assert job._categories == {"p-1": "shoes", "p-2": "hats"}


def test_without_a_catalog_a_run_learns_each_products_first_category_from_silver(
    job: SilverJob,
) -> None:
    # Silver as a catalog changed under it may leave it: a product in two categories
    # (the first row's is the one a loop over the rows keeps).
    rows = [("p-1", "shoes"), ("p-2", "hats"), ("p-1", "bags"), ("p-3", "hats")]
    table = pa.table({"product_id": [p for p, _ in rows], "category": [c for _, c in rows]})
    write_deltalake(str(job.events), table)
    job._load_categories()
    assert job._categories == {"p-1": "shoes", "p-2": "hats", "p-3": "hats"}
    assert reason(job, record(category="bags")) == (
        "unknown product: p-1 has category shoes, not bags"
    )


def test_money_in_another_currency_is_refused_naming_the_shop_currencies(tmp_path: Path) -> None:
    job = SilverJob(tmp_path, {"url": "http://127.0.0.1:9"}, "events", currencies=("USD", "EUR"))
    assert reason(job, record(currency="EUR")) is None
    assert reason(job, record(currency="GBP")) == (
        "foreign currency: GBP (the shop prices in USD, EUR)"
    )


def test_a_record_of_a_writer_without_currency_is_in_dollars(tmp_path: Path) -> None:
    rec = record()
    del rec["currency"]
    assert (
        reason(SilverJob(tmp_path, {"url": "http://127.0.0.1:9"}, "t", currencies=("USD",)), rec)
        is None
    )
    assert reason(
        SilverJob(tmp_path, {"url": "http://127.0.0.1:9"}, "t", currencies=("EUR",)), rec
    ) == ("foreign currency: USD (the shop prices in EUR)")


def test_event_time_from_2000_to_thirty_days_after_ingestion(job: SilverJob) -> None:
    earliest = datetime(2000, 1, 1, tzinfo=UTC)
    latest = INGESTED + timedelta(days=30)
    ms = timedelta(milliseconds=1)
    assert reason(job, record(timestamp=earliest)) is None
    assert reason(job, record(timestamp=latest)) is None
    assert reason(job, record(timestamp=earliest - ms)) == (
        f"time out of range: {(earliest - ms).isoformat()}"
    )
    assert reason(job, record(timestamp=latest + ms)) == (
        f"time out of range: {(latest + ms).isoformat()}"
    )


def test_the_rules_are_checked_in_order_revenue_first(job: SilverJob) -> None:
    job._catalog = {"p-1": ("shoes", "acme")}
    bad_everything = record(
        revenue=Decimal("1.00"),
        product_id="p-9",
        currency="GBP",
        timestamp=datetime(1999, 1, 1, tzinfo=UTC),
    )
    assert reason(job, bad_everything) == (
        "revenue identity: revenue 1.00 != 59.97 for a purchase of 3 x 19.99"
    )
    assert reason(job, record(product_id="p-9", currency="GBP")) == (
        "unknown product: p-9 is not in the catalog"
    )
    too_late = INGESTED + timedelta(days=31)
    assert reason(job, record(currency="GBP", timestamp=too_late)) == (
        "foreign currency: GBP (the shop prices in USD)"
    )


def test_stats_count_reasons_by_their_kind() -> None:
    stats = SilverStats()
    stats.count("unknown product: p-3 is not in the catalog")
    stats.count("unknown product: no product id or category")
    stats.count("conflict")
    assert stats.reasons == {"unknown product": 2, "conflict": 1}


def test_bronze_coordinates_put_the_epoch_second_and_read_none_as_zero() -> None:
    row = {"topic": "t", "topic_epoch": 2, "partition": 3, "offset": 41}
    assert _bronze_where(row) == ("t", 2, 3, 41)
    assert _bronze_where({**row, "topic_epoch": None}) == ("t", 0, 3, 41)
    assert _bronze_where({"topic": "t", "partition": 3, "offset": 41}) == ("t", 0, 3, 41)


def test_the_last_offset_of_each_epoch_and_partition() -> None:
    rows = pa.table(
        {
            "topic_epoch": pa.array([0, 0, 0, 1, None, 1, 0], pa.int32()),
            "partition": pa.array([0, 0, 1, 0, 1, 0, 2], pa.int32()),
            "offset": pa.array([7, 3, 0, 2, 5, 1, 0], pa.int64()),
        }
    )
    assert _last_offsets(rows) == {(0, 0): 7, (0, 1): 5, (1, 0): 2, (0, 2): 0}
