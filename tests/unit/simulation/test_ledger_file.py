"""The ledger file: written whole or not at all, beside itself (so the final rename
stays on one filesystem), into folders it makes, as indented JSON a reader reads back."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from producer.simulation.engine import Simulation
from producer.simulation.ledger import Ledger, read_ledger
from producer.simulation.scenario_file import load_scenario


def some_ledger() -> Ledger:
    ledger = Ledger(meta={"run_id": "r-ü"})
    ledger.record_many(Simulation(load_scenario("default"), 2).events(max_events=50))
    return ledger


def test_a_ledger_is_complete_unless_told(tmp_path: Path) -> None:
    ledger = some_ledger()
    ledger.write(tmp_path / "done.json")
    ledger.write(tmp_path / "cut.json", complete=False)
    assert read_ledger(tmp_path / "done.json")["complete"] is True
    assert read_ledger(tmp_path / "cut.json")["complete"] is False


def test_the_file_is_indented_json_read_back_as_written(tmp_path: Path) -> None:
    ledger = some_ledger()
    path = tmp_path / "ledger.json"
    ledger.write(path)
    assert path.read_text(encoding="utf-8") == json.dumps(ledger.to_json(), indent=2) + "\n"
    assert read_ledger(path) == json.loads(json.dumps(ledger.to_json()))
    assert read_ledger(path)["run_id"] == "r-ü"


def test_missing_folders_are_made(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.json"
    some_ledger().write(path)
    assert read_ledger(path)["total_events"] == 50


def test_the_file_is_written_beside_itself_not_in_the_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    path = tmp_path / "out" / "ledger.json"
    some_ledger().write(path)
    assert [p.name for p in path.parent.iterdir()] == ["ledger.json"]


def test_a_write_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    ledger = some_ledger()
    ledger.meta["not json"] = object()
    with pytest.raises(TypeError, match="is not JSON serializable"):
        ledger.write(tmp_path / "ledger.json")
    assert list(tmp_path.iterdir()) == []
