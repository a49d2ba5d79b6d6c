"""`learnagg import`: cqlsh exports and archived files into our tables, exactly, all or nothing, on both backends."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Table, delete, func, insert, select

from learnagg.adapters.store import tables
from learnagg.batch.imports import import_file
from learnagg.domain.archive_csv import COLUMNS, ArchiveWriter
from learnagg.domain.cql_types import parse_type
from learnagg.errors import InputError
from tests.conftest import T
from tests.domain.test_cql_literals import QUESTION, TS, render
from tests.support import activity_rows, attempts, course, drain, golden_event, load, publish

# The reference tables as cqlsh exports them by default: key columns, then the others sorted by name.
REFERENCE = {
    "assessment_aggregator": [
        ("user_id", "text"),
        ("course_id", "text"),
        ("batch_id", "text"),
        ("content_id", "text"),
        ("attempt_id", "text"),
        ("created_on", "timestamp"),
        ("grand_total", "text"),
        ("last_attempted_on", "timestamp"),
        ("question", "list<frozen<question>>"),
        ("total_max_score", "double"),
        ("total_score", "double"),
        ("updated_on", "timestamp"),
    ],
    "user_activity_agg": [
        ("activity_type", "text"),
        ("activity_id", "text"),
        ("user_id", "text"),
        ("context_id", "text"),
        ("agg", "map<text, int>"),
        ("agg_details", "list<text>"),
        ("agg_last_updated", "map<text, timestamp>"),
        ("aggregates", "map<text, double>"),
    ],
}


def cqlsh_export(path: Path, layout: list[tuple[str, str]], rows: list[dict[str, Any]], header: bool = True) -> str:
    """Write rows as `COPY … TO` does: cqlsh literals, QUOTE '"', ESCAPE '\\', no doubled quotes."""
    out = io.StringIO()
    writer = csv.writer(out, quotechar='"', escapechar="\\", doublequote=False)
    if header:
        writer.writerow([name for name, _ in layout])
    for row in rows:
        writer.writerow([render(row.get(name), parse_type(t, {"question": QUESTION}), top=True) for name, t in layout])
    path.write_text(out.getvalue(), encoding="utf-8")
    return str(path)


def q(literal: str) -> str:
    """A field as cqlsh's csv writer quotes it: in quotes, with \\ before every quote and backslash."""
    return '"' + literal.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lines(*records: str | list[str]) -> str:
    """CSV text from records given as raw lines, or as raw pieces joined with commas (to keep lines short)."""
    return "".join((r if isinstance(r, str) else ",".join(r)) + "\n" for r in records)


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def rows(app, table: Table) -> list[dict[str, Any]]:
    with app.store.read() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()]


def count(app, table: Table) -> int:
    with app.store.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


COURSE = "do_2128415652377067521125"
CONTENT = "do_212686723743318016173"


def test_rows_written_by_the_jobs_round_trip_through_cqlsh_exports(app, tmp_path):
    load(app, course(COURSE, [CONTENT]))
    publish(app, "assess", [golden_event()])
    drain(app)
    before_attempts, before_activity = attempts(app), activity_rows(app)
    assert before_attempts and before_activity
    files = {
        name: cqlsh_export(tmp_path / f"{name}.csv", REFERENCE[name], rows(app, getattr(tables, name)))
        for name in REFERENCE
    }
    with app.store.write() as conn:
        conn.execute(delete(tables.assessment_aggregator))
        conn.execute(delete(tables.user_activity_agg))

    for name, file in files.items():
        result = import_file(app, name, file)
        assert (result.header, result.records, result.ignored_columns) == (True, 1, [])

    assert attempts(app) == before_attempts
    assert activity_rows(app) == before_activity


