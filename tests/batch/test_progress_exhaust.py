"""SPEC §6.4 progress exhaust, on SQLite and PostgreSQL and on both engines: exact columns and values of a batch."""

from __future__ import annotations

import gc
import io
import tempfile
import threading
from typing import Any

import pytest
from sqlalchemy import insert

from learnagg.adapters.objectstore import ObjectStore
from learnagg.adapters.store.tables import course_batch, user_activity_agg, user_enrolments, users
from learnagg.batch.progress_exhaust import CHUNK_USERS, paused_gc, read_ahead, write_progress_report
from learnagg.batch.spark.reports import write_progress_spark
from learnagg.batch.spark.session import jdbc_for
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE
from learnagg.errors import NotFound
from tests.support import load

C, B, CHANNEL = "do_course", "batch-1", "org-1"
HEADER = (
    "Collection Id,Collection Name,Batch Id,Batch Name,User UUID,State,District,Org Name,School Id,School Name,"
    "Block Name,Cluster Name,User Type,User Sub Type,Declared Board,Enrolment Date,Completion Date,"
    "Certificate Status,Progress,Total Score"
)
ENROLLED = 1568917800000  # 2019-09-19 18:30 UTC: 20/09/2019 in Asia/Kolkata
COMPLETED = 1569004200000  # 2019-09-20 18:30 UTC: 21/09/2019 in Asia/Kolkata


def _leaf(identifier: str, content_type: str = "Resource", **extra: Any) -> dict[str, Any]:
    return {"identifier": identifier, "name": identifier, "mimeType": "video/mp4", "contentType": content_type, **extra}


def _course() -> dict[str, Any]:
    """Hierarchy order: do_a2, do_u1, do_a1, do_r1, do_q3, do_opt (assessment do_a2 before do_a1)."""
    unit = {
        "identifier": "do_u1",
        "name": "Unit",
        "mimeType": COLLECTION_MIME_TYPE,
        "children": [_leaf("do_a1", "SelfAssess"), _leaf("do_r1")],
    }
    children = [
        _leaf("do_a2", "SelfAssess"),
        unit,
        _leaf("do_q3", objectType="QuestionSet", primaryCategory="Practice Question Set"),
        _leaf("do_opt", optional=True),
    ]
    return {"identifier": C, "name": "Course, One", "channel": CHANNEL, "mimeType": COLLECTION_MIME_TYPE,
            "children": children}  # fmt: skip


def _insert(app, table, *rows: dict[str, Any]) -> None:
    # None values are left out so JSON columns stay SQL NULL.
    with app.store.write() as conn:
        conn.execute(insert(table), [{k: v for k, v in row.items() if v is not None} for row in rows])


def _user(app, user_id: str, root_org: str = CHANNEL, **extra: Any) -> None:
    _insert(app, users, {"id": user_id, "first_name": user_id, "root_org_id": root_org, "status": 1, **extra})


def _enrol(app, user_id: str, *, active: bool = True, enrolled_date: int | None = ENROLLED, **extra: Any) -> None:
    row = {"userid": user_id, "courseid": C, "batchid": B, "active": active, "enrolled_date": enrolled_date}
    _insert(app, user_enrolments, {**row, "status": 1, **extra})


def _scores(app, user_id: str, agg: dict[str, int] | None = None, aggregates: dict[str, float] | None = None) -> None:
    row = {"activity_type": "Course", "activity_id": C, "user_id": user_id, "context_id": f"cb:{B}"}
    _insert(app, user_activity_agg, {**row, "agg": agg, "aggregates": aggregates})


def _setup(app) -> None:
    load(app, _course())
    _insert(app, course_batch, {"courseid": C, "batchid": B, "name": "Batch One", "status": 1})
    profile = {"state": "Karnataka", "district": "Mysuru", "org_name": "Org One", "school_id": "s-1",
               "school_name": "School", "block": "Block", "cluster": "Cluster", "user_type": "teacher",
               "user_subtype": "hm", "board": '["CBSE","State"]'}  # fmt: skip
    _user(app, "u-1", **profile)
    _enrol(
        app,
        "u-1",
        contentstatus={"do_a1": 2, "do_r1": 2, "do_opt": 2, "do_a2": 1},
        issued_certificates=[{"name": "cert"}],
    )
    # Legacy integer scores in agg, shadowed by doubles in aggregates for do_a2 (SPEC §7 #10).
    _scores(
        app,
        "u-1",
        agg={"score:do_a1": 1, "max_score:do_a1": 2, "score:do_a2": 5, "max_score:do_a2": 10},
        aggregates={"score:do_a2": 0.07, "max_score:do_a2": 1.0, "attempts_count:do_a2": 1.0},
    )
    # Legacy enrolment date text, completed, no aggregate row: empty score cells.
    _user(app, "u-10", board="ICSE")
    _enrol(app, "u-10", enrolled_date=None, enrolleddate="2019-09-19 11:15:29:576+0000", completedon=COMPLETED)
    # Upper case sorts first (code-point order).
    _user(app, "U-9", root_org="org-2")
    _enrol(app, "U-9", certificates=[{"name": "old"}])
    _scores(app, "U-9", aggregates={"completedCount": 1.0})
    # Not in the report: inactive, no enrolment date, no users row.
    _user(app, "u-3")
    _enrol(app, "u-3", active=False)
    _scores(app, "u-3", aggregates={"score:do_q3": 1.0, "max_score:do_q3": 1.0})
    _user(app, "u-4")
    _enrol(app, "u-4", enrolled_date=None, enrolleddate="  ")
    _enrol(app, "u-5")


