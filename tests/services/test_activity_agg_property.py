"""`activity_agg` equals a recount from `user_enrolments` after any sequence of the operations that move it."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnagg import bootstrap
from learnagg.adapters.store.tables import activity_agg as activity_agg_table
from learnagg.batch.imports import import_file
from learnagg.domain.identity import PLATFORM_ADMIN, Caller
from learnagg.domain.messages import progress_event
from learnagg.domain.platform import EnrolmentRecord, NewBatch
from learnagg.errors import ApiError
from learnagg.services import activity_agg, enrolments
from learnagg.services.batches import create_batches
from tests.support import course, drain, load, publish

COURSE = "do_p1"
BATCHES = ("b-1", "b-2")
IMPORTED = "b-3"  # a batch that only imports create (its enrolments may come before it)
USERS = ("u-1", "u-2", "u-3")
ADMIN = Caller("admin", token_roles=frozenset({PLATFORM_ADMIN}))

operation = st.tuples(
    st.sampled_from(["enrol", "unenrol", "load", "complete", "migrate", "batch", "import_enrolment", "import_batch"]),
    st.sampled_from(USERS),
    st.sampled_from((*BATCHES, IMPORTED)),
    st.booleans(),  # active, for an imported enrolment
    st.sampled_from([0, 1, 2]),  # status, for an imported enrolment
)


def _prepare(app: bootstrap.App) -> None:
    load(app, course(COURSE, ["do_l1"]))
    with app.store.write() as conn:
        batches = [NewBatch(COURSE, b, b, date(2023, 1, 1), status=1) for b in BATCHES]
        create_batches(conn, app.store.dialect, batches, created_by=None, now=app.clock(), zone="UTC", replace=True)


def _import(app: bootstrap.App, table: str, header: list[str], row: list[str]) -> None:
    """`learnagg import` of a cqlsh export with a header row and one record."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{table}.csv"
        path.write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")
        import_file(app, table, str(path))


def _apply(app: bootstrap.App, kind: str, user: str, batch: str, active: bool = True, status: int = 1) -> None:
    now = app.clock()
    try:
        if kind == "enrol":
            enrolments.enrol(app, ADMIN, COURSE, batch, user, now)
        elif kind == "unenrol":
            enrolments.unenrol(app, ADMIN, COURSE, batch, user, now)
        elif kind == "load":
            with app.store.write() as conn:
                record = EnrolmentRecord(user_id=user, course_id=COURSE, batch_id=batch)
                enrolments.load_enrolments(conn, app.store.dialect, [record], now=now, zone="UTC")
    except ApiError:
        pass  # refused (already enrolled, not enrolled, completed, no such batch): nothing moved
    if kind == "import_enrolment":
        header = ["userid", "courseid", "batchid", "active", "status"]
        _import(app, "user_enrolments", header, [user, COURSE, batch, str(active), str(status)])
    elif kind == "import_batch":
        _import(app, "course_batch", ["courseid", "batchid", "name", "status"], [COURSE, batch, batch, "1"])
    elif kind == "complete":
        event = progress_event(user_id=user, batch_id=batch, course_id=COURSE, contents=[("do_l1", 2)], now=now)
        publish(app, "progress", [event])
        drain(app, ["activity-aggregate-updater"])
    elif kind == "migrate":
        with app.store.write() as conn:
            activity_agg.rebuild(conn, app.store.dialect, now)
    elif kind == "batch":
        _prepare(app)


def _check(app: bootstrap.App) -> None:
    with app.store.read() as conn:
        assert activity_agg.stored(conn) == activity_agg.expected(conn)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operation, max_size=8))
def test_activity_agg_equals_a_recount(app: bootstrap.App, steps: list[Any]) -> None:
    _prepare(app)
    for step in steps:
        _apply(app, *step)
        _check(app)


def test_rebuild_is_idempotent_and_dry_run_writes_nothing(app: bootstrap.App) -> None:
    _prepare(app)
    enrolments.enrol(app, ADMIN, COURSE, "b-1", "u-1", app.clock())
    with app.store.write() as conn:
        conn.execute(activity_agg_table.delete())
    with app.store.write() as conn:
        dry = activity_agg.rebuild(conn, app.store.dialect, app.clock(), dry_run=True)
        assert (dry.created, dry.changed, dry.removed) == (2, 0, 0)
        assert activity_agg.stored(conn) == {}
    with app.store.write() as conn:
        activity_agg.rebuild(conn, app.store.dialect, app.clock())
    with app.store.write() as conn:
        again = activity_agg.rebuild(conn, app.store.dialect, app.clock())
    assert (again.created, again.changed, again.removed) == (0, 0, 0)
    _check(app)


def test_a_completion_by_the_activity_updater_moves_completed_count(app: bootstrap.App) -> None:
    _prepare(app)
    enrolments.enrol(app, ADMIN, COURSE, "b-1", "u-1", app.clock())
    enrolments.enrol(app, ADMIN, COURSE, "b-1", "u-2", app.clock())
    _apply(app, "complete", "u-1", "b-1")
    with app.store.read() as conn:
        assert activity_agg.stored(conn)[(COURSE, "b-1")] == {
            "enrolledCount": 2.0,
            "completedCount": 1.0,
            "completionPercentage": 50.0,
        }


def test_imports_of_enrolments_and_batches_keep_the_table_exact(app: bootstrap.App) -> None:
    _prepare(app)
    _apply(app, "import_enrolment", "u-1", "b-1", True, 2)
    _apply(app, "import_enrolment", "u-2", "b-1", True, 1)
    _apply(app, "import_enrolment", "u-3", IMPORTED, False, 1)  # inactive, in a batch not imported yet
    _check(app)
    _apply(app, "import_enrolment", "u-1", IMPORTED, True, 2)
    _check(app)
    _apply(app, "import_batch", "u-1", IMPORTED)
    _apply(app, "import_enrolment", "u-1", IMPORTED, False, 2)  # unenrolled by a later export
    _check(app)
    with app.store.read() as conn:
        table = activity_agg.stored(conn)
    assert table[(COURSE, "b-1")] == {"enrolledCount": 2.0, "completedCount": 1.0, "completionPercentage": 50.0}
    assert table[(COURSE, IMPORTED)] == {"enrolledCount": 0.0, "completedCount": 0.0, "completionPercentage": 0.0}
