"""`flashsale scenarios` and `flashsale simulate` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest
from click.testing import CliRunner

from producer.cli import main
from producer.simulation.scenario_file import parse_scenario


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_scenarios_list_and_show() -> None:
    code, out = run("scenarios", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["name", "default", "flash-sale"]
    code, out = run("scenarios", "show", "flash-sale")
    assert code == 0
    assert parse_scenario(out, "shown").name == "flash-sale"
    code, out = run("scenarios", "show", "nope")
    assert (code, out) == (
        2,
        "Error: no built-in scenario 'nope' (built-ins: default, flash-sale)\n",
    )


def test_simulate_jsonl_renders_decimals_and_time_faithfully(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    code, text = run(
        "simulate",
        "--scenario",
        "flash-sale",
        "--seed",
        "4",
        "--duration",
        "200s",
        "--out",
        str(out),
        "--ledger",
        str(tmp_path / "l.json"),
    )
    assert code == 0, text
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert text.startswith(f"{len(lines)} events (200 simulated seconds of flash-sale, seed 4")
    purchase = next(r for r in lines if r["event_type"] == "purchase")
    assert isinstance(purchase["price"], str) and isinstance(purchase["revenue"], str)
    assert Decimal(purchase["revenue"]) == purchase["quantity"] * Decimal(purchase["price"])
    assert lines[0]["timestamp"] == "2026-11-27T08:58:00.000Z"
    ledger = json.loads((tmp_path / "l.json").read_text())
    assert ledger["total_events"] == len(lines)
    assert {
        "total_events",
        "total_revenue",
        "by_event_type",
        "by_minute",
        "by_category",
        "by_product",
    } <= set(ledger)


def test_simulate_avro_is_a_container_file_with_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "events.avro"
    code, text = run("simulate", "--events", "500", "--schema-version", "1", "--out", str(out))
    assert code == 0, text
    with out.open("rb") as f:
        reader = fastavro.reader(f)
        records = list(reader)
        assert reader.writer_schema["name"] == "io.flashsale.events.FlashSaleEvent"
        assert "session_id" not in {f["name"] for f in reader.writer_schema["fields"]}
    assert len(records) == 500


def test_the_same_run_writes_the_same_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.avro", tmp_path / "b.avro"
    for out in (a, b):
        assert (
            run(
                "simulate",
                "--scenario",
                "flash-sale",
                "--seed",
                "8",
                "--events",
                "3000",
                "--run-id",
                "same-run",
                "--out",
                str(out),
            )[0]
            == 0
        )
    assert a.read_bytes() == b.read_bytes()


def test_the_same_run_writes_the_same_file_in_any_process(tmp_path: Path) -> None:
    # Each process hashes strings with its own seed; the file must not depend on it
    # (the header once held the parsed schema, whose key order did).
    outs = []
    for hash_seed in ("1", "2", "3"):
        out = tmp_path / f"run-{hash_seed}.avro"
        args = ["simulate", "--events", "300", "--run-id", "same-run", "--out", str(out)]
        subprocess.run(
            [sys.executable, "-m", "producer.cli", *args],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--out", "x.jsonl"),
            "Error: scenario default runs forever: give --events N or --duration 600s\n",
        ),
        (
            ("--events", "5", "--out", "x.csv"),
            "Error: --out x.csv: the file must end in .avro or .jsonl\n",
        ),
        (
            ("--events", "5", "--out", "/no/such/dir/x.jsonl"),
            "Error: --out /no/such/dir/x.jsonl: cannot write: No such file or directory\n",
        ),
        (
            ("--events", "5", "--schema-version", "7", "--out", "x.jsonl"),
            "Error: --schema-version: must be one of [1, 2, 3], got 7\n",
        ),
        (
            (
                "--events",
                "5",
                "--workers",
                "2",
                "--worker",
                "2",
                "--run-id",
                "r",
                "--out",
                "x.jsonl",
            ),
            "Error: --worker: must be between 0 and 1, got 2\n",
        ),
        (
            ("--events", "5", "--workers", "2", "--out", "x.jsonl"),
            "Error: --workers: give every worker the same --run-id, so that together they are "
            "one run (see 'main simulate --help')\n",
        ),
        (
            ("--events", "5", "--shards", "2", "--shard", "2", "--run-id", "r", "--out", "x.jsonl"),
            "Error: --shard 2 is out of range: --shards 2 has shards 0 to 1 "
            "(see 'main simulate --help')\n",
        ),
        (
            ("--events", "5", "--shards", "0", "--out", "x.jsonl"),
            "Error: Invalid value for '--shards': 0 is not in the range x>=1. "
            "(see 'main simulate --help')\n",
        ),
        (
            (
                "--events",
                "5",
                "--shards",
                "2",
                "--workers",
                "2",
                "--run-id",
                "r",
                "--out",
                "x.jsonl",
            ),
            "Error: --shards and --workers do not combine: shards split the run, workers split "
            "one exact run; choose one (see 'main simulate --help')\n",
        ),
        (
            ("--events", "5", "--shards", "2", "--out", "x.jsonl"),
            "Error: --shards: give every shard the same --run-id, so that together they are "
            "one run (see 'main simulate --help')\n",
        ),
        (
            ("--events", "5", "--run-id", "no spaces", "--out", "x.jsonl"),
            "Error: --run-id no spaces: must be 1-64 letters, digits or ._:- (starting with one "
            "of the first)\n",
        ),
        (
            ("--duration", "soon", "--out", "x.jsonl"),
            "Error: Invalid value for '--duration': "
            "expected a duration like 90s or 10m, got 'soon' (see 'main simulate --help')\n",
        ),
    ],
)
def test_bad_options_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run("simulate", *args)
    assert (code, out) == (2, message)  # every one is a usage mistake
    assert not (tmp_path / "x.jsonl").exists()  # refused before anything was written


@pytest.mark.slow
def test_four_worker_processes_emit_exactly_the_single_process_events(tmp_path: Path) -> None:
    def simulate(out: Path, *extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "producer.cli",
                "simulate",
                "--scenario",
                "flash-sale",
                "--seed",
                "21",
                "--events",
                "40000",
                "--run-id",
                "split",
                "--out",
                str(out),
                *extra,
            ]
        )

    whole = tmp_path / "whole.avro"
    parts = [tmp_path / f"part{i}.avro" for i in range(4)]
    procs = [simulate(whole)] + [
        simulate(p, "--workers", "4", "--worker", str(i)) for i, p in enumerate(parts)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 5

    def records(path: Path) -> list[str]:
        with path.open("rb") as f:
            return [json.dumps(r, default=str, sort_keys=True) for r in fastavro.reader(f)]

    single = records(whole)
    combined = [r for p in parts for r in records(p)]
    assert len(single) == 40000
    assert sorted(combined) == sorted(single)


def test_every_run_has_a_run_id_printed_and_kept_in_the_ledger(tmp_path: Path) -> None:
    ids = []
    for name, extra in (("a", ()), ("b", ()), ("c", ("--run-id", "sale-7"))):
        ledger = tmp_path / f"{name}.json"
        code, out = run("simulate", "--events", "10", "--out", str(tmp_path / f"{name}.jsonl"),
                        "--ledger", str(ledger), *extra)  # fmt: skip
        assert code == 0, out
        run_id = json.loads(ledger.read_text())["run_id"]
        assert f", run {run_id}) -> " in out
        ids.append(run_id)
    assert ids[0] != ids[1] and ids[2] == "sale-7"
    first_ids = {json.loads(line)["event_id"] for line in (tmp_path / "a.jsonl").open()}
    second_ids = {json.loads(line)["event_id"] for line in (tmp_path / "b.jsonl").open()}
    assert len(first_ids) == 10 and not first_ids & second_ids


@pytest.mark.parametrize("command", ["simulate", "produce"])
def test_a_ledger_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, command: str
) -> None:
    # Before anything is sent or written: no host is contacted (none answers here).
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    ledger = a_file / "ledger.json"
    out = tmp_path / "run.jsonl"
    hosts = ["--bootstrap-servers", "127.0.0.1:9", "--schema-registry-url", "http://127.0.0.1:9"]
    args = ["--events", "10", "--ledger", str(ledger)]
    args += ["--out", str(out)] if command == "simulate" else hosts
    code, output = run(command, *args)
    assert (code, output) == (2, f"Error: --ledger {ledger}: cannot write: Not a directory\n")
    assert not out.exists()


def test_produce_refuses_a_bad_shard_before_reaching_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No broker or registry listens there: the usage error comes first.
    monkeypatch.setenv("FLASHSALE_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("FLASHSALE_SCHEMA_REGISTRY_URL", "http://127.0.0.1:1")
    ledger = tmp_path / "ledger.json"
    args = ("--events", "5", "--shards", "3", "--shard", "3", "--run-id", "r")
    code, out = run("produce", *args, "--ledger", str(ledger))
    assert (code, out) == (
        2,
        "Error: --shard 3 is out of range: --shards 3 has shards 0 to 2 "
        "(see 'main produce --help')\n",
    )
    assert not ledger.exists()


ZERO_FOREVER = """\
name: quiet
catalog: {products: 3, categories: {a: {price: [1, 2]}}}
users: {population: 5}
funnel: {cart_rate: 0.5, purchase_rate: 0.5}
timeline: [{phase: burst, duration: 2s, rate: 3}, {phase: nothing, rate: %s}]
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "rate", ["0", "{band: [0, 0]}", "{decay: {from: 9, to: 0, half_life: 1s}}"]
)
def test_a_timeline_that_falls_silent_for_good_ends_instead_of_hanging(
    tmp_path: Path, rate: str
) -> None:
    scenario = tmp_path / "quiet.yaml"
    scenario.write_text(ZERO_FOREVER % rate)
    out = tmp_path / "o.jsonl"
    code, text = run("simulate", "--scenario", str(scenario), "--events", "1000", "--out", str(out))
    assert code == 0, text
    assert 6 <= len(out.read_text().splitlines()) < 1000


