"""Run the benchmarks: ``python -m bench [generation] [--events N]``.

``python -m bench mutation`` measures the mutation score instead (bench/mutation.py);
it is not one of the benchmarks run by default.

Each benchmark measures flashsale and its reference side by side in one run, on one
core, and prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from collections.abc import Callable

from bench.baseline import generate_event
from producer.simulation.engine import Simulation
from producer.simulation.scenario_file import load_scenario


def best_rate(run: Callable[[int], int], events: int, repeats: int) -> float:
    """Events per second of the fastest of ``repeats`` runs."""
    best = 0.0
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        done = run(events)
        elapsed = time.perf_counter() - started
        best = max(best, done / elapsed)
    return best


def baseline(events: int) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # datetime.utcnow
        for _ in range(events):
            generate_event()
    return events


def simulator(scenario: str) -> Callable[[int], int]:
    def run(events: int) -> int:
        count = 0
        for _ in Simulation(load_scenario(scenario), seed=1).events(max_events=events):
            count += 1
        return count

    return run


def generation(events: int, repeats: int) -> None:
    print(f"generation: {events:,} events, best of {repeats}, one core")
    reference = best_rate(baseline, events, repeats)
    print(f"  original script's generate_event   {reference:>12,.0f} events/s")
    for scenario in ("default", "flash-sale"):
        rate = best_rate(simulator(scenario), events, repeats)
        print(
            f"  flashsale simulator ({scenario:<10})  {rate:>12,.0f} events/s"
            f"   ratio {rate / reference:.2f}x"
        )


def produce(events: int, repeats: int) -> None:
    from bench.produce import run

    run(events, repeats)


def pipeline(events: int, repeats: int) -> None:
    from bench.pipeline import run

    del repeats  # one drain of the topic is the measurement
    run(events)


def shards(events: int, repeats: int) -> None:
    from bench.shards import run

    run(events, repeats)


def scale(events: int, repeats: int) -> None:
    from bench.scale import run

    del repeats  # each run changes the warehouse: it cannot be repeated alike
    run(events)


BENCHMARKS = {
    "generation": generation,
    "produce": produce,
    "pipeline": pipeline,
    "shards": shards,
    "scale": scale,
}


def main() -> None:
    if sys.argv[1:2] == ["mutation"]:
        from bench.mutation import main as mutation

        raise SystemExit(mutation(sys.argv[2:]))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of {', '.join(BENCHMARKS)}")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (known: {', '.join(BENCHMARKS)})")
    for name in args.names or BENCHMARKS:
        BENCHMARKS[name](args.events, args.repeats)


if __name__ == "__main__":
    main()
