"""Test helpers: publish events, drain the jobs, read rows and topics."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from learnagg import bootstrap
from learnagg.adapters.store.tables import assessment_aggregator, user_activity_agg
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE, parse_hierarchy
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


def publish(app: bootstrap.App, topic: str, events: Iterable[Any]) -> None:
    """Append events (dicts are JSON-encoded, strings go in verbatim) to a topic alias or name."""
    payloads = [(None, e if isinstance(e, str) else orjson.dumps(e).decode()) for e in events]
    with app.store.write() as conn:
        app.log.append(conn, app.topics.resolve(topic), payloads, app.clock())


def drain(app: bootstrap.App, jobs: list[str] | None = None) -> Worker:
    """Run the jobs until every topic is drained; returns the worker (for its counters)."""
    worker = bootstrap.build_worker(app, jobs, max_retries=0)
    worker.start(until_idle=True)
    return worker


def topic_events(app: bootstrap.App, topic: str) -> list[dict[str, Any]]:
    """All events of a topic, decoded."""
    with app.store.read() as conn:
        return [orjson.loads(e.payload) for e in app.log.read(conn, app.topics.resolve(topic))]


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