PEAK = "scales the peak rate beyond any count"
YEARS = "must lie in the years 1970-8999, got '{}' (or now, or scenario)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rate-multiplier", "inf"), f"--rate-multiplier inf: {PEAK}"),
        (("--rate-multiplier", "1e308"), f"--rate-multiplier 1e+308: {PEAK}"),
        (("--start", "0001-01-01T00:00:00+14:00"),
         "--start: " + YEARS.format("0001-01-01T00:00:00+14:00")),
        (("--start", "9999-12-31T23:59:59Z"), "--start: " + YEARS.format("9999-12-31T23:59:59Z")),
    ],
)  # fmt: skip
def test_numbers_beyond_what_a_record_holds_are_refused_before_the_run(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "o.jsonl"
    code, text = run("simulate", "--events", "5", *args, "--out", str(out))
    assert (code, text) == (2, f"Error: {message}\n")
    assert not out.exists()


def test_an_unknown_key_with_a_newline_stays_one_line(tmp_path: Path) -> None:
    # Found by tests/unit/cli/test_fuzz.py: the key was echoed raw, over two lines.
    scenario = tmp_path / "s.yaml"
    scenario.write_text('name: x\n"a\\nb": 1\n')
    code, out = run("simulate", "--scenario", str(scenario), "--events", "1", "--out", "o.jsonl")
    assert code == 2
    assert (
        out.startswith(f"Error: {scenario}: 'a\\nb': unknown key (known: ") and out.count("\n") == 1
    )
