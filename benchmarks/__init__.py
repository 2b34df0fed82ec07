"""asv benchmarks (``bench_*.py``) and stand-alone measurement scripts."""