USER_ACTIVITY_AGG = lines(
    "activity_type,activity_id,user_id,context_id,agg,agg_details,agg_last_updated,aggregates",
    [
        "Course,do_c1,u1,cb:b1",
        q("{'completedCount': 2}"),
        q(
            r"""['{"attempt_id":"a1","content_id":"do_1","score":2.0,"max_score":4.0,"""
            r""""last_attempted_on":1637748930123,"type":"attempt_metrics"}']"""
        ),
        q("{'completedCount': '2021-11-24 10:15:30.123000+0000', 'score:do_1': '2021-11-24 10:15:30+0000'}"),
        q("{'attempts_count:do_1': 1, 'max_score:do_1': 4, 'score:do_1': 2.5}"),
    ],
    ["Course,do_c1,u2,cb:b1", q("{'completedCount': 1}"), ",,"],
)


def test_user_activity_agg_maps_and_details(app, tmp_path):
    result = import_file(app, "user_activity_agg", write(tmp_path, "uaa.csv", USER_ACTIVITY_AGG))
    assert (result.records, result.rows_written) == (2, 2)
    assert rows(app, tables.user_activity_agg) == [
        {
            "activity_type": "Course",
            "activity_id": "do_c1",
            "user_id": "u1",
            "context_id": "cb:b1",
            "agg": {"completedCount": 2},
            "agg_details": [
                '{"attempt_id":"a1","content_id":"do_1","score":2.0,"max_score":4.0,'
                '"last_attempted_on":1637748930123,"type":"attempt_metrics"}'
            ],
            "agg_last_updated": {"completedCount": TS, "score:do_1": TS - 123},
            "aggregates": {"attempts_count:do_1": 1.0, "max_score:do_1": 4.0, "score:do_1": 2.5},
        },
        {
            "activity_type": "Course",
            "activity_id": "do_c1",
            "user_id": "u2",
            "context_id": "cb:b1",
            "agg": {"completedCount": 1},
            "agg_details": None,
            "agg_last_updated": None,
            "aggregates": None,
        },
    ]


ASSESSMENT = lines(
    "user_id,course_id,batch_id,content_id,attempt_id,created_on,grand_total,last_attempted_on,question,"
    "total_max_score,total_score,updated_on",
    [
        "u1,do_c1,b1,do_1,a1,2021-11-24 10:15:30.123000+0000,1.5/2.0,2021-11-24 10:15:30+0000",
        # cqlsh shows a newline as \n and doubles a backslash: the JSON text {"text":"A\n"} prints as A\\n.
        q(
            r"""[{id: 'q1', assess_ts: '2021-11-24 10:15:30.123000+0000', max_score: 1, score: 1, type: 'mcq', """
            r"""title: 'It''s \n new', resvalues: [{'1': '{"text":"A\\n"}'}], params: [], description: null, """
            r"""duration: 2}, {id: 'q2', assess_ts: 1637748930000, max_score: 1, score: 0.5, type: 'mtf', """
            r"""title: null, resvalues: null, params: null, description: 'd', duration: null}]"""
        ),
        "2,1.5,1637748931000",
    ],
    "u1,do_c1,b1,do_1,,,,,,,,",
)


def test_assessment_aggregator_question_udts(app, tmp_path):
    import_file(app, "assessment_aggregator", write(tmp_path, "aa.csv", ASSESSMENT))
    first, second = rows(app, tables.assessment_aggregator)
    assert first == {  # the empty attempt_id sorts first: an empty key field is the empty string
        "user_id": "u1",
        "course_id": "do_c1",
        "batch_id": "b1",
        "content_id": "do_1",
        "attempt_id": "",
        "created_on": None,
        "updated_on": None,
        "last_attempted_on": None,
        "total_score": None,
        "total_max_score": None,
        "grand_total": None,
        "question": [],
    }
    assert second["question"] == [
        {
            "id": "q1",
            "assess_ts": TS,
            "max_score": 1.0,
            "score": 1.0,
            "type": "mcq",
            "title": "It's \n new",
            "description": None,
            "duration": 2.0,
            "resvalues": [{"1": '{"text":"A\\n"}'}],
            "params": [],
        },
        {
            "id": "q2",
            "assess_ts": TS - 123,
            "max_score": 1.0,
            "score": 0.5,
            "type": "mtf",
            "title": None,
            "description": "d",
            "duration": None,
            "resvalues": [],
            "params": [],
        },
    ]
    del second["question"]
    assert second == {
        "user_id": "u1",
        "course_id": "do_c1",
        "batch_id": "b1",
        "content_id": "do_1",
        "attempt_id": "a1",
        "created_on": TS,
        "updated_on": TS + 877,
        "last_attempted_on": TS - 123,
        "total_score": 1.5,
        "total_max_score": 2.0,
        "grand_total": "1.5/2.0",
    }


