"""Test helpers: publish events, drain the jobs, read rows and topics."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select

from learnagg import bootstrap
from learnagg.adapters.bus.log import LogEvent
from learnagg.adapters.store.tables import assessment_aggregator, metadata, user_activity_agg
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE, parse_hierarchy
from learnagg.domain.topics import partition_key
from learnagg.services.courses import load_courses
from learnagg.streams.consumer import Worker

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # a copy of the SPEC §3.6 golden input


class TestClock:
    """A clock tests can move: ``clock.now = …``."""

    __test__ = False

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def golden_event() -> dict[str, Any]:
    """The SPEC §3.6 input event (shared fixture)."""
    return json.loads((FIXTURES / "golden-assess-event.json").read_text())


def publish(app: bootstrap.App, topic: str, events: Iterable[Any], *, key: str | None = None) -> None:
    """Append events (dicts are JSON-encoded, strings go in verbatim) to a topic alias or name.

    ``key`` places them all on one partition (otherwise each goes where its learner, or its text, puts it).
    """
    payloads = [(key, e if isinstance(e, str) else orjson.dumps(e).decode()) for e in events]
    with app.store.write() as conn:
        app.log.append(conn, app.topics.resolve(topic), payloads, app.clock())


def drain(app: bootstrap.App, jobs: list[str] | None = None) -> Worker:
    """Run the jobs until every topic is drained; returns the worker (for its counters)."""
    worker = bootstrap.build_worker(app, jobs, max_retries=0)
    worker.start(until_idle=True)
    return worker


def topic_events(app: bootstrap.App, topic: str) -> list[dict[str, Any]]:
    """All events of a topic, decoded, read through the bus (every partition; publish order within each)."""
    return [orjson.loads(e.payload) for e in log_events(app, topic)]


def log_events(app: bootstrap.App, topic: str) -> list[LogEvent]:
    """All events of a topic as the bus holds them (partition and position included)."""
    with app.store.read() as conn:
        return app.log.read(conn, app.topics.resolve(topic))


def source_ids(app: bootstrap.App, job: str, topic: str) -> dict[str, str]:
    """``<job>:<partition>:<position>`` of each event of a topic by its payload: the ``failed_id`` of its envelope.

    Read before the job drains the topic: a bus that trims what its jobs committed (Redis Streams) may drop them.
    """
    return {e.payload: f"{job}:{e.partition}:{e.seq}" for e in log_events(app, topic)}


def bus_env(app: bootstrap.App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point a command run in-process at the test's database and bus."""
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("LEARNAGG_BUS_URL", app.settings.bus_url)


def per_learner(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events grouped by learner (their partition key), each learner's kept in bus order.

    The order every bus keeps: one learner's events are on one partition, read in publish order; events of
    different learners may be on different partitions, read in any interleaving (docs/scale-out.md).
    """
    return sorted(events, key=lambda e: partition_key(None, orjson.dumps(e).decode()) or "")


def reset(app: bootstrap.App) -> None:
    """Empty every table (but the schema version and the partition counts) and the bus: a fresh start."""
    with app.store.write() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name not in ("alembic_version", "bus_topic"):
                conn.execute(delete(table))
    client = getattr(app.log, "client", None)  # Redis Streams: the events are outside the store
    if client is not None:
        client.flushdb()


def course(course_id: str, leaves: Iterable[str], **extra: Any) -> dict[str, Any]:
    """A one-level hierarchy with the given leaves (SelfAssess content)."""
    children = [
        {
            "identifier": leaf,
            "name": leaf,
            "mimeType": "application/vnd.ekstep.ecml-archive",
            "contentType": "SelfAssess",
        }
        for leaf in leaves
    ]
    return {"identifier": course_id, "name": course_id, "mimeType": COLLECTION_MIME_TYPE, "children": children, **extra}


def load(app: bootstrap.App, *hierarchies: dict[str, Any]) -> None:
    """Load course hierarchies as `learnagg load courses` does."""
    with app.store.write() as conn:
        load_courses(conn, app.store.dialect, [(parse_hierarchy(h), h) for h in hierarchies], app.clock())


def attempts(app: bootstrap.App, **where: str) -> list[dict[str, Any]]:
    """`assessment_aggregator` rows, sorted by key."""
    t = assessment_aggregator
    stmt = select(t).where(*(t.c[k] == v for k, v in where.items())).order_by(*t.primary_key.columns)
    with app.store.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def activity_rows(app: bootstrap.App, **where: str) -> list[dict[str, Any]]:
    """`user_activity_agg` rows, sorted by key."""
    t = user_activity_agg
    stmt = select(t).where(*(t.c[k] == v for k, v in where.items())).order_by(*t.primary_key.columns)
    with app.store.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]
