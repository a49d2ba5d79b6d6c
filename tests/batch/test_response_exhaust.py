"""SPEC §6.5 response exhaust, on SQLite and PostgreSQL and on both engines: the golden attempt, live/archived
de-duplication, order."""

from __future__ import annotations

import csv
import io
import tempfile
from typing import Any

import pytest
from sqlalchemy import insert

from learnagg.adapters.objectstore import ObjectStore
from learnagg.adapters.store.tables import assessment_aggregator, course_batch, user_enrolments, users
from learnagg.batch.response_exhaust import CHUNK_USERS, write_response_report
from learnagg.batch.spark.reports import write_response_spark
from learnagg.batch.spark.session import jdbc_for
from learnagg.domain import archive_csv as ac
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE
from learnagg.errors import NotFound
from tests.conftest import T
from tests.support import drain, golden_event, load, publish

COURSE = "do_2128415652377067521125"
CONTENT = "do_212686723743318016173"
USER = "ff1c4bdf-27e2-49bc-a53f-6e304bb3a87f"
BATCH = "012846671379595264119"
ATTEMPT = "8cd87e24df268ad09a8b0060c0a40271"
MCQ, MTF = "801ae93c-8807-4be5-8853-dd49362d8776", "2bc922e7-985e-486a-ae23-4ba9a1c67edc"
HEADER = (
    "Collection Id,Collection Name,Batch Id,Batch Name,User UUID,QuestionSet Id,QuestionSet Title,Attempt Id,"
    "Attempted On,Question Id,Question Type,Question Title,Question Description,Question Duration,Question Score,"
    "Question Max Score,Question Options,Question Response"
)
HEAD = [COURSE, "Golden course", f"BatchId_{BATCH}", "Golden batch"]
MCQ_OPTIONS = (
    "[{'1':'{'text':'World Health Organizaton'}'},{'2':'{'text':'Work Heavy Organization'}'},"
    "{'3':'{'text':'Work hell Organization'}'},{'4':'{'text':'None of The above'}'},{'answer':'{'correct':['1']}'}]"
)
MTF_RESPONSE = (
    "[{'lhs':'[{'1':'{'text':'1'}'},{'2':'{'text':'2'}'},{'3':'{'text':'3'}'}]'},"
    "{'rhs':'[{'1':'{'text':'3'}'},{'2':'{'text':'2'}'},{'3':'{'text':'1'}'}]'}]"
)


def _insert(app, table, *rows: dict[str, Any]) -> None:
    with app.store.write() as conn:
        conn.execute(insert(table), [{k: v for k, v in row.items() if v is not None} for row in rows])


def _learner(app, user_id: str, *, active: bool = True, user_row: bool = True, root_org: str = "org-1") -> None:
    if user_row:
        _insert(app, users, {"id": user_id, "first_name": user_id, "root_org_id": root_org, "status": 1})
    enrolment = {"userid": user_id, "courseid": COURSE, "batchid": BATCH, "active": active, "enrolled_date": T}
    _insert(app, user_enrolments, {**enrolment, "status": 1})


def _setup(app) -> None:
    """The SPEC §3.6 golden attempt, processed by the real aggregator, for an enrolled learner."""
    leaf = {"identifier": CONTENT, "name": "WHO quiz", "mimeType": "application/vnd.ekstep.ecml-archive",
            "contentType": "SelfAssess"}  # fmt: skip
    load(app, {"identifier": COURSE, "name": "Golden course", "mimeType": COLLECTION_MIME_TYPE, "children": [leaf]})
    _insert(app, course_batch, {"courseid": COURSE, "batchid": BATCH, "name": "Golden batch", "status": 1})
    _learner(app, USER)
    publish(app, "assess", [golden_event()])
    drain(app)


def write_archive(blobs: ObjectStore, name: str, rows: list[dict[str, Any]]) -> None:
    """An archived file of the golden batch, written as archival writes it."""
    key = f"archived-data/{BATCH}_{COURSE}/{name}.csv.gz"
    with blobs.open_write(key) as out:
        writer = ac.ArchiveWriter(out)
        for row in rows:
            writer.write([row[c] if c != "created_on" else 1577836800000 for c in ac.COLUMNS])
        writer.close()


