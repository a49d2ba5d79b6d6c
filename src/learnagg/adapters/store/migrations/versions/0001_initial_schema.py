"""Initial schema: every logical table of docs/reference/data-model.md.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "archival_metadata",
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.Text(), nullable=True),
        sa.Column("collection_id", sa.Text(), nullable=True),
        sa.Column("resource_type", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Text(), nullable=True),
        sa.Column("archival_date", sa.BigInteger(), nullable=True),
        sa.Column("completion_date", sa.BigInteger(), nullable=True),
        sa.Column("archival_status", sa.Text(), nullable=True),
        sa.Column("deletion_status", sa.Text(), nullable=True),
        sa.Column(
            "blob_url",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column(
            "request_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("err_message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_archival_metadata")),
    )
    op.create_table(
        "assessment_aggregator",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("course_id", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.Text(), nullable=False),
        sa.Column("content_id", sa.Text(), nullable=False),
        sa.Column("attempt_id", sa.Text(), nullable=False),
        sa.Column("created_on", sa.BigInteger(), nullable=True),
        sa.Column("updated_on", sa.BigInteger(), nullable=True),
        sa.Column("last_attempted_on", sa.BigInteger(), nullable=True),
        sa.Column("total_score", sa.Double(), nullable=True),
        sa.Column("total_max_score", sa.Double(), nullable=True),
        sa.Column("grand_total", sa.Text(), nullable=True),
        sa.Column(
            "question",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint(
            "user_id",
            "course_id",
            "batch_id",
            "content_id",
            "attempt_id",
            name=op.f("pk_assessment_aggregator"),
        ),
    )
    with op.batch_alter_table("assessment_aggregator", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assessment_aggregator_course_batch", ["course_id", "batch_id", "user_id"], unique=False
        )
        batch_op.create_index("ix_assessment_aggregator_updated_on", ["updated_on"], unique=False)

    op.create_table(
        "consumer_offset",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "topic", name=op.f("pk_consumer_offset")),
    )
    op.create_table(
        "content",
        sa.Column("content_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("content_type", sa.Text(), nullable=True),
        sa.Column("object_type", sa.Text(), nullable=True),
        sa.Column("primary_category", sa.Text(), nullable=True),
        sa.Column("mime_type", sa.Text(), nullable=True),
        sa.Column("total_questions", sa.Integer(), nullable=True),
        sa.Column("updated_on", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("content_id", name=op.f("pk_content")),
    )
    op.create_table(
        "course",
        sa.Column("course_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("leaf_nodes_count", sa.Integer(), nullable=True),
        sa.Column(
            "hierarchy",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("updated_on", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("course_id", name=op.f("pk_course")),
    )
    op.create_table(
        "course_batch",
        sa.Column("courseid", sa.Text(), nullable=False),
        sa.Column("batchid", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("createdby", sa.Text(), nullable=True),
        sa.Column("enrollmenttype", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.BigInteger(), nullable=True),
        sa.Column("end_date", sa.BigInteger(), nullable=True),
        sa.Column("enrollment_enddate", sa.BigInteger(), nullable=True),
        sa.Column("created_date", sa.BigInteger(), nullable=True),
        sa.Column("updated_date", sa.BigInteger(), nullable=True),
        sa.Column(
            "createdfor",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "mentors",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "cert_templates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("courseid", "batchid", name=op.f("pk_course_batch")),
    )
    with op.batch_alter_table("course_batch", schema=None) as batch_op:
        batch_op.create_index("uq_course_batch_batchid", ["batchid"], unique=True)

    op.create_table(
        "course_node",
        sa.Column("course_id", sa.Text(), nullable=False),
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column(
            "parent_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("is_leaf", sa.Boolean(), nullable=False),
        sa.Column("optional", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "node_id", name=op.f("pk_course_node")),
    )
    op.create_table(
        "dedup_key",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("expires_on", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dedup_key")),
    )
    op.create_table(
        "event_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_on", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event_log")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.create_index("ix_event_log_topic_seq", ["topic", "seq"], unique=False)

    op.create_table(
        "group_member",
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("created_on", sa.BigInteger(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("updated_on", sa.BigInteger(), nullable=True),
        sa.Column("removed_by", sa.Text(), nullable=True),
        sa.Column("removed_on", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_member")),
    )
    with op.batch_alter_table("group_member", schema=None) as batch_op:
        batch_op.create_index("ix_group_member_user_id", ["user_id"], unique=False)

    op.create_table(
        "groups",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("created_on", sa.BigInteger(), nullable=True),
        sa.Column("updated_on", sa.BigInteger(), nullable=True),
        sa.Column(
            "activities",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    op.create_table(
        "job_request",
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column("requested_channel", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column(
            "request_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("dt_job_submitted", sa.BigInteger(), nullable=True),
        sa.Column("dt_job_completed", sa.BigInteger(), nullable=True),
        sa.Column("dt_file_created", sa.BigInteger(), nullable=True),
        sa.Column(
            "download_urls",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("execution_time", sa.BigInteger(), nullable=True),
        sa.Column("err_message", sa.Text(), nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("batch_number", sa.Integer(), nullable=True),
        sa.Column("encryption_key", sa.Text(), nullable=True),
        sa.Column(
            "processed_batches",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("tag", "request_id", name=op.f("pk_job_request")),
    )
    with op.batch_alter_table("job_request", schema=None) as batch_op:
        batch_op.create_index("uq_job_request_request_id", ["request_id"], unique=True)

    op.create_table(
        "user_activity_agg",
        sa.Column("activity_type", sa.Text(), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("context_id", sa.Text(), nullable=False),
        sa.Column(
            "agg",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "aggregates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "agg_last_updated",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "agg_details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint(
            "activity_type", "activity_id", "user_id", "context_id", name=op.f("pk_user_activity_agg")
        ),
    )
    with op.batch_alter_table("user_activity_agg", schema=None) as batch_op:
        batch_op.create_index("ix_user_activity_agg_activity", ["activity_id", "activity_type"], unique=False)

    op.create_table(
        "user_content_consumption",
        sa.Column("userid", sa.Text(), nullable=False),
        sa.Column("courseid", sa.Text(), nullable=False),
        sa.Column("batchid", sa.Text(), nullable=False),
        sa.Column("contentid", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("viewcount", sa.Integer(), nullable=True),
        sa.Column("completedcount", sa.Integer(), nullable=True),
        sa.Column("last_access_time", sa.BigInteger(), nullable=True),
        sa.Column("last_completed_time", sa.BigInteger(), nullable=True),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=True),
        sa.Column("datetime", sa.BigInteger(), nullable=True),
        sa.Column("lastaccesstime", sa.Text(), nullable=True),
        sa.Column("lastcompletedtime", sa.Text(), nullable=True),
        sa.Column("lastupdatedtime", sa.Text(), nullable=True),
        sa.Column("completionpercentage", sa.Double(), nullable=True),
        sa.Column("progressdetails", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("userid", "courseid", "batchid", "contentid", name=op.f("pk_user_content_consumption")),
    )
    op.create_table(
        "user_enrolments",
        sa.Column("userid", sa.Text(), nullable=False),
        sa.Column("courseid", sa.Text(), nullable=False),
        sa.Column("batchid", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("addedby", sa.Text(), nullable=True),
        sa.Column("enrolleddate", sa.Text(), nullable=True),
        sa.Column("lastreadcontentid", sa.Text(), nullable=True),
        sa.Column("enrolled_date", sa.BigInteger(), nullable=True),
        sa.Column("completedon", sa.BigInteger(), nullable=True),
        sa.Column("datetime", sa.BigInteger(), nullable=True),
        sa.Column("lastcontentaccesstime", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("lastreadcontentstatus", sa.Integer(), nullable=True),
        sa.Column("certstatus", sa.Integer(), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("completionpercentage", sa.Integer(), nullable=True),
        sa.Column(
            "contentstatus",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "certificates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "issued_certificates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("userid", "courseid", "batchid", name=op.f("pk_user_enrolments")),
    )
    with op.batch_alter_table("user_enrolments", schema=None) as batch_op:
        batch_op.create_index("ix_user_enrolments_course_batch", ["courseid", "batchid"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("root_org_id", sa.Text(), nullable=True),
        sa.Column("org_name", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("block", sa.Text(), nullable=True),
        sa.Column("cluster", sa.Text(), nullable=True),
        sa.Column("school_id", sa.Text(), nullable=True),
        sa.Column("school_name", sa.Text(), nullable=True),
        sa.Column("user_type", sa.Text(), nullable=True),
        sa.Column("user_subtype", sa.Text(), nullable=True),
        sa.Column("board", sa.Text(), nullable=True),
        sa.Column("managed_by", sa.Text(), nullable=True),
        sa.Column(
            "roles",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("users")
    with op.batch_alter_table("user_enrolments", schema=None) as batch_op:
        batch_op.drop_index("ix_user_enrolments_course_batch")

    op.drop_table("user_enrolments")
    op.drop_table("user_content_consumption")
    with op.batch_alter_table("user_activity_agg", schema=None) as batch_op:
        batch_op.drop_index("ix_user_activity_agg_activity")

    op.drop_table("user_activity_agg")
    with op.batch_alter_table("job_request", schema=None) as batch_op:
        batch_op.drop_index("uq_job_request_request_id")

    op.drop_table("job_request")
    op.drop_table("groups")
    with op.batch_alter_table("group_member", schema=None) as batch_op:
        batch_op.drop_index("ix_group_member_user_id")

    op.drop_table("group_member")
    with op.batch_alter_table("event_log", schema=None) as batch_op:
        batch_op.drop_index("ix_event_log_topic_seq")

    op.drop_table("event_log")
    op.drop_table("dedup_key")
    op.drop_table("course_node")
    with op.batch_alter_table("course_batch", schema=None) as batch_op:
        batch_op.drop_index("uq_course_batch_batchid")

    op.drop_table("course_batch")
    op.drop_table("course")
    op.drop_table("content")
    op.drop_table("consumer_offset")
    with op.batch_alter_table("assessment_aggregator", schema=None) as batch_op:
        batch_op.drop_index("ix_assessment_aggregator_updated_on")
        batch_op.drop_index("ix_assessment_aggregator_course_batch")

    op.drop_table("assessment_aggregator")
    op.drop_table("archival_metadata")
