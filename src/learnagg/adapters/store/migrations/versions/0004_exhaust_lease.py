"""Exhaust runner: `job_request.lease_until` (a claim that ends, so a crashed run is resumed) and a pick index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Nullable: requests written before this revision (or by the reference platform) hold no claim.
    op.add_column("job_request", sa.Column("lease_until", sa.BigInteger(), nullable=True))
    op.create_index("ix_job_request_job_id_status", "job_request", ["job_id", "status"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_job_request_job_id_status", table_name="job_request")
    with op.batch_alter_table("job_request") as batch:
        batch.drop_column("lease_until")
