"""Benchmarks: run with `python -m bench` (they print numbers and ratios; tests never time)."""
