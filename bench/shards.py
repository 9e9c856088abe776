"""Shards against one process, side by side: ``python -m bench shards``.

Runs the whole ``flashsale`` commands, start-up included, as a user runs them: one
process for the run, then two ``--shards 2`` processes started together (one per
core, with nothing pinned), and prints the events per second of each side (all
events over the wall time from the first start to the last end) and their ratio. It
does so twice: ``simulate`` into Avro files (the simulator and the serializer, no
broker) and ``produce`` into a local stack (whose broker shares the two cores). Each
side's total must equal the sum of its ledgers (what the sink or the broker
confirmed); otherwise the bench stops. (That shards add up to what a consumer reads
from the topic is the integration test's part: tests/integration/test_shards.py.)

Beside the wall-clock ratio it prints each process's CPU seconds (the ratio of one
process's to the slowest shard's is what the shards would give with a core each and
nothing else running), and, first, what this machine gives for two processes of pure
simulation against one: on shared cores the wall-clock ratio cannot pass that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.produce import machine_scaling
from bench.stack import bench_stack

SCENARIO = "default"


def _commands(
    command: str, events: int, shards: int, folder: Path, extra: list[str]
) -> list[list[str]]:
    run_id = f"bench-{command}-{shards}-{time.monotonic_ns()}"
    out = []
    for shard in range(shards):
        args = [sys.executable, "-m", "producer.cli", command, "--scenario", SCENARIO]
        args += ["--events", str(events), "--run-id", run_id]
        args += ["--ledger", str(folder / f"{run_id}-{shard}.json"), *extra]
        if shards > 1:
            args += ["--shards", str(shards), "--shard", str(shard)]
        if command == "simulate":
            args += ["--out", str(folder / f"{run_id}-{shard}.avro"), "--quiet"]
        out.append(args)
    return out


def _side(
    command: str, events: int, shards: int, folder: Path, extra: list[str], env: dict[str, str]
) -> tuple[float, list[float]]:
    """(events/s of the side, each process's CPU seconds, user and system)."""
    commands = _commands(command, events, shards, folder, extra)
    started = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL) for c in commands]
    # wait4 reaps each process with its own resource usage.
    usage = {p.pid: os.wait4(p.pid, 0) for p in procs}
    elapsed = time.perf_counter() - started
    codes = [os.waitstatus_to_exitcode(usage[p.pid][1]) for p in procs]
    assert codes == [0] * shards, f"exit codes {codes}"
    ledgers = [json.loads(Path(c[c.index("--ledger") + 1]).read_text()) for c in commands]
    totals = [int(ledger["total_events"]) for ledger in ledgers]
    assert sum(totals) == events, f"ledgers hold {totals}, not {events} events in all"
    cpu = [usage[p.pid][2].ru_utime + usage[p.pid][2].ru_stime for p in procs]
    return events / elapsed, cpu


def _compare(
    name: str,
    command: str,
    events: int,
    repeats: int,
    folder: Path,
    extra: list[str],
    env: dict[str, str],
) -> None:
    best: dict[int, tuple[float, list[float]]] = {1: (0.0, []), 2: (0.0, [])}
    for _ in range(repeats):
        for shards in (1, 2):  # in turns, so both sides see the machine alike
            best[shards] = max(best[shards], _side(command, events, shards, folder, extra, env))
    (one, one_cpu), (two, two_cpu) = best[1], best[2]
    print(f"  {name}, 1 process                {one:>10,.0f} events/s")
    print(
        f"  {name}, 2 --shards processes     {two:>10,.0f} events/s"
        f" ({two / one:.2f}x); each side's ledgers add up to its {events:,} events"
    )
    # With a core of its own for each shard, the wall time would be the slowest shard's CPU.
    print(
        f"  {name}, CPU seconds: 1 process {one_cpu[0]:.1f}; shards "
        + " and ".join(f"{c:.1f}" for c in two_cpu)
        + f" ({one_cpu[0] / max(two_cpu):.2f}x one process's, over the slowest shard)"
    )


def run(events: int, repeats: int) -> None:
    cores = len(os.sched_getaffinity(0))
    print(
        f"shards: {events:,} events of '{SCENARIO}' per side, best of {repeats}, "
        f"whole commands incl. start-up, {cores} cores (shared: figures vary with load)"
    )
    machine = machine_scaling(max(events, 1_000_000), repeats)
    print(f"  this machine: two processes of pure simulation {machine:.2f}x one")
    with tempfile.TemporaryDirectory() as tmp:
        _compare("simulate", "simulate", events, repeats, Path(tmp), [], dict(os.environ))
    topic = "bench-shards"
    with bench_stack(topic) as (stack, config, tmp_path):
        stack.ensure_topic(topic, 6)
        env = {
            **os.environ,
            "FLASHSALE_BOOTSTRAP_SERVERS": config.bootstrap_servers,
            "FLASHSALE_SCHEMA_REGISTRY_URL": config.registry_url,
        }
        extra = ["--max-rate", "--quiet", "--topic", topic, "--no-catalog"]
        _compare("produce ", "produce", events, repeats, tmp_path, extra, env)
