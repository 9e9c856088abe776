"""`flashsale report` refuses bad input in one line, before any work."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from click.testing import CliRunner

from consumers.report import Verdict, verdicts
from producer.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["report", *args])
    return result.exit_code, result.output


def test_an_unwritable_out_is_refused_before_the_warehouse_is_read(tmp_path: Path) -> None:
    (tmp_path / "afile").touch()
    out = tmp_path / "afile" / "report.html"
    code, output = run("--warehouse", str(tmp_path / "none"), "--out", str(out))
    assert (code, output) == (2, f"Error: --out {out}: cannot write: Not a directory\n")


def test_a_missing_warehouse_or_gold_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, output = run("--warehouse", str(tmp_path / "none"), "--out", str(out))
    assert (code, output) == (
        1,
        f"Error: no warehouse at {tmp_path / 'none'}; run: flashsale pipeline run\n",
    )
    (tmp_path / "empty").mkdir()
    code, output = run("--warehouse", str(tmp_path / "empty"), "--out", str(out))
    assert (code, output) == (
        1,
        f"Error: no Gold table funnel_per_category in {tmp_path / 'empty'}; "
        "run: flashsale pipeline run\n",
    )
    assert not out.exists()


def test_an_unreadable_ledger_is_refused_before_the_warehouse_is_read(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.json"
    ledger.write_text("[]", encoding="utf-8")
    code, output = run("--warehouse", str(tmp_path / "none"), "--ledger", str(ledger),
                       "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert (code, output) == (
        2,
        f"Error: ledger {ledger}: not a ledger: the file holds no JSON object\n",
    )


def test_report_help_has_an_example() -> None:
    result = CliRunner().invoke(main, ["report", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "flashsale report --out report.html" in result.output


def test_each_table_has_its_verdict() -> None:
    gold = {name: pa.table({"x": [1]}) for name in ("spikes", "sold_out", "stock_tracking")}
    problems = ["spikes: 2026-11-27T09:00:00Z events: ledger 5, Gold 6", "spikes: x", "other: y"]
    assert verdicts(problems, gold) == [
        Verdict("sold_out", True),
        Verdict("spikes", False, tuple(problems[:2])),
        Verdict("stock_tracking", None),
    ]