ENROLMENTS = lines(
    "userid,courseid,batchid,active,addedby,certificates,certstatus,completedon,completionpercentage,contentstatus,"
    "datetime,enrolled_date,enrolleddate,issued_certificates,lastcontentaccesstime,lastreadcontentid,"
    "lastreadcontentstatus,progress,status",
    [
        "u1,do_c1,b1,True,admin,,0,2021-11-24 10:15:30.123000+0000,100",
        q("{'do_1': 2, 'do_2': 1}"),
        ",2021-11-24 10:15:30+0000,2021-11-24 10:15:30:000+0000",
        q("[{'identifier': 'cert-1', 'name': 'Course completion', 'lastIssuedOn': '2021-11-25'}]"),
        ",do_2,1,1,2",
    ],
    "u2,do_c1,b1,False,,,,,,,,,,,,,,,0",
)


def test_user_enrolments(app, tmp_path):
    import_file(app, "user_enrolments", write(tmp_path, "ue.csv", ENROLMENTS))
    u1, u2 = rows(app, tables.user_enrolments)
    assert u1 == {
        "userid": "u1",
        "courseid": "do_c1",
        "batchid": "b1",
        "active": True,
        "addedby": "admin",
        "enrolleddate": "2021-11-24 10:15:30:000+0000",
        "lastreadcontentid": "do_2",
        "enrolled_date": TS - 123,
        "completedon": TS,
        "datetime": None,
        "lastcontentaccesstime": None,
        "status": 2,
        "lastreadcontentstatus": 1,
        "certstatus": 0,
        "progress": 1,
        "completionpercentage": 100,
        "contentstatus": {"do_1": 2, "do_2": 1},
        "certificates": None,
        "issued_certificates": [{"identifier": "cert-1", "name": "Course completion", "lastIssuedOn": "2021-11-25"}],
    }
    assert (u2["active"], u2["status"], u2["contentstatus"]) == (False, 0, None)


CONSUMPTION = lines(
    "userid,courseid,batchid,contentid,completedcount,completionpercentage,datetime,last_access_time,"
    "last_completed_time,last_updated_time,lastaccesstime,lastcompletedtime,lastupdatedtime,progress,"
    "progressdetails,status,viewcount",
    [
        "u1,do_c1,b1,do_1,1,100,2021-11-24 10:15:30.123000+0000,2021-11-24 10:15:30.123000+0000,,",
        "2021-11-24 10:15:30:123+0000,,,100",
        q('{"stageId":"s1"}'),
        "2,3",
    ],
)


def test_user_content_consumption(app, tmp_path):
    import_file(app, "user_content_consumption", write(tmp_path, "ucc.csv", CONSUMPTION))
    assert rows(app, tables.user_content_consumption) == [
        {
            "userid": "u1",
            "courseid": "do_c1",
            "batchid": "b1",
            "contentid": "do_1",
            "status": 2,
            "progress": 100,
            "viewcount": 3,
            "completedcount": 1,
            "last_access_time": TS,
            "last_completed_time": None,
            "last_updated_time": None,
            "datetime": TS,
            "lastaccesstime": "2021-11-24 10:15:30:123+0000",
            "lastcompletedtime": None,
            "lastupdatedtime": None,
            "completionpercentage": 100.0,
            "progressdetails": '{"stageId":"s1"}',
        }
    ]


