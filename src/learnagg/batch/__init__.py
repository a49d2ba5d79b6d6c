"""Batch jobs, one file per job: archival, score-metric migration, imports (SPEC §6)."""
