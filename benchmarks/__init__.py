"""Benchmarks printed by `make bench`; figures are recorded in docs/benchmarks.md."""
