"""Local tables are read through pyarrow's own filesystem, so a process that read
them exits cleanly (delta-rs's Python filesystem sometimes left it aborting at exit)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.fs as pa_fs
from deltalake import DeltaTable

from consumers.evolve import arrow, local_files
from consumers.gold import GOLD_TABLES, refresh_gold
from tests.unit.consumers.conftest import silver_warehouse


def test_a_local_table_is_read_by_pyarrows_filesystem_with_the_same_rows(tmp_path: Path) -> None:
    silver_warehouse(tmp_path, seconds=120)
    table = DeltaTable(str(tmp_path / "silver" / "events"))
    files = local_files(table)
    assert isinstance(files, pa_fs.SubTreeFileSystem)
    assert files.base_path.rstrip("/") == str((tmp_path / "silver" / "events").resolve())
    assert arrow(table).equals(table.to_pyarrow_table())
    assert arrow(table, ["event_id"]).equals(table.to_pyarrow_table(columns=["event_id"]))


def test_a_process_that_read_gold_exits_cleanly_every_time(tmp_path: Path) -> None:
    # Reading Gold then exiting aborted (SIGABRT) most times through delta-rs's own
    # filesystem: several runs make a return of that all but certain to be seen.
    silver_warehouse(tmp_path, seconds=120)
    refresh_gold(tmp_path)
    script = (
        "import sys; from pathlib import Path; from consumers.gold import read_gold; "
        "print(len(read_gold(Path(sys.argv[1]))[0]))"
    )
    for _ in range(6):
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True
        )
        assert (done.returncode, done.stdout.strip()) == (0, str(len(GOLD_TABLES))), done.stderr
