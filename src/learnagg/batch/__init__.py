"""Batch jobs, one file per job: archival, score-metric migration, imports (docs/batch.md)."""
