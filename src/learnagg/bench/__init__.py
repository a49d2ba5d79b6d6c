"""Benchmarks, demo data and the private PostgreSQL / Redis servers used by tests and benchmarks."""