BATCHES = lines(
    "courseid,batchid,cert_templates,createdby,createddate,createdfor,description,enddate,enrollmentenddate,"
    "enrollmenttype,hashtagid,mentors,name,startdate,status,start_date",
    [
        "do_c1,b1",
        q("""{'tmpl_1': {'identifier': 'tmpl_1', 'criteria': '{"enrollment":{"status":2}}'}}"""),
        "admin,2021-11-24 10:15:30:123+0000,['org1'],,2021-12-31,,open,b1,[],Batch 1,2021-11-01,1",
        "2021-11-02 00:00:00+0000",
    ],
)


def test_course_batch_reads_legacy_text_dates_when_the_timestamp_is_absent(app, tmp_path):
    result = import_file(app, "course_batch", write(tmp_path, "cb.csv", BATCHES))
    assert result.ignored_columns == ["hashtagid"]
    [batch] = rows(app, tables.course_batch)
    assert batch == {
        "courseid": "do_c1",
        "batchid": "b1",
        "name": "Batch 1",
        "description": None,
        "createdby": "admin",
        "enrollmenttype": "open",
        "status": 1,
        "start_date": 1635811200000,  # the timestamp column wins over startdate
        "end_date": 1640908800000,  # enddate 2021-12-31 at the start of the day (setting `timezone`, UTC)
        "enrollment_enddate": None,
        "created_date": TS,
        "updated_date": None,
        "createdfor": ["org1"],
        "mentors": [],
        "cert_templates": {"tmpl_1": {"identifier": "tmpl_1", "criteria": '{"enrollment":{"status":2}}'}},
    }


class RecordingCache:
    """A group cache that records which groups were invalidated."""

    enabled = True

    def __init__(self) -> None:
        self.invalidated: list[str] = []

    def get(self, key: str) -> bytes | None:
        return None

    def put(self, key: str, value: bytes) -> None:
        pass

    def invalidate_groups(self, group_ids) -> None:
        self.invalidated.extend(group_ids)


def test_importing_aggregates_invalidates_the_learners_cached_groups(app, tmp_path):
    with app.store.write() as conn:
        conn.execute(
            insert(tables.group_member), [{"group_id": "g-1", "user_id": "u1"}, {"group_id": "g-2", "user_id": "u9"}]
        )
    app.cache = RecordingCache()
    import_file(app, "user_activity_agg", write(tmp_path, "uaa.csv", USER_ACTIVITY_AGG))
    assert app.cache.invalidated == ["g-1"]  # SPEC §5.4 step 3: u1's group, not u9's


def test_re_import_is_idempotent(app, tmp_path):
    file = write(tmp_path, "uaa.csv", USER_ACTIVITY_AGG)
    import_file(app, "user_activity_agg", file)
    first = rows(app, tables.user_activity_agg)
    import_file(app, "user_activity_agg", file)
    assert rows(app, tables.user_activity_agg) == first


def test_only_the_files_columns_are_written(app, tmp_path):
    import_file(app, "user_activity_agg", write(tmp_path, "uaa.csv", USER_ACTIVITY_AGG))
    only_agg = "activity_type,activity_id,user_id,context_id,agg\nCourse,do_c1,u1,cb:b1,{'completedCount': 5}\n"
    import_file(app, "user_activity_agg", write(tmp_path, "agg.csv", only_agg))
    u1 = rows(app, tables.user_activity_agg)[0]
    assert u1["agg"] == {"completedCount": 5}
    assert u1["aggregates"] == {"attempts_count:do_1": 1.0, "max_score:do_1": 4.0, "score:do_1": 2.5}


def test_a_bad_line_names_its_line_and_writes_nothing(app, tmp_path):
    lines = USER_ACTIVITY_AGG.splitlines()
    bad = "Course,do_c1,u3,cb:b1,\"{'completedCount': 'x'}\",,,"
    file = write(tmp_path, "bad.csv", "\n".join([lines[0], lines[1], lines[2], "", bad]) + "\n")
    with pytest.raises(InputError) as caught:
        import_file(app, "user_activity_agg", file, chunk_rows=1)  # two chunks were flushed before line 5
    assert str(caught.value) == (f"{file}:5: column agg: expected an integer, found a quoted string at offset 19")
    assert count(app, tables.user_activity_agg) == 0