def _report(app, engine: str, **kwargs: Any) -> list[str]:
    out = io.StringIO()
    count = write(app, engine, B, out, **kwargs)
    text = out.getvalue()
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    assert count == len(lines) - 1
    return lines


def write(app, engine: str, batch_id: str, out: io.StringIO, *, chunk_users: int = CHUNK_USERS, **kwargs: Any) -> int:
    """The progress report of either engine (docs/spark.md); the spark engine's slices stand for the chunks."""
    if engine == "python":
        return write_progress_report(app, batch_id, out, chunk_users=chunk_users, **kwargs)
    app.settings.spark.slice_learners = chunk_users
    with tempfile.TemporaryDirectory() as parts:
        return write_progress_spark(
            app, jdbc_for(app.settings.database_url), ObjectStore(parts), batch_id, out, **kwargs
        )


PREFIX = 'do_course,"Course, One",BatchId_batch-1,Batch One,'
ROW_U9 = PREFIX + "U-9,,,,,,,,,,,20/09/2019,,Issued,0,,,"
ROW_U1 = (
    PREFIX + "u-1,Karnataka,Mysuru,Org One,s-1,School,Block,Cluster,teacher,hm,CBSE,20/09/2019,,Issued,40,36%,8%,50%"
)
ROW_U10 = PREFIX + "u-10,,,,,,,,,,ICSE,19/09/2019,21/09/2019,,100,,,"


def test_progress_report_columns_and_values(app, engine):
    _setup(app)
    # Progress of u-1: do_a1 and do_r1 completed (do_opt is optional), N = 5 leaves: floor(2/5*100 + 0.5) = 40.
    # Scores: do_a2 = 0.07 of 1.0 (aggregates wins over agg) → 8%; do_a1 = 1 of 2 (agg) → 50%;
    # total in hierarchy order (0.07 + 1.0) / (1.0 + 2.0) * 100 = 35.67 → 36%.
    assert _report(app, engine) == [HEADER + ",do_a2 - Score,do_a1 - Score", ROW_U9, ROW_U1, ROW_U10]


def test_same_report_whatever_the_chunk_size(app, engine):
    _setup(app)
    assert _report(app, engine, chunk_users=1) == _report(app, engine, chunk_users=2) == _report(app, engine)


def test_score_column_appears_only_when_a_reported_row_has_the_score(app, engine):
    _setup(app)
    app.settings.assessment.supported_primary_categories = ["Practice Question Set"]
    # do_q3 is now an assessment, but only the inactive u-3 has its score: no column.
    assert _report(app, engine)[0] == HEADER + ",do_a2 - Score,do_a1 - Score"
    _scores_u10 = {"score:do_q3": 0.5, "max_score:do_q3": 2.0}
    _scores(app, "u-10", aggregates=_scores_u10)
    lines = _report(app, engine)
    assert lines[0] == HEADER + ",do_a2 - Score,do_a1 - Score,do_q3 - Score"
    assert lines[3] == PREFIX + "u-10,,,,,,,,,,ICSE,19/09/2019,21/09/2019,,100,25%,,,25%"
    assert lines[2].endswith(",40,36%,8%,50%,")


def test_no_assessment_scores_gives_only_the_fixed_columns(app, engine):
    load(app, _course())
    _insert(app, course_batch, {"courseid": C, "batchid": B, "name": "Batch One", "status": 1})
    _user(app, "u-1")
    _enrol(app, "u-1")
    assert _report(app, engine) == [HEADER, PREFIX + "u-1,,,,,,,,,,,20/09/2019,,,0,"]


def test_channel_other_than_the_course_channel_keeps_only_its_users(app, engine):
    _setup(app)
    assert _report(app, engine, channel=CHANNEL) == _report(app, engine)
    assert _report(app, engine, channel="org-2") == [HEADER, ROW_U9[:-2]]  # no score in this user set: no column
    assert _report(app, engine, channel="org-3") == [HEADER]


def test_dates_follow_report_timezone(app, engine):
    _setup(app)
    app.settings.report.timezone = "UTC"
    lines = _report(app, engine)
    assert ",19/09/2019,,Issued,40," in lines[2]  # 2019-09-19 18:30 UTC
    assert ",19/09/2019,20/09/2019,,100," in lines[3]


def test_unknown_batch_is_not_found(app, engine):
    with pytest.raises(NotFound):
        write(app, engine, "nope", io.StringIO())


def test_batch_without_learners_writes_the_header(app, engine):
    load(app, _course())
    _insert(app, course_batch, {"courseid": C, "batchid": B, "name": "Batch One", "status": 1})
    assert _report(app, engine) == [HEADER]


def test_read_ahead_yields_in_order_and_raises_the_producers_error():
    def produce():
        yield from range(5)
        raise ValueError("boom")

    seen = []
    with pytest.raises(ValueError, match="boom"):
        for item in read_ahead(produce, 2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_read_ahead_closed_early_stops_the_producer():
    closed = threading.Event()

    def produce():
        try:
            yield from range(1000)
        finally:
            closed.set()

    items = read_ahead(produce, 1)
    assert next(items) == 0
    items.close()
    assert closed.wait(5)


def test_read_ahead_without_depth_iterates_in_place():
    assert list(read_ahead(lambda: iter([1, 2, 3]), 0)) == [1, 2, 3]


def test_the_collector_is_paused_for_a_report_only_on_the_main_thread():
    with paused_gc():
        assert not gc.isenabled()  # `learnagg report`, `learnagg exhaust run`
    assert gc.isenabled()
    seen: list[bool] = []

    def runner_inside_serve() -> None:
        with paused_gc():
            seen.append(gc.isenabled())

    thread = threading.Thread(target=runner_inside_serve)
    thread.start()
    thread.join()
    assert seen == [True] and gc.isenabled()
