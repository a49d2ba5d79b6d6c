"""`learnagg inspect …`: stored rows and events as JSON, one object per line (maps as objects, times as ms)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import orjson
import typer
from sqlalchemy import Table, select

from learnagg.adapters.store.tables import (
    assessment_aggregator,
    consumer_offset,
    user_activity_agg,
    user_content_consumption,
    user_enrolments,
)
from learnagg.entrypoints.cli.common import echo_json, open_app

app = typer.Typer(help="Print stored rows or events as JSON lines.", no_args_is_help=True)
MAX_LIMIT = 100_000_000  # above any useful listing, far below the database's integer range


def _rows(table: Table, filters: dict[str, str | None], order: list[str]) -> None:
    with open_app() as la, la.store.read() as conn:
        stmt = select(table)
        for column, value in filters.items():
            if value is not None:
                stmt = stmt.where(table.c[column] == value)
        for row in conn.execute(stmt.order_by(*(table.c[c] for c in order))).mappings():
            echo_json({str(k): v for k, v in row.items()})


@app.command("user-activity-agg")
def user_activity_agg_rows(
    activity_id: Annotated[str, typer.Option("--activity-id", help="Course or unit id.")],
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    context_id: Annotated[str | None, typer.Option("--context-id", help="cb:<batchId>")] = None,
) -> None:
    """Rows of user_activity_agg for an activity."""
    _rows(
        user_activity_agg,
        {"activity_id": activity_id, "user_id": user_id, "context_id": context_id},
        ["user_id", "context_id"],
    )


@app.command("assessment")
def assessment_rows(
    course_id: Annotated[str, typer.Option("--course-id")],
    user_id: Annotated[str, typer.Option("--user-id")],
    batch_id: Annotated[str | None, typer.Option("--batch-id")] = None,
) -> None:
    """Rows of assessment_aggregator for a learner in a course."""
    _rows(
        assessment_aggregator,
        {"course_id": course_id, "user_id": user_id, "batch_id": batch_id},
        ["batch_id", "content_id", "attempt_id"],
    )


@app.command("enrolments")
def enrolment_rows(
    course_id: Annotated[str, typer.Option("--course-id")],
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    batch_id: Annotated[str | None, typer.Option("--batch-id")] = None,
) -> None:
    """Rows of user_enrolments for a course (status, progress, contentstatus, completedon…)."""
    _rows(
        user_enrolments,
        {"courseid": course_id, "userid": user_id, "batchid": batch_id},
        ["userid", "batchid"],
    )


@app.command("consumption")
def consumption_rows(
    course_id: Annotated[str, typer.Option("--course-id")],
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    batch_id: Annotated[str | None, typer.Option("--batch-id")] = None,
    content_id: Annotated[str | None, typer.Option("--content-id")] = None,
) -> None:
    """Rows of user_content_consumption for a course (status, viewcount, completedcount…)."""
    _rows(
        user_content_consumption,
        {"courseid": course_id, "userid": user_id, "batchid": batch_id, "contentid": content_id},
        ["userid", "batchid", "contentid"],
    )


@app.command("events")
def events(
    topic: Annotated[str, typer.Option("--topic", help="assess, progress, certificate, a suffix or a full name.")],
    limit: Annotated[int | None, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most N events.")] = None,
) -> None:
    """Events of a topic (failed topics included) in log order; a non-JSON payload prints as {"raw": text}."""
    with open_app() as la, la.store.read() as conn:
        for ev in la.log.read(conn, la.topics.resolve(topic), limit=limit):  # type: ignore[attr-defined]
            try:
                value: Any = orjson.loads(ev.payload)
            except orjson.JSONDecodeError:
                value = {"raw": ev.payload}
            echo_json(value)


@app.command("consumers")
def consumers() -> None:
    """One line per (job, partition): owner, lease_until (epoch ms), position, lag and outbox_pending; then one per
    source of other events in the outbox, not yet relayed (job "api": the API's publishes)."""
    from learnagg import bootstrap
    from learnagg.adapters.bus.outbox import Outbox

    with open_app() as la, la.store.read() as conn:
        log_: Any = la.log
        pending = Outbox(la.store.dialect).pending(conn)
        for spec in bootstrap.JOBS.values():
            topic = la.topics.name(spec.input_suffix)
            lags: dict[int, int] = log_.lags(conn, spec.name, topic)
            c = consumer_offset.c
            rows = conn.execute(
                select(c.partition, c.owner, c.lease_until, c.seq).where(c.consumer == spec.name, c.topic == topic)
            ).all()
            held = {r.partition: r for r in rows}
            for partition, lag in sorted(lags.items()):
                row = held.get(partition)
                echo_json(
                    {
                        "job": spec.name,
                        "partition": partition,
                        "owner": row.owner if row is not None else None,
                        "lease_until": row.lease_until if row is not None and row.owner is not None else None,
                        "position": row.seq if row is not None else 0,
                        "lag": lag,
                        "outbox_pending": pending[(spec.name, partition)],
                    }
                )
        others: Counter[str] = Counter()
        for (source, _), count in pending.items():
            if source not in bootstrap.JOBS:  # rows a request wrote (services.publishing): no partition or position
                others[source] += count
        for source, count in sorted(others.items()):
            if count:
                echo_json(
                    {
                        "job": source,
                        "partition": None,
                        "owner": None,
                        "lease_until": None,
                        "position": None,
                        "lag": None,
                        "outbox_pending": count,
                    }
                )
