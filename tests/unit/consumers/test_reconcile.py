"""Reconciliation reads Gold as it stands, and each wrong cell is named.

Gold is computed from a Silver table of simulated events and written as the pipeline
writes it; then one cell is broken on purpose and the verdict must name exactly it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner
from deltalake import DeltaTable

from consumers.errors import PipelineError
from consumers.gold import compute_kpis, read_gold, silver_version, write_gold
from consumers.reconcile import merge_ledgers, reconcile, spikes_of
from producer.cli import main


@pytest.fixture
def gold(warehouse: tuple[Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the warehouse with Gold written by the pipeline's own code."""
    source, ledger = warehouse
    path = tmp_path / "warehouse"
    shutil.copytree(source, path)
    version = silver_version(path)
    write_gold(path, compute_kpis(path, "datafusion", version), version)
    return path, ledger


def edit(path: Path, name: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Rewrite one Gold table with ``change`` applied to its rows, as if by hand, keeping
    the Silver version its commit records."""
    table = DeltaTable(str(path / "gold" / name))
    rows = table.to_pyarrow_table().to_pylist()
    change(rows)
    version = read_gold(path)[1]
    schema = table.schema().to_arrow()
    write_gold(path, {name: pa.Table.from_pylist(rows, schema=pa.schema(schema))}, version)


def differences(path: Path, ledger: dict[str, Any]) -> list[str]:
    return reconcile(merge_ledgers([ledger]), read_gold(path)[0])


def test_gold_written_by_the_pipeline_reconciles(gold: tuple[Path, dict[str, Any]]) -> None:
    path, ledger = gold
    assert differences(path, ledger) == []
    # Not vacuous: the ledger holds the sale, its funnel, its sell-outs and its surge.
    assert ledger["total_events"] > 50_000 and len(ledger["sold_out"]) > 5
    tables = read_gold(path)[0]
    assert any(r["is_spike"] for r in tables["spikes"].to_pylist())


BROKEN = {
    "one cent more revenue in a minute": (
        "revenue_per_minute",
        lambda rows: rows[3].update(revenue=rows[3]["revenue"] + Decimal("0.01")),
        r"revenue_per_minute: 2026-11-27T09:01:00Z revenue: ledger \S+, Gold \S+$",
    ),
    "a view more in a minute": (
        "revenue_per_minute",
        lambda rows: rows[0].update(views=rows[0]["views"] + 1),
        r"revenue_per_minute: 2026-11-27T08:58:00Z views: ledger \d+, Gold \d+$",
    ),
    "a conversion rate changed": (
        "funnel_per_minute",
        lambda rows: rows[5].update(view_to_cart=rows[5]["view_to_cart"] + 0.001),
        r"funnel_per_minute: 2026-11-27T09:03:00Z view_to_cart: ledger [\d.]+, Gold [\d.]+$",
    ),
    "a category's purchases off by one": (
        "funnel_per_category",
        lambda rows: rows[1].update(purchases=rows[1]["purchases"] - 1),
        r"funnel_per_category: \w+ purchases: ledger \d+, Gold \d+$",
    ),
    "a product relabelled": (
        "product_sales",
        lambda rows: rows[0].update(category="garden"),
        r"product_sales: \d+ category: ledger \w+, Gold garden$",
    ),
    "a product given another brand": (
        "product_funnel",
        lambda rows: rows[2].update(brand="Knockoff"),
        r"product_funnel: \d+ brand: ledger \w+, Gold Knockoff$",
    ),
    "a product's carts off by one": (
        "product_funnel",
        lambda rows: rows[7].update(carts=rows[7]["carts"] + 1),
        r"product_funnel: \d+ carts: ledger \d+, Gold \d+$",
    ),
    "a product no run sold": (
        "product_sales",
        lambda rows: rows.append({**rows[0], "product_id": "999999"}),
        r"product_sales: 999999 is in Gold but no ledger explains it$",
    ),
    "a sell-out dropped": (
        "sold_out",
        lambda rows: rows.pop(),
        r"sold_out: \d+ sold out at \S+, not in Gold$",
    ),
    "a sell-out a second late": (
        "sold_out",
        lambda rows: rows[0].update(sold_out_at=rows[0]["sold_out_at"].replace(second=59)),
        r"sold_out: \d+ sold_out_at: ledger \S+, Gold \S+$",
    ),
    "a quiet minute flagged as a spike": (
        "spikes",
        lambda rows: rows[1].update(is_spike=1),
        r"spikes: 2026-11-27T08:59:00Z is_spike: ledger 0, Gold 1$",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_one_broken_cell_is_one_named_difference(
    gold: tuple[Path, dict[str, Any]], case: str
) -> None:
    path, ledger = gold
    table, change, expected = BROKEN[case]
    edit(path, table, change)
    found = differences(path, ledger)
    assert len(found) == 1, found
    assert re.match(expected, found[0]), found[0]


def _at(row: dict[str, Any]) -> str:
    return row["minute"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00Z")


def _view_moved(rows: list[dict[str, Any]]) -> set[str]:
    early, late = rows[2], rows[6]
    early.update(views=early["views"] - 1, events=early["events"] - 1)
    late.update(views=late["views"] + 1, events=late["events"] + 1)
    return {f"{_at(r)} {c}" for r in (early, late) for c in ("views", "events")}


def _cart_as_purchase(rows: list[dict[str, Any]]) -> set[str]:
    row = rows[1]
    row.update(carts=row["carts"] - 1, purchases=row["purchases"] + 1)
    return {f"{row['category']} carts", f"{row['category']} purchases"}


def _categories_swapped(rows: list[dict[str, Any]]) -> set[str]:
    first = rows[0]
    other = next(r for r in rows if r["category"] != first["category"])
    first["category"], other["category"] = other["category"], first["category"]
    return {f"{first['product_id']} category", f"{other['product_id']} category"}


def _cent_moved(rows: list[dict[str, Any]]) -> set[str]:
    rows[3]["revenue"] += Decimal("0.01")
    rows[4]["revenue"] -= Decimal("0.01")
    return {f"{_at(rows[3])} revenue", f"{_at(rows[4])} revenue"}


# Wrong cells whose table totals stay equal: only a comparison cell by cell sees them.
TOTALS_KEPT = {
    "a view moved to another minute": ("revenue_per_minute", _view_moved, ("views", "events")),
    "a cart counted as a purchase": ("funnel_per_category", _cart_as_purchase, ("events",)),
    "a category swapped between two products": ("product_sales", _categories_swapped, ()),
    "a cent of revenue moved to another minute": ("revenue_per_minute", _cent_moved, ()),
}


@pytest.mark.parametrize("case", sorted(TOTALS_KEPT))
def test_a_wrong_cell_is_named_though_the_totals_agree(
    gold: tuple[Path, dict[str, Any]], case: str
) -> None:
    path, ledger = gold
    table, change, summed = TOTALS_KEPT[case]
    before = DeltaTable(str(path / "gold" / table)).to_pyarrow_table().to_pylist()
    broken: set[str] = set()

    def apply(rows: list[dict[str, Any]]) -> None:
        broken.update(change(rows))

    edit(path, table, apply)
    after = DeltaTable(str(path / "gold" / table)).to_pyarrow_table().to_pylist()
    for column in (*summed, "revenue"):  # the case is what it says: totals unchanged
        if column in after[0]:
            assert sum(r[column] for r in after) == sum(r[column] for r in before), column
    found = differences(path, ledger)
    # Each wrong cell is one difference naming its table, row and column; nothing else.
    assert len(found) == len(broken), found
    assert {f.split(": ", 1)[1].split(": ledger ")[0] for f in found} == broken, found
    assert all(f.startswith(f"{table}: ") for f in found), found


def test_the_spikes_are_recomputed_from_the_ledger() -> None:
    quiet, surge = [10] * 10, [100]
    *_, (baseline, z, flag) = spikes_of(quiet + surge)
    assert (baseline, z, flag) == (10.0, 90.0, 1)  # deviation 0: floored at 1
    assert spikes_of([5])[0][0] is None  # no history, no baseline


def test_ledgers_of_several_runs_add_up_and_a_replay_counts_once() -> None:
    def ledger(run: str, events: int) -> dict[str, Any]:
        tally = {"events": events, "view": events, "cart": 0, "purchase": 0, "units": 0,
                 "revenue": "0.00"}  # fmt: skip
        return {"run_id": run, "total_events": events, "total_revenue": "0.00",
                "by_minute": {"m": tally}, "by_category": {"c": tally},
                "by_product": {"p": tally}, "sold_out": {}}  # fmt: skip

    merged = merge_ledgers([ledger("a", 5), ledger("b", 7), ledger("a", 5)])
    assert merged["runs"] == ["a", "b"]
    assert merged["total_events"] == 12
    assert merged["by_minute"]["m"]["events"] == 12


def test_gold_of_two_silver_versions_is_refused(gold: tuple[Path, dict[str, Any]]) -> None:
    path, _ = gold
    version = read_gold(path)[1]
    stale = {"spikes": DeltaTable(str(path / "gold" / "spikes")).to_pyarrow_table()}
    write_gold(path, stale, version - 1 if version else version + 1)
    with pytest.raises(PipelineError, match="is not one snapshot of Silver"):
        read_gold(path)


def test_the_cli_names_a_cell_edited_by_hand(
    gold: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, ledger = gold
    ledger_path = tmp_path / "ledger.json"
    ledger_path.write_text(json.dumps(ledger))
    runner = CliRunner()
    args = ["kpis", "--warehouse", str(path), "--verify-ledger", str(ledger_path)]
    clean = runner.invoke(main, args)
    assert clean.exit_code == 0, clean.output
    assert "reconciled: every Gold table equals the ledger (" in clean.output
    edit(path, "revenue_per_minute",
         lambda rows: rows[2].update(revenue=rows[2]["revenue"] + Decimal("1000.00")))  # fmt: skip
    broken = runner.invoke(main, args)
    assert broken.exit_code == 1
    lines = [line for line in broken.output.splitlines() if line.startswith("DIFFERENCE")]
    assert len(lines) == 1
    assert lines[0].startswith("DIFFERENCE revenue_per_minute: 2026-11-27T09:00:00Z revenue: ")
    edit(path, "sold_out", lambda rows: rows.clear())
    emptied = runner.invoke(main, args)
    named = [line for line in emptied.output.splitlines() if "not in Gold" in line]
    assert len(named) == len(ledger["sold_out"]) > 0
