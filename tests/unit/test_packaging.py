"""The built wheel carries the contract, so an installed flashsale needs no checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from producer.contract.catalog import bundled_schemas_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_ships_the_schemas_and_uses_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("flashsale-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(n for n in archive.namelist() if n.startswith("producer/_schemas/"))
        archive.extractall(site)
    local = sorted(p.name for p in bundled_schemas_dir().glob("*"))
    assert shipped == [f"producer/_schemas/{name}" for name in local]
    for name in local:
        assert (site / "producer/_schemas" / name).read_bytes() == (
            bundled_schemas_dir() / name
        ).read_bytes()

    # Run the unpacked wheel from an empty folder, with no checkout on the path.
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("FLASHSALE_SCHEMAS_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "producer.cli", "schemas", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[0] == f"schemas in {site / 'producer' / '_schemas'}"
