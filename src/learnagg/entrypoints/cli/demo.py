"""`learnagg demo`: the assessment aggregator end to end on the configured database, with generated data;
``--serve`` then serves the API and the group dashboard of the demo group (docs/dashboard.md)."""

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
from learnagg.bench.demo_group import DemoGroup, demo_group
from learnagg.domain.hierarchy import parse_hierarchy
from learnagg.entrypoints.cli.common import open_app
from learnagg.services.batches import create_batches
from learnagg.services.courses import load_courses
from learnagg.services.enrolments import load_enrolments
from learnagg.services.groups import insert_groups
from learnagg.services.users import upsert_users

JOB = "assessment-aggregator"


def demo(
    learners: Annotated[int, typer.Option("--learners", min=1, max=1000, help="How many learners to generate.")] = 5,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then serve the API with the stream jobs and print a signed-in link to the demo group's dashboard.",
        ),
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to listen on with --serve.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port with --serve.")] = 8000,
) -> None:
    """Run the assessment aggregator end to end on generated data and print each learner's best scores.

    Generates the course "Foundations of Data" (2 units, 6 leaves, 3 SelfAssess assessments) and the learners.

    Each learner makes 1-3 attempts per assessment, 3-5 ASSESS answers each (one question answered twice).

    Upgrades the schema of the configured database (LEARNAGG_DATABASE_URL, default sqlite:///learnagg.db).

    Loads the course, publishes the attempts to the assess topic and runs the worker until it is idle.

    Prints best score / max score (attempts) per learner and assessment, read back from user_activity_agg.

    The data is seeded: a re-run prints the same table (the aggregator skips the replayed attempts).

    Also loads the batch, the learners as users with their enrolments, and a study group led by teacher-01.

    With --serve: serves the API with the stream jobs (like `learnagg serve`) and prints the dashboard link of the
    study group with a token of its teacher; stop it with Ctrl-C.
    """
    data = generate_demo(learners)
    platform = demo_group(data)
    with open_app(require_schema=False) as app:
        schema.upgrade(app.store)
        now = app.clock()
        with app.store.write() as conn:
            load_courses(conn, app.store.dialect, [(parse_hierarchy(data.hierarchy), data.hierarchy)], now)
            _load_platform(conn, app, platform, now)
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
        link = _dashboard_link(app, platform, host, port) if serve else None

    console = Console()
    console.print(_score_table(data, aggregates, database))
    console.print(
        f"worker: {handled} event(s) processed ({counters['success']} aggregated, "
        f"{counters['skipped']} skipped as already aggregated), {counters['failed']} failed, {elapsed_ms} ms",
        highlight=False,
        soft_wrap=True,
    )
    if link is not None:
        from learnagg.entrypoints.cli.serve import serve as serve_api

        console.print(f"group dashboard of {platform.group.name!r} (signed in as {platform.group.created_by}):")
        # Printed alone on its line, never wrapped, so that it can be copied or clicked whole.
        print(link, flush=True)
        serve_api(host=host, port=port)


def _load_platform(conn: Connection, app: bootstrap.App, platform: DemoGroup, now: int) -> None:
    """The batch, users, enrolments and group of the demo; a re-run replaces them with the same values."""
    zone = app.settings.timezone
    dialect = app.store.dialect
    create_batches(conn, dialect, [platform.batch], created_by=None, now=now, zone=zone, replace=True)
    upsert_users(conn, dialect, platform.users)
    load_enrolments(conn, dialect, platform.enrolments, now=now, zone=zone)
    insert_groups(conn, dialect, [platform.group], now, replace=True)


def _dashboard_link(app: bootstrap.App, platform: DemoGroup, host: str, port: int) -> str:
    """The dashboard address of the demo group with a token of its teacher in the fragment (never sent)."""
    from learnagg.adapters.tokens import token_keys

    teacher = platform.group.created_by or ""
    token = token_keys(app.settings.auth, app.store, app.clock()).mint(teacher, app.clock(), [])
    # A wildcard address is served on every interface, the loopback one included.
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/dashboard/groups/{platform.group.group_id}#token={token}"


def _course_aggregates(conn: Connection, data: DemoData) -> dict[str, Mapping[str, Any]]:
    """The stored `aggregates` map of each demo learner's course row (docs/reference/data-model.md#user-activity-agg),
    by user id."""
    u = user_activity_agg.c
    stmt = select(u.user_id, u.aggregates).where(
        u.activity_type == COURSE,
        u.activity_id == data.course_id,
        u.context_id == context_id(data.batch_id),
        u.user_id.in_([learner.user_id for learner in data.learners]),
    )
    return {user_id: aggregates or {} for user_id, aggregates in conn.execute(stmt)}


def _cell(aggregates: Mapping[str, Any], content_id: str) -> str:
    """``best/max (attempts)`` from the score metrics; doubles as Python's repr (docs/reference/data-model.md#c4)."""
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
