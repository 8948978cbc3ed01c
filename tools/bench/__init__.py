"""Benchmarks on real servers with the plan's own configs: `python -m tools.bench`."""
