"""The built wheel carries the contract, so an installed flashsale needs no checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
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


@pytest.mark.slow
def test_the_sdist_builds_a_wheel_with_every_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (sdist,) = tmp_path.glob("flashsale-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for expected in (
        "producer/cli/__main__.py",
        "producer/simulation/scenarios/flash-sale.yaml",
        "consumers/gold_sql/revenue_per_minute.sql",
        "consumers/contracts/silver.avsc",
        "devstack/registry/app.py",
        "schemas/flash_sale_event-v1.avsc",
        "tests/conftest.py",
    ):
        assert expected in names, expected

    # Installed from the sdist alone (a wheel built from it), run from an empty folder.
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(sdist),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("FLASHSALE_SCHEMAS_DIR", None)
    empty = tmp_path / "empty"
    empty.mkdir()

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, *args], cwd=empty, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    located = run("-c", "import consumers.pipeline, devstack.registry, producer.cli as c; "
                  "print(c.__file__)")  # fmt: skip
    assert located.strip() == str(site / "producer" / "cli" / "__init__.py")
    listed = run("-m", "producer.cli", "schemas", "list")
    assert listed.splitlines()[0] == f"schemas in {site / 'producer' / '_schemas'}"
    verified = run("-m", "producer.cli", "contract", "verify")  # readers from consumers/
    assert verified.splitlines()[-1] == "all pairs pass (6 pairs)"
