"""Benchmarks: ``make bench`` (all sections) or ``python -m bench <section> …``; results go to docs/benchmarks.md."""
