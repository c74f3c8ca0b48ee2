"""Benchmarks (`make bench`) and the workloads they share with the tests."""