def write(
    app,
    engine: str,
    batch_id: str,
    out: io.StringIO,
    *,
    archived: list[dict[str, Any]] | None = None,
    chunk_users: int = CHUNK_USERS,
    **kwargs: Any,
) -> int:
    """The response report of either engine (docs/spark.md). The python engine takes the archived rows as given;
    the spark engine reads them from an archive file, as it does in a run; its slices stand for the chunks."""
    if engine == "python":
        return write_response_report(app, batch_id, out, archived=archived or (), chunk_users=chunk_users, **kwargs)
    app.settings.spark.slice_learners = chunk_users
    with tempfile.TemporaryDirectory() as folder:
        blobs = ObjectStore(folder)
        if archived:
            write_archive(blobs, "2020-1-1", archived)
        return write_response_spark(app, jdbc_for(app.settings.database_url), blobs, batch_id, COURSE, out, **kwargs)


def _report(app, engine: str, **kwargs: Any) -> tuple[str, list[list[str]]]:
    out = io.StringIO()
    count = write(app, engine, BATCH, out, **kwargs)
    text = out.getvalue()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert count == len(rows) - 1
    return text, rows


def _question(qid: str, score: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {"id": qid, "assess_ts": 1, "max_score": 1.0, "score": score, "type": "mcq", "title": f"Q {qid}",
            "resvalues": [], "params": [], "description": "d", "duration": 2.5, **extra}  # fmt: skip


def _archived(user_id: str, attempt_id: str, questions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"course_id": COURSE, "batch_id": BATCH, "user_id": user_id, "content_id": CONTENT,
            "attempt_id": attempt_id, "created_on": "2020-01-01 00:00:00.000", "grand_total": "1.0/1.0",
            "last_attempted_on": 1600000000000, "total_max_score": 1.0, "total_score": 1.0,
            "updated_on": 1600000000000, "question": questions, **extra}  # fmt: skip


def _live(app, user_id: str, attempt_id: str, questions: list[dict[str, Any]] | None, content_id: str = CONTENT):
    row = {"user_id": user_id, "course_id": COURSE, "batch_id": BATCH, "content_id": content_id,
           "attempt_id": attempt_id, "created_on": T, "updated_on": T, "last_attempted_on": 1600000000000,
           "total_score": 1.0, "total_max_score": 1.0, "grand_total": "1.0/1.0", "question": questions}  # fmt: skip
    _insert(app, assessment_aggregator, row)


def test_golden_attempt_rows(app, engine):
    _setup(app)
    text, rows = _report(app, engine)
    assert text.split("\n")[0] == HEADER
    lead = [*HEAD, USER, CONTENT, "WHO quiz", ATTEMPT, "2019-09-19 16:45:29"]  # 1568891729576 in Asia/Kolkata
    assert rows[1:] == [
        [*lead, MTF, "mtf", "MTF 3\n", "", "24.0", "0.33", "1.0", rows[1][16], MTF_RESPONSE],
        [*lead, MCQ, "mcq", "What is the Full form of WHO..?\n", "", "14.0", "1.0", "1.0", MCQ_OPTIONS,
         "[{'1':'{'text':'World Health Organizaton'}'}]"],
    ]  # fmt: skip
    assert rows[1][16].startswith("[{'lhs':'[{'1':'{'text':'1'}'}")
    # The D5 text: the title's LF and the options' commas are quoted, the response (no comma) is not.
    assert text.endswith(f",\"{MCQ_OPTIONS}\",[{{'1':'{{'text':'World Health Organizaton'}}'}}]\n")
    assert '"What is the Full form of WHO..?\n"' in text


def test_live_row_wins_over_archived_and_archived_only_questions_are_kept(app, engine):
    _setup(app)
    archived = [
        # Same attempt and questions as live, other values: the live rows win.
        _archived(USER, ATTEMPT, [_question(MCQ, 0.0), _question(MTF, 0.0), _question("zz-archived-only")]),
        # Another batch: ignored.
        _archived(USER, "other-batch-attempt", [_question("q")], batch_id="other"),
    ]
    _, rows = _report(app, engine, archived=archived)
    assert [(r[9], r[14], r[8]) for r in rows[1:]] == [
        (MTF, "0.33", "2019-09-19 16:45:29"),
        (MCQ, "1.0", "2019-09-19 16:45:29"),
        ("zz-archived-only", "1.0", "2020-09-13 17:56:40"),  # 1600000000000 in Asia/Kolkata
    ]
    assert rows[3][13] == "3.0"  # 2.5 rounded half-up


def test_only_active_enrolled_learners_are_reported(app, engine):
    _setup(app)
    _learner(app, "inactive", active=False)
    _learner(app, "no-user-row", user_row=False)
    _insert(app, users, {"id": "not-enrolled", "status": 1})
    for user in ("inactive", "no-user-row", "not-enrolled"):
        _live(app, user, "live-attempt", [_question("q1")])
    archived = [_archived(u, "old-attempt", [_question("q1")]) for u in ("inactive", "no-user-row", "not-enrolled")]
    _, rows = _report(app, engine, archived=archived)
    assert {r[4] for r in rows[1:]} == {USER}


def test_rows_sorted_by_user_questionset_attempt_and_question(app, engine):
    _setup(app)
    for user in ("B-user", "a-user", "b-user"):
        _learner(app, user)
    _live(app, "b-user", "att-2", [_question("q2"), _question("q1")])
    _live(app, "b-user", "att-1", [_question("q9")], content_id="do_other")
    archived = [  # any order
        _archived("b-user", "att-1", [_question("q3")]),
        _archived("a-user", "att-5", [_question("q1")]),
        _archived("B-user", "att-0", [_question("q1")]),
        _archived("zz-not-enrolled", "att-0", [_question("q1")]),
    ]
    _, rows = _report(app, engine, archived=archived)
    assert [(r[4], r[5], r[7], r[9]) for r in rows[1:]] == [
        ("B-user", CONTENT, "att-0", "q1"),  # code-point order: upper case first
        ("a-user", CONTENT, "att-5", "q1"),
        ("b-user", CONTENT, "att-1", "q3"),
        ("b-user", CONTENT, "att-2", "q1"),
        ("b-user", CONTENT, "att-2", "q2"),
        ("b-user", "do_other", "att-1", "q9"),
        (USER, CONTENT, ATTEMPT, MTF),
        (USER, CONTENT, ATTEMPT, MCQ),
    ]
    assert rows[6][6] == ""  # unknown content: empty title
    assert _report(app, engine, archived=archived, chunk_users=1) == _report(app, engine, archived=archived)


def test_attempt_without_questions_gives_one_row_with_empty_question_fields(app, engine):
    _setup(app)
    _learner(app, "u-empty")
    _live(app, "u-empty", "att-live", [])
    archived = [_archived("u-empty", "att-archived", [])]
    text, rows = _report(app, engine, archived=archived)
    assert [r[7:] for r in rows[1:] if r[4] == "u-empty"] == [
        ["att-archived", "2020-09-13 17:56:40", *[""] * 9],
        ["att-live", "2020-09-13 17:56:40", *[""] * 9],
    ]
    assert f"u-empty,{CONTENT},WHO quiz,att-live,2020-09-13 17:56:40,,,,,,,,,\n" in text


def test_channel_other_than_the_course_channel_keeps_only_its_users(app, engine):
    _setup(app)
    _learner(app, "org2-user", root_org="org-2")
    _live(app, "org2-user", "att", [_question("q1")])
    _, rows = _report(app, engine, channel="org-2")
    assert [r[4] for r in rows[1:]] == ["org2-user"]


def test_unknown_batch_is_not_found(app, engine):
    with pytest.raises(NotFound):
        write(app, engine, "nope", io.StringIO())
