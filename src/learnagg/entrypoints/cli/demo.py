"""`learnagg demo`: the assessment aggregator end to end on the configured database, with generated data."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, select
from sqlalchemy.engine import make_url

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.scores import COURSE, context_id
from learnagg.adapters.store.tables import user_activity_agg
from learnagg.bench.demo_data import DemoData, generate_demo
from learnagg.domain.hierarchy import parse_hierarchy
from learnagg.entrypoints.cli.common import open_app
from learnagg.services.courses import load_courses

JOB = "assessment-aggregator"


def demo(
    learners: Annotated[int, typer.Option("--learners", min=1, max=1000, help="How many learners to generate.")] = 5,
) -> None:
    """Run the assessment aggregator end to end on generated data and print each learner's best scores.

    Generates the course "Foundations of Data" (2 units, 6 leaves, 3 SelfAssess assessments) and the learners.

    Each learner makes 1-3 attempts per assessment, 3-5 ASSESS answers each (one question answered twice).

    Upgrades the schema of the configured database (LEARNAGG_DATABASE_URL, default sqlite:///learnagg.db).

    Loads the course, publishes the attempts to the assess topic and runs the worker until it is idle.

    Prints best score / max score (attempts) per learner and assessment, read back from user_activity_agg.

    The data is seeded: a re-run prints the same table (the aggregator skips the replayed attempts).
    """
    data = generate_demo(learners)
    with open_app(require_schema=False) as app:
        schema.upgrade(app.store)
        now = app.clock()
        with app.store.write() as conn:
            load_courses(conn, app.store.dialect, [(parse_hierarchy(data.hierarchy), data.hierarchy)], now)
            payloads = [(None, orjson.dumps(e).decode()) for e in data.attempt_events]
            app.log.append(conn, app.topics.assess, payloads, now)
        # Bounded retries (worker.max_retries): a database that keeps failing ends the demo with one error line,
        # as `worker --until-idle` does.
        worker = bootstrap.build_worker(app, [JOB])
        started = time.perf_counter()
        handled = worker.start(until_idle=True)
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        counters = worker.consumers[0].counters
        with app.store.read() as conn:
            aggregates = _course_aggregates(conn, data)
        database = make_url(app.store.url).render_as_string(hide_password=True)

    console = Console()
    console.print(_score_table(data, aggregates, database))
    console.print(
        f"worker: {handled} event(s) processed ({counters['success']} aggregated, "
        f"{counters['skipped']} skipped as already aggregated), {counters['failed']} failed, {elapsed_ms} ms",
        highlight=False,
        soft_wrap=True,
    )


def _course_aggregates(conn: Connection, data: DemoData) -> dict[str, Mapping[str, Any]]:
    """The stored `aggregates` map of each demo learner's course row (SPEC §2.1), by user id."""
    u = user_activity_agg.c
    stmt = select(u.user_id, u.aggregates).where(
        u.activity_type == COURSE,
        u.activity_id == data.course_id,
        u.context_id == context_id(data.batch_id),
        u.user_id.in_([learner.user_id for learner in data.learners]),
    )
    return {user_id: aggregates or {} for user_id, aggregates in conn.execute(stmt)}


def _cell(aggregates: Mapping[str, Any], content_id: str) -> str:
    """``best/max (attempts)`` from the score metrics; doubles as Python's repr (SPEC C4)."""
    score = aggregates.get(f"score:{content_id}")
    max_score = aggregates.get(f"max_score:{content_id}")
    attempts = aggregates.get(f"attempts_count:{content_id}")
    if score is None or max_score is None or attempts is None:
        return "-"
    return f"{float(score)!r}/{float(max_score)!r} ({int(attempts)})"


def _score_table(data: DemoData, aggregates: Mapping[str, Mapping[str, Any]], database: str) -> Table:
    assessments = data.assessments
    table = Table(
        title=f"{data.hierarchy['name']}: best score / max score (attempts)",
        caption=f"read from user_activity_agg, context cb:{data.batch_id}, in {database}",
    )
    rows = []
    for learner in data.learners:
        stored = aggregates.get(learner.user_id, {})
        rows.append([learner.name, learner.user_id, *(_cell(stored, a.content_id) for a in assessments)])
    # Cells never wrap (min_width = their longest text); long headers wrap instead on a narrow terminal.
    headers = ["Learner", "Id", *(a.name for a in assessments)]
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < 2 else "right", min_width=max(len(r[i]) for r in rows))
    for row in rows:
        table.add_row(*row)
    return table


def register(app: typer.Typer) -> None:
    """Add the command to the top-level app."""
    app.command()(demo)
