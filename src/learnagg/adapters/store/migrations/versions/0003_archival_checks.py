"""Archival checks: `archival_metadata.row_count` and `checksum`, and an index to read one batch-week at a time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Nullable: rows archived before this revision (or by the reference platform) have neither.
    op.add_column("archival_metadata", sa.Column("row_count", sa.BigInteger(), nullable=True))
    op.add_column("archival_metadata", sa.Column("checksum", sa.Text(), nullable=True))
    # Without it each (course, batch, week) read scans the whole batch, once per week (docs/batch.md#assessment-archival
    # partitions).
    op.create_index(
        "ix_assessment_aggregator_course_batch_updated_on",
        "assessment_aggregator",
        ["course_id", "batch_id", "updated_on"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_assessment_aggregator_course_batch_updated_on", table_name="assessment_aggregator")
    with op.batch_alter_table("archival_metadata") as batch:
        batch.drop_column("checksum")
        batch.drop_column("row_count")
