"""Batch leases: the `batch_lease` table (archival partitions claimed by one run at a time) and
`job_request.lease_owner` (the exhaust run holding a request), docs/batch.md.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "batch_lease",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_batch_lease")),
    )
    # Nullable: requests claimed before this revision carry no owner; their lease ends as before.
    op.add_column("job_request", sa.Column("lease_owner", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("job_request") as batch:
        batch.drop_column("lease_owner")
    op.drop_table("batch_lease")
