"""Partitioned topics and consumer leases on the embedded log (docs/scale-out.md).

`event_log.partition` and `consumer_offset.partition` (plus the lease columns `owner`, `lease_until`), the
`bus_topic` table (partition count per topic) and `consumer_member` (live workers per consumer group).

Existing data is upgraded in place: old events and offsets become partition 0, and every topic already in use is
fixed at one partition, so each stored offset keeps exactly its meaning. Topics first used after the upgrade get
`bus.partitions` partitions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("event_log", sa.Column("partition", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_event_log_topic_partition_seq", "event_log", ["topic", "partition", "seq"])
    with op.batch_alter_table("consumer_offset") as batch:
        batch.add_column(sa.Column("partition", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("owner", sa.Text(), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.BigInteger(), nullable=True))
        batch.drop_constraint("pk_consumer_offset", type_="primary")
        batch.create_primary_key("pk_consumer_offset", ["consumer", "topic", "partition"])
    op.create_table(
        "bus_topic",
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partitions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("topic", name=op.f("pk_bus_topic")),
    )
    op.create_table(
        "consumer_member",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "owner", name=op.f("pk_consumer_member")),
    )
    # Topics already in use keep one partition: their stored offsets keep their meaning.
    op.execute(
        "INSERT INTO bus_topic (topic, partitions) "
        "SELECT topic, 1 FROM (SELECT topic FROM event_log UNION SELECT topic FROM consumer_offset) AS used"
    )


def downgrade() -> None:
    """Revert this revision (only meaningful while every topic has one partition)."""
    op.drop_table("consumer_member")
    op.drop_table("bus_topic")
    with op.batch_alter_table("consumer_offset") as batch:
        batch.drop_constraint("pk_consumer_offset", type_="primary")
        batch.create_primary_key("pk_consumer_offset", ["consumer", "topic"])
        batch.drop_column("lease_until")
        batch.drop_column("owner")
        batch.drop_column("partition")
    op.drop_index("ix_event_log_topic_partition_seq", table_name="event_log")
    with op.batch_alter_table("event_log") as batch:
        batch.drop_column("partition")
