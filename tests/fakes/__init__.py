"""Local fake platform servers that speak the real wire protocols, for tests and benchmarks."""
