"""Every logical table of docs/reference/data-model.md, defined once (SQLAlchemy Core); timestamps are epoch-ms BIGINT
(docs/reference/data-model.md#d1)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Map and list columns are JSON text on SQLite and JSONB on PostgreSQL (docs/reference/data-model.md#d1).
Json = JSON().with_variant(JSONB(), "postgresql")
Ms = BigInteger  # epoch milliseconds, UTC (docs/reference/data-model.md#c1)


def _text_key(name: str) -> Column:
    return Column(name, Text, primary_key=True)


# docs/reference/data-model.md#user-activity-agg
user_activity_agg = Table(
    "user_activity_agg",
    metadata,
    _text_key("activity_type"),
    _text_key("activity_id"),
    _text_key("user_id"),
    _text_key("context_id"),
    Column("agg", Json),  # legacy map<text,int>: read, never written
    Column("aggregates", Json),  # map<text,double>
    Column("agg_last_updated", Json),  # map<text,epoch ms>
    Column("agg_details", Json),  # list<text>, replaced whole
)
Index("ix_user_activity_agg_activity", user_activity_agg.c.activity_id, user_activity_agg.c.activity_type)

# Per-batch course metrics of seed note 002 (docs/api.md "activity_agg"): kept exact with `user_enrolments`.
activity_agg = Table(
    "activity_agg",
    metadata,
    _text_key("activity_type"),
    _text_key("activity_id"),
    _text_key("context_id"),
    Column("agg", Json),  # map<text,double>: enrolledCount, completedCount, completionPercentage
    Column("agg_last_updated", Json),  # map<text,epoch ms>
)

# docs/reference/data-model.md#assessment-aggregator
assessment_aggregator = Table(
    "assessment_aggregator",
    metadata,
    _text_key("user_id"),
    _text_key("course_id"),
    _text_key("batch_id"),
    _text_key("content_id"),
    _text_key("attempt_id"),
    Column("created_on", Ms),
    Column("updated_on", Ms),
    Column("last_attempted_on", Ms),
    Column("total_score", Double),
    Column("total_max_score", Double),
    Column("grand_total", Text),
    Column("question", Json),
)
Index(
    "ix_assessment_aggregator_course_batch",
    assessment_aggregator.c.course_id,
    assessment_aggregator.c.batch_id,
    assessment_aggregator.c.user_id,
)
Index("ix_assessment_aggregator_updated_on", assessment_aggregator.c.updated_on)
# Archival reads one (course, batch, week) at a time (docs/batch.md#assessment-archival); revision 0003.
Index(
    "ix_assessment_aggregator_course_batch_updated_on",
    assessment_aggregator.c.course_id,
    assessment_aggregator.c.batch_id,
    assessment_aggregator.c.updated_on,
)

# docs/reference/data-model.md#enrolment
user_enrolments = Table(
    "user_enrolments",
    metadata,
    _text_key("userid"),
    _text_key("courseid"),
    _text_key("batchid"),
    Column("active", Boolean),
    Column("addedby", Text),
    Column("enrolleddate", Text),
    Column("lastreadcontentid", Text),
    Column("enrolled_date", Ms),
    Column("completedon", Ms),
    Column("datetime", Ms),
    Column("lastcontentaccesstime", Ms),
    Column("status", Integer),
    Column("lastreadcontentstatus", Integer),
    Column("certstatus", Integer),
    Column("progress", Integer),
    Column("completionpercentage", Integer),
    Column("contentstatus", Json),
    Column("certificates", Json),
    Column("issued_certificates", Json),
)
Index("ix_user_enrolments_course_batch", user_enrolments.c.courseid, user_enrolments.c.batchid)

user_content_consumption = Table(
    "user_content_consumption",
    metadata,
    _text_key("userid"),
    _text_key("courseid"),
    _text_key("batchid"),
    _text_key("contentid"),
    Column("status", Integer),
    Column("progress", Integer),
    Column("viewcount", Integer),
    Column("completedcount", Integer),
    Column("last_access_time", Ms),
    Column("last_completed_time", Ms),
    Column("last_updated_time", Ms),
    Column("datetime", Ms),
    Column("lastaccesstime", Text),
    Column("lastcompletedtime", Text),
    Column("lastupdatedtime", Text),
    Column("completionpercentage", Double),
    Column("progressdetails", Text),
)

course_batch = Table(
    "course_batch",
    metadata,
    _text_key("courseid"),
    _text_key("batchid"),
    Column("name", Text),
    Column("description", Text),
    Column("createdby", Text),
    Column("enrollmenttype", Text),
    Column("status", Integer),
    Column("start_date", Ms),
    Column("end_date", Ms),
    Column("enrollment_enddate", Ms),
    Column("created_date", Ms),
    Column("updated_date", Ms),
    Column("createdfor", Json),
    Column("mentors", Json),
    Column("cert_templates", Json),
)
Index("uq_course_batch_batchid", course_batch.c.batchid, unique=True)

# docs/reference/data-model.md#users-and-groups
users = Table(
    "users",
    metadata,
    _text_key("id"),
    *(
        Column(name, Text)
        for name in (
            "first_name",
            "last_name",
            "root_org_id",
            "org_name",
            "state",
            "district",
            "block",
            "cluster",
            "school_id",
            "school_name",
            "user_type",
            "user_subtype",
            "board",
            "managed_by",
        )
    ),
    Column("roles", Json),
    Column("status", Integer),
)

groups = Table(
    "groups",
    metadata,
    _text_key("id"),
    Column("name", Text),
    Column("description", Text),
    Column("status", Text),
    Column("created_by", Text),
    Column("created_on", Ms),
    Column("updated_on", Ms),
    Column("activities", Json),
)

group_member = Table(
    "group_member",
    metadata,
    _text_key("group_id"),
    _text_key("user_id"),
    Column("role", Text),
    Column("status", Text),
    Column("created_by", Text),
    Column("created_on", Ms),
    Column("updated_by", Text),
    Column("updated_on", Ms),
    Column("removed_by", Text),
    Column("removed_on", Ms),
)
Index("ix_group_member_user_id", group_member.c.user_id)

# docs/reference/data-model.md#reports-and-archival
job_request = Table(
    "job_request",
    metadata,
    _text_key("tag"),
    _text_key("request_id"),
    Column("job_id", Text),
    Column("requested_by", Text),
    Column("requested_channel", Text),
    Column("status", Text),
    Column("request_data", Json),
    Column("dt_job_submitted", Ms),
    Column("dt_job_completed", Ms),
    Column("dt_file_created", Ms),
    Column("download_urls", Json),
    Column("execution_time", BigInteger),
    Column("err_message", Text),
    Column("iteration", Integer),
    Column("batch_number", Integer),
    Column("encryption_key", Text),
    Column("processed_batches", Json),
    # Not from the reference platform: while a runner processes the request, the instant its claim ends (revision 0004)
    # and the run holding it (revision 0008): a run that lost its claim writes nothing more to the request.
    Column("lease_until", Ms),
    Column("lease_owner", Text),
)
Index("uq_job_request_request_id", job_request.c.request_id, unique=True)
# The runner picks one dataset's pending requests (docs/batch.md#exhaust-reports); revision 0004.
Index("ix_job_request_job_id_status", job_request.c.job_id, job_request.c.status)

archival_metadata = Table(
    "archival_metadata",
    metadata,
    _text_key("request_id"),
    Column("batch_id", Text),
    Column("collection_id", Text),
    Column("resource_type", Text),
    Column("job_id", Text),
    Column("archival_date", Ms),
    Column("completion_date", Ms),
    Column("archival_status", Text),
    Column("deletion_status", Text),
    Column("blob_url", Json),
    Column("iteration", Integer),
    Column("request_data", Json),
    Column("err_message", Text),
    # Not from the reference platform: what the archive holds, written on archival and checked before deletion (revision
    # 0003).
    Column("row_count", BigInteger),
    Column("checksum", Text),  # hex SHA-256 of the uncompressed CSV (domain/archive_csv.py)
)

# Not from the reference platform: expiring claims of batch work (an archival partition, revision 0008; docs/batch.md).
# A row is held by `owner` until `lease_until` (epoch ms) and renewed while the work runs; it is deleted when released.
batch_lease = Table(
    "batch_lease",
    metadata,
    _text_key("name"),
    Column("owner", Text, nullable=False),
    Column("lease_until", Ms, nullable=False),
)

event_log = Table(
    "event_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("key", Text),
    Column("payload", Text, nullable=False),
    Column("created_on", Ms, nullable=False),
    # crc32(key) mod the topic's partition count (docs/scale-out.md); seq stays one sequence per table.
    Column("partition", Integer, nullable=False, server_default="0"),
    # Never reuse a seq on SQLite, even after old events are pruned: consumers remember offsets.
    sqlite_autoincrement=True,
)
Index("ix_event_log_topic_seq", event_log.c.topic, event_log.c.seq)
Index("ix_event_log_topic_partition_seq", event_log.c.topic, event_log.c.partition, event_log.c.seq)

consumer_offset = Table(
    "consumer_offset",
    metadata,
    _text_key("consumer"),
    _text_key("topic"),
    Column("partition", Integer, primary_key=True, server_default="0"),
    Column("seq", BigInteger, nullable=False),
    # The worker (`<hostname>:<pid>`) holding this (job, partition) until `lease_until` (epoch ms); null: free.
    Column("owner", Text),
    Column("lease_until", Ms),
)

# The partition count of each topic, fixed at its first use; the row of topic "*" is the count for new topics
# (`bus.partitions`, stored by `learnagg init`).
bus_topic = Table(
    "bus_topic",
    metadata,
    _text_key("topic"),
    Column("partitions", Integer, nullable=False),
)

# Live workers of each consumer group (heartbeat): the partitions are spread evenly over them.
consumer_member = Table(
    "consumer_member",
    metadata,
    _text_key("consumer"),
    _text_key("owner"),
    Column("lease_until", Ms, nullable=False),
)

# Events a job emitted in its transaction, relayed to the bus after commit (docs/scale-out.md "The outbox"):
# `consumer` and `partition` name the (job, partition) whose batch emitted them.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("key", Text),
    Column("payload", Text, nullable=False),
    Column("consumer", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("created_on", Ms, nullable=False),
)

# The `mid`s a job applied recently (pruned after `worker.applied_mid_ttl_seconds`): a repeated one is skipped.
applied_mid = Table(
    "applied_mid", metadata, _text_key("consumer"), _text_key("mid"), Column("applied_on", Ms, nullable=False)
)
Index("ix_applied_mid_consumer_applied_on", applied_mid.c.consumer, applied_mid.c.applied_on)

dedup_key = Table(
    "dedup_key",
    metadata,
    _text_key("key"),
    Column("expires_on", Ms, nullable=False),
)

# docs/reference/data-model.md#hierarchy
course = Table(
    "course",
    metadata,
    _text_key("course_id"),
    Column("name", Text),
    Column("status", Text),
    Column("channel", Text),
    Column("leaf_nodes_count", Integer),
    Column("hierarchy", Json),
    Column("updated_on", Ms),
)

course_node = Table(
    "course_node",
    metadata,
    _text_key("course_id"),
    _text_key("node_id"),
    Column("parent_ids", Json),
    Column("is_leaf", Boolean, nullable=False),
    Column("optional", Boolean, nullable=False),
    Column("position", Integer, nullable=False),
)

content = Table(
    "content",
    metadata,
    _text_key("content_id"),
    Column("name", Text),
    Column("content_type", Text),
    Column("object_type", Text),
    Column("primary_category", Text),
    Column("mime_type", Text),
    Column("total_questions", Integer),
    Column("updated_on", Ms),
)

# Not from the reference platform: secrets the service generates for itself (the embedded HS256 token key).
app_secret = Table(
    "app_secret",
    metadata,
    _text_key("name"),
    Column("value", Text, nullable=False),
    Column("created_on", Ms, nullable=False),
)
