"""The outbox of emitted events and the applied `mid`s of each job (docs/scale-out.md "The outbox").

`outbox` holds the events a job emitted in its transaction until the relay moves them to the bus after commit;
`applied_mid` remembers the `mid`s each job applied recently so that a repeated one is skipped. Both start empty:
existing events, offsets and leases are untouched.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("created_on", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_table(
        "applied_mid",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("mid", sa.Text(), nullable=False),
        sa.Column("applied_on", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "mid", name=op.f("pk_applied_mid")),
    )
    op.create_index("ix_applied_mid_consumer_applied_on", "applied_mid", ["consumer", "applied_on"])


def downgrade() -> None:
    """Revert this revision (rows still in the outbox are lost: relay them first)."""
    op.drop_index("ix_applied_mid_consumer_applied_on", table_name="applied_mid")
    op.drop_table("applied_mid")
    op.drop_table("outbox")
