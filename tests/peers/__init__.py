"""Real peer servers started as processes by the tests (and the benchmarks)."""
