"""`activity_agg`: per course batch enrolled, completed and completion percentage (docs/api.md "activity_agg").

The table starts empty; `learnagg migrate activity-agg` builds it from `user_enrolments` for existing data.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "activity_agg",
        sa.Column("activity_type", sa.Text(), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("context_id", sa.Text(), nullable=False),
        sa.Column("agg", _JSON, nullable=True),
        sa.Column("agg_last_updated", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("activity_type", "activity_id", "context_id", name="pk_activity_agg"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("activity_agg")
