"""Benchmark scripts, run from the repository root as modules (``python -m benchmarks.NAME``), so the tests'
scratch helpers they share are importable."""