def test_a_multi_line_record_is_reported_at_its_first_line(app, tmp_path):
    header = "activity_type,activity_id,user_id,context_id,agg"
    file = write(tmp_path, "bad.csv", f"{header}\nCourse,do_c1,u1,cb:b1,\"{{\n'a': 1.5}}\"\n")
    with pytest.raises(InputError, match=r"bad\.csv:2: column agg: expected an integer"):
        import_file(app, "user_activity_agg", file)


def test_without_a_header_the_default_cqlsh_order_is_assumed(app, tmp_path):
    body = USER_ACTIVITY_AGG.split("\n", 1)[1]
    result = import_file(app, "user_activity_agg", write(tmp_path, "noheader.csv", body))
    assert (result.header, result.records) == (False, 2)
    with pytest.raises(InputError, match=r":1: expected 8 fields, found 5 \(no header row: see --columns\)"):
        import_file(app, "user_activity_agg", write(tmp_path, "short.csv", "Course,do_c1,u1,cb:b1,{}\n"))


def test_named_columns_for_a_file_without_header(app, tmp_path):
    file = write(tmp_path, "cols.csv", "u9,cb:b9,do_c9,Course,{'completedCount': 1}\n")
    import_file(
        app, "user_activity_agg", file, columns=["user_id", "context_id", "activity_id", "activity_type", "agg"]
    )
    [row] = rows(app, tables.user_activity_agg)
    assert (row["user_id"], row["activity_id"], row["agg"]) == ("u9", "do_c9", {"completedCount": 1})
    with pytest.raises(InputError, match="--columns: key column 'activity_type' is missing"):
        import_file(app, "user_activity_agg", file, columns=["user_id", "context_id", "activity_id", "agg"])


def test_a_key_repeated_in_the_file_keeps_the_later_line(app, tmp_path):
    header = "activity_type,activity_id,user_id,context_id,agg"
    body = "".join(f"Course,do_c1,u1,cb:b1,{{'completedCount': {n}}}\n" for n in range(5))
    result = import_file(app, "user_activity_agg", write(tmp_path, "dup.csv", f"{header}\n{body}"), chunk_rows=3)
    assert result.records == 5
    assert rows(app, tables.user_activity_agg)[0]["agg"] == {"completedCount": 4}


def test_gzipped_export(app, tmp_path):
    path = tmp_path / "uaa.csv.gz"
    path.write_bytes(gzip.compress(USER_ACTIVITY_AGG.encode()))
    assert import_file(app, "user_activity_agg", str(path)).records == 2


# --- archived assessment files (SPEC §6.2 step 3) --------------------------------------------------------------------

ARCHIVE_HEADER = [
    "course_id",
    "batch_id",
    "user_id",
    "content_id",
    "attempt_id",
    "created_on",
    "grand_total",
    "last_attempted_on",
    "total_max_score",
    "total_score",
    "updated_on",
    "question",
]
QUESTIONS = [
    {
        "id": "q1",
        "assess_ts": TS,
        "max_score": 1.0,
        "score": 1.0,
        "type": "mcq",
        "title": 'Say "hi"\n',
        "resvalues": [{"1": '{"text":"A\\n"}'}],
        "params": [{"1": '{"text":"A\\n"}'}],
        "description": "",
        "duration": 14.0,
    }
]


def archive(path: Path, *records: list[Any]) -> str:
    """A D5 CSV (SPEC §6.3), gzipped, as the archival job writes it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ARCHIVE_HEADER)
    writer.writerows(records)
    path.write_bytes(gzip.compress(out.getvalue().encode()))
    return str(path)


def archived(attempt: str, updated_on: int, score: float = 1.0) -> list[Any]:
    question = orjson.dumps(QUESTIONS).decode()
    return [
        "do_c1",
        "b1",
        "u1",
        "do_1",
        attempt,
        "2021-11-24 10:15:30.123",
        f"{score}/1.0",
        TS,
        1.0,
        score,
        updated_on,
        question,
    ]


def test_archived_file_is_imported_exactly(app, tmp_path):
    file = archive(tmp_path / "2021-47-1637748930123.csv.gz", archived("a1", TS + 1))
    result = import_file(app, "archived-assessments", file)
    assert (result.header, result.records) == (True, 1)
    assert rows(app, tables.assessment_aggregator) == [
        {
            "user_id": "u1",
            "course_id": "do_c1",
            "batch_id": "b1",
            "content_id": "do_1",
            "attempt_id": "a1",
            "created_on": TS,
            "updated_on": TS + 1,
            "last_attempted_on": TS,
            "total_score": 1.0,
            "total_max_score": 1.0,
            "grand_total": "1.0/1.0",
            "question": [
                {
                    k: QUESTIONS[0][k]
                    for k in (
                        "id",
                        "assess_ts",
                        "max_score",
                        "score",
                        "type",
                        "title",
                        "description",
                        "duration",
                        "resvalues",
                        "params",
                    )
                }
            ],
        }
    ]


def test_an_archived_row_never_replaces_a_later_live_row(app, tmp_path):
    import_file(app, "archived-assessments", archive(tmp_path / "live.csv.gz", archived("a1", T, score=0.5)))
    file = archive(tmp_path / "old.csv.gz", archived("a1", T - 1000, score=1.0), archived("a2", T - 1000))
    import_file(app, "archived-assessments", file)
    by_attempt = {r["attempt_id"]: r for r in rows(app, tables.assessment_aggregator)}
    assert (by_attempt["a1"]["total_score"], by_attempt["a1"]["updated_on"]) == (0.5, T)  # SPEC §7 #11
    assert by_attempt["a2"]["updated_on"] == T - 1000


def test_files_of_the_archival_job_import_back_into_the_same_rows(app, tmp_path):
    load(app, course(COURSE, [CONTENT]))
    publish(app, "assess", [golden_event()])
    drain(app)
    before = attempts(app)
    path = tmp_path / "archive.csv.gz"
    with path.open("wb") as out:
        writer = ArchiveWriter(out)
        for row in before:
            writer.write([row[c] for c in COLUMNS])
        writer.close()
    with app.store.write() as conn:
        conn.execute(delete(tables.assessment_aggregator))
    assert import_file(app, "archived-assessments", str(path)).records == len(before)
    assert attempts(app) == before


def test_archived_timestamps_as_text(app, tmp_path):
    record = archived("a1", TS)
    record[5], record[7], record[10] = "2021-11-24T10:15:30.123Z", "2021-11-24 10:15:30:123+0000", str(TS)
    import_file(app, "archived-assessments", archive(tmp_path / "text.csv.gz", record))
    [row] = rows(app, tables.assessment_aggregator)
    assert (row["created_on"], row["last_attempted_on"], row["updated_on"]) == (TS, TS, TS)


def test_a_corrupt_archived_question_names_its_line(app, tmp_path):
    bad = archived("a2", TS)
    bad[-1] = '[{"id": "q1", "colour": "red"}]'
    file = archive(tmp_path / "bad.csv.gz", archived("a1", TS), bad)
    with pytest.raises(InputError, match=r"bad\.csv\.gz:3: column question: question\[0\] has unknown field 'colour'"):
        import_file(app, "archived-assessments", file)
    assert count(app, tables.assessment_aggregator) == 0


def test_a_truncated_gzip_is_refused(app, tmp_path):
    path = tmp_path / "cut.csv.gz"
    full = gzip.compress(("\n".join([",".join(ARCHIVE_HEADER)] * 50)).encode())
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match=r"cut\.csv\.gz:"):
        import_file(app, "archived-assessments", str(path))


def test_unknown_table_and_missing_file(app, tmp_path):
    with pytest.raises(InputError, match="unknown table 'users'"):
        import_file(app, "users", str(tmp_path / "x.csv"))
    with pytest.raises(InputError, match="no such file"):
        import_file(app, "course_batch", str(tmp_path / "missing.csv"))
