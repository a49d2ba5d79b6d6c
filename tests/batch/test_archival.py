"""SPEC §6.2 and §7 #3 on SQLite and PostgreSQL: archive → verify → delete keeps every learner's scores, with the
archives written by either engine (the spark engine on PostgreSQL)."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select, update

from learnagg import bootstrap
from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.store import scores
from learnagg.adapters.store.tables import archival_metadata, group_member, user_activity_agg
from learnagg.batch.archival import ArchivalScope, ArchiveSummary, run_archive
from learnagg.batch.archival_delete import run_delete
from learnagg.batch.spark.archival import run_archive_spark
from learnagg.domain import archive_csv as ac
from learnagg.errors import ConfigurationError, InputError
from learnagg.services.score_recompute import recompute_scores
from tests.conftest import T
from tests.support import activity_rows, attempts, drain, golden_event, load, publish

COURSE, BATCH = "do_course", "batch-1"


def at(*parts: int) -> int:
    return ac.to_epoch_ms(datetime(*parts, tzinfo=UTC))


def attempt(
    user: str,
    content: str,
    attempt_id: str,
    updated_on: int,
    score: float,
    *,
    course: str = COURSE,
    batch: str = BATCH,
    title: str = "Q1",
) -> dict[str, Any]:
    """One `assessment_aggregator` row as the aggregator writes it."""
    question = {
        "id": "q1",
        "assess_ts": updated_on - 1000,
        "max_score": 5.0,
        "score": score,
        "type": "mcq",
        "title": title,
        "description": None,
        "duration": 3.0,
        "resvalues": [{"1": '{"text":"A"}'}],
        "params": [{"1": '{"text":"A"}'}],
    }
    return {
        "user_id": user,
        "course_id": course,
        "batch_id": batch,
        "content_id": content,
        "attempt_id": attempt_id,
        "created_on": updated_on,
        "updated_on": updated_on,
        "last_attempted_on": updated_on - 500,
        "total_score": score,
        "total_max_score": 5.0,
        "grand_total": f"{score}/5.0",
        "question": [question],
    }


def seed(app: bootstrap.App, rows: list[dict[str, Any]], now: int = T) -> None:
    """Store attempts and compute every learner's score metrics from them (as the aggregator would)."""
    with app.store.write() as conn:
        scores.write_attempts(conn, app.store.dialect, rows)
        learners = {(r["course_id"], r["batch_id"], r["user_id"]) for r in rows}
        s = app.settings
        recompute_scores(conn, app.store.dialect, learners, settings=s.assessment, legacy=s.legacy, now=now)


def snapshot(app: bootstrap.App) -> dict[tuple[str, str, str], tuple[Any, Any]]:
    """Every learner's score metrics and attempt history (timestamps of the last write left out)."""
    return {
        (r["activity_id"], r["user_id"], r["context_id"]): (r["aggregates"], r["agg_details"])
        for r in activity_rows(app)
    }


def metadata(app: bootstrap.App) -> list[dict[str, Any]]:
    with app.store.read() as conn:
        stmt = select(archival_metadata).order_by(archival_metadata.c.collection_id, archival_metadata.c.request_data)
        return [dict(r) for r in conn.execute(stmt).mappings()]


def live_keys(app: bootstrap.App) -> set[tuple[str, ...]]:
    return {(r["user_id"], r["content_id"], r["attempt_id"]) for r in attempts(app)}


@pytest.fixture
def archive(engine: str) -> Callable[..., ArchiveSummary]:
    """`archive run` on the engine under test (docs/spark.md): both write the same files and metadata rows."""
    return run_archive_spark if engine == "spark" else run_archive


@pytest.fixture
def blobs(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "blobs"))


# Three partitions of one batch around a new year (2020-W53 twice, 2021-W1) and one of another course's batch.
WEEKS = {
    "2020-53": at(2020, 12, 30, 10),
    "2021-53": at(2021, 1, 2, 10),
    "2021-1": at(2021, 1, 5, 10),
}


def sample() -> list[dict[str, Any]]:
    rows = []
    for i, (name, ts) in enumerate(WEEKS.items()):
        for user in ("Zed", "abe", "émile"):
            rows.append(attempt(user, "c1", f"{name}-a", ts + i, 1.0 + i))
            rows.append(attempt(user, "c2", f"{name}-b", ts + 60_000, 4.0 - i))
    rows.append(attempt("abe", "c9", "other", at(2021, 1, 6), 2.5, course="do_other", batch="batch-2"))
    return rows


def test_one_file_per_course_batch_calendar_year_and_iso_week(app, blobs, archive):
    seed(app, sample())
    summary = archive(app, blobs)
    assert (summary.partitions, summary.archived, summary.failed, summary.rows) == (4, 4, 0, 19)
    expected = [
        f"archived-data/batch-1_do_course/2020-53-{T}.csv.gz",
        f"archived-data/batch-1_do_course/2021-1-{T}.csv.gz",
        f"archived-data/batch-1_do_course/2021-53-{T}.csv.gz",
        f"archived-data/batch-2_do_other/2021-1-{T}.csv.gz",
    ]
    assert blobs.list_keys() == expected
    assert blobs.glob("archived-data/batch-1_do_course/*-*-*.csv.gz") == expected[:3]
    rows = {(m["request_data"]["year"], m["request_data"]["week"], m["batch_id"]): m for m in metadata(app)}
    first = rows[(2020, 53, BATCH)]
    assert first["request_id"] == ac.md5u(f"assessment-archival:{COURSE}:{BATCH}:2020:53")
    assert first["request_data"] == {
        "archivalTable": "assessment_aggregator",
        "batchId": BATCH,
        "collectionId": COURSE,
        "year": 2020,
        "week": 53,
    }
    assert (first["resource_type"], first["job_id"]) == ("assessment", "assessment-archival")
    assert (first["archival_status"], first["deletion_status"], first["iteration"]) == ("SUCCESS", None, 0)
    assert (first["archival_date"], first["blob_url"], first["row_count"]) == (T, [expected[0]], 6)
    with blobs.open_read(expected[0]) as f:
        assert first["checksum"] == hashlib.sha256(gzip.decompress(f.read())).hexdigest()
    assert rows[(2021, 53, BATCH)]["row_count"] == 6 and rows[(2021, 1, "batch-2")]["row_count"] == 1


def test_the_file_is_sorted_by_user_content_attempt_in_code_point_order(app, blobs, archive):
    seed(app, sample())
    archive(app, blobs)
    with blobs.open_read(f"archived-data/batch-1_do_course/2021-1-{T}.csv.gz") as f:
        lines = gzip.decompress(f.read()).decode().splitlines()
    assert lines[0] == ",".join(ac.COLUMNS)
    assert [line.split(",")[2:5] for line in lines[1:]] == [
        ["Zed", "c1", "2021-1-a"],
        ["Zed", "c2", "2021-1-b"],
        ["abe", "c1", "2021-1-a"],
        ["abe", "c2", "2021-1-b"],
        ["émile", "c1", "2021-1-a"],
        ["émile", "c2", "2021-1-b"],
    ]
    ts = WEEKS["2021-1"] + 2
    assert lines[1] == (
        f"do_course,batch-1,Zed,c1,2021-1-a,2021-01-05 10:00:00.002,3.0/5.0,{ts - 500},5.0,3.0,{ts},"
        f'"[{{""id"":""q1"",""assess_ts"":{ts - 1000},""max_score"":5.0,""score"":3.0,""type"":""mcq"",'
        '""title"":""Q1"",""resvalues"":[{""1"":""{\\""text\\"":\\""A\\""}""}],'
        '""params"":[{""1"":""{\\""text\\"":\\""A\\""}""}],""description"":null,""duration"":3.0}]"'
    )


def test_a_rerun_archives_nothing_new_and_later_rows_of_an_archived_week_stay_live(app, blobs, archive):
    seed(app, sample())
    archive(app, blobs)
    seed(app, [attempt("late", "c1", "late-a", WEEKS["2021-1"] + 5, 2.0)])
    app.clock.now = T + 1000
    again = archive(app, blobs)
    assert (again.partitions, again.archived, again.skipped_archived, again.rows) == (4, 0, 4, 0)
    assert len(blobs.list_keys()) == 4
    run_delete(app, blobs)
    assert live_keys(app) == {("late", "c1", "late-a")}


def test_archive_verify_delete_keeps_best_scores_attempt_counts_and_agg_details(app, blobs, archive):
    rows = sample()
    seed(app, rows)
    # History the live table no longer holds: a legacy entry and an opaque one survive too (SPEC §2.1).
    with app.store.write() as conn:
        stored = conn.execute(
            select(user_activity_agg.c.agg_details).where(
                user_activity_agg.c.user_id == "abe", user_activity_agg.c.activity_id == COURSE
            )
        ).scalar_one()
        legacy = '{"attempt_id":"old","content_id":"c1","score":5.0,"max_score":5.0,"attempted_on":1568891729}'
        conn.execute(
            update(user_activity_agg)
            .where(user_activity_agg.c.user_id == "abe", user_activity_agg.c.activity_id == COURSE)
            .values(agg_details=[legacy, *stored, "not json"])
        )
    seed(app, [])  # nothing changes
    with app.store.write() as conn:
        s = app.settings
        recompute_scores(
            conn, app.store.dialect, {(COURSE, BATCH, "abe")}, settings=s.assessment, legacy=s.legacy, now=T
        )
    before = snapshot(app)
    assert before[(COURSE, "abe", f"cb:{BATCH}")][0]["score:c1"] == 5.0  # the legacy attempt is the best

    assert archive(app, blobs).archived == 4
    app.clock.now = T + 5000
    summary = run_delete(app, blobs)
    assert (summary.files, summary.deleted, summary.failed) == (4, 4, 0)
    assert (summary.rows_read, summary.rows_deleted, summary.rows_kept) == (19, 19, 0)
    assert attempts(app) == []
    assert snapshot(app) == before
    for m in metadata(app):
        assert (m["deletion_status"], m["completion_date"], m["iteration"]) == ("SUCCESS", T + 5000, 0)
    assert run_delete(app, blobs).files == 0  # nothing left to delete


def test_rows_rewritten_or_added_after_archiving_survive_deletion(app, blobs, archive):
    seed(app, sample())
    archive(app, blobs)
    rewritten = attempt("abe", "c1", "2021-1-a", WEEKS["2021-1"] + 99, 0.5)  # the same key, a new updated_on
    added = attempt("abe", "c1", "2021-1-z", WEEKS["2021-1"] + 100, 1.5)
    seed(app, [rewritten, added], now=T + 1)
    summary = run_delete(app, blobs)
    assert (summary.rows_deleted, summary.rows_kept) == (18, 1)
    assert live_keys(app) == {("abe", "c1", "2021-1-a"), ("abe", "c1", "2021-1-z")}
    [row] = [r for r in attempts(app) if r["attempt_id"] == "2021-1-a"]
    assert row["total_score"] == 0.5  # the rewrite, not the archived version
    details = [orjson.loads(d) for d in snapshot(app)[(COURSE, "abe", f"cb:{BATCH}")][1]]
    assert {(d["content_id"], d["attempt_id"]) for d in details} >= {("c1", "2021-1-a"), ("c1", "2021-53-a")}
    assert next(d for d in details if d["attempt_id"] == "2021-1-a")["score"] == 0.5  # live rows win (S3)


def test_the_golden_attempt_is_archived_deleted_and_its_best_score_kept(app, blobs, archive):
    event = golden_event()
    load(
        app,
        {
            "identifier": event["courseId"],
            "name": "c",
            "mimeType": "application/vnd.ekstep.content-collection",
            "children": [
                {
                    "identifier": event["contentId"],
                    "name": "a",
                    "mimeType": "application/vnd.ekstep.ecml-archive",
                    "contentType": "SelfAssess",
                }
            ],
        },
    )
    publish(app, "assess", [event])
    drain(app)
    before = snapshot(app)
    assert archive(app, blobs).rows == 1
    assert run_delete(app, blobs).rows_deleted == 1
    assert attempts(app) == [] and snapshot(app) == before
    # A later, lower attempt of the same content: the archived best (1.33 of 2.0) still wins (SPEC §7 #3).
    lower = {
        **event,
        "attemptId": "later",
        "assessmentTs": event["assessmentTs"] + 10_000,
        "events": event["events"][:1],
    }
    app.clock.now = T + 60_000
    publish(app, "assess", [lower])
    drain(app)
    [row] = activity_rows(app, activity_id=event["courseId"])
    assert row["aggregates"][f"score:{event['contentId']}"] == 1.33
    assert row["aggregates"][f"attempts_count:{event['contentId']}"] == 2.0


def test_scope_limits_the_batches_and_unknown_batches_are_refused(app, blobs, archive):
    seed(app, sample())
    with pytest.raises(InputError, match="unknown batch 'nope'"):
        archive(app, blobs, ArchivalScope(batch_ids=("batch-2", "nope")))
    with pytest.raises(InputError, match="unknown batch 'batch-2' of collection 'do_course'"):
        archive(app, blobs, ArchivalScope("batch-2", COURSE))
    with pytest.raises(InputError, match="go together"):
        archive(app, blobs, ArchivalScope(batch_id="batch-2"))
    assert metadata(app) == [] and blobs.list_keys() == []
    assert archive(app, blobs, ArchivalScope(batch_ids=("batch-2",))).archived == 1
    assert archive(app, blobs, ArchivalScope(BATCH, COURSE)).archived == 3
    assert run_delete(app, blobs, ArchivalScope("batch-2", "do_other")).rows_deleted == 1
    assert len(attempts(app)) == 18


def test_before_archives_only_whole_partitions_ending_by_the_date(app, blobs, archive):
    seed(app, sample())
    summary = archive(app, blobs, before=at(2021, 1, 2, 12))  # cut at 1 January: 2020-W53 only
    assert [(m["request_data"]["year"], m["request_data"]["week"]) for m in metadata(app)] == [(2020, 53)]
    assert summary.rows == 6
    assert archive(app, blobs, before=at(2021, 1, 4)).archived == 1  # (2021, 53) ends on Monday 4 January


def test_an_upload_failure_marks_the_partition_failed_and_a_rerun_completes(app, blobs, tmp_path):
    seed(app, sample())

    class Broken(ObjectStore):
        def open_write(self, key):  # type: ignore[override]
            raise OSError("disk full")

    summary = run_archive(app, Broken(str(tmp_path / "blobs")), ArchivalScope(batch_ids=("batch-2",)))
    assert (summary.failed, summary.archived) == (1, 0)
    assert summary.failures[0]["error"] == "OSError: disk full"
    [m] = metadata(app)
    assert (m["archival_status"], m["iteration"], m["err_message"], m["archival_date"]) == (
        "FAILED",
        1,
        "OSError: disk full",
        T,
    )
    assert blobs.list_keys() == []
    assert run_delete(app, blobs).files == 0  # nothing archived, nothing to delete
    assert run_archive(app, blobs, ArchivalScope(batch_ids=("batch-2",))).archived == 1
    [m] = metadata(app)
    assert (m["archival_status"], m["iteration"]) == ("SUCCESS", 1)


def test_partitions_that_failed_three_times_are_skipped(app, blobs, archive):
    seed(app, sample())
    archive(app, blobs, ArchivalScope(batch_ids=("batch-2",)))
    with app.store.write() as conn:
        conn.execute(update(archival_metadata).values(archival_status="FAILED", iteration=3))
    summary = archive(app, blobs, ArchivalScope(batch_ids=("batch-2",)))
    assert (summary.skipped_iterations, summary.archived) == (1, 0)


def test_a_killed_upload_leaves_a_row_whose_file_the_rerun_replaces(app, blobs, archive):
    seed(app, sample())
    # What a run killed during the upload leaves: the metadata row naming its key, and a partial upload.
    stale = f"archived-data/batch-2_do_other/2021-1-{T - 1}.csv.gz"
    with app.store.write() as conn:
        conn.execute(
            insert(archival_metadata).values(
                request_id=ac.request_id("do_other", "batch-2", 2021, 1),
                batch_id="batch-2",
                collection_id="do_other",
                blob_url=[stale],
                iteration=0,
            )
        )
    Path(blobs.path(stale)).parent.mkdir(parents=True)
    Path(blobs.path(stale)).write_bytes(b"complete but never recorded")
    Path(blobs.path(stale) + ".part").write_bytes(b"half")
    assert blobs.list_keys() == [stale]  # an unfinished upload is never listed
    archive(app, blobs, ArchivalScope(batch_ids=("batch-2",)))
    assert blobs.list_keys() == [f"archived-data/batch-2_do_other/2021-1-{T}.csv.gz"]
    assert not Path(blobs.path(stale) + ".part").exists()
    [m] = metadata(app)
    assert (m["archival_status"], m["row_count"]) == ("SUCCESS", 1)


def corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:30])


def corrupt_not_gzip(path: Path) -> None:
    path.write_bytes(b"course_id,batch_id\n")


def corrupt_tamper(path: Path) -> None:
    text = gzip.decompress(path.read_bytes())
    tampered = text.replace(b",5.0,3.0,", b",5.0,5.0,")  # a better total_score
    assert tampered != text
    path.write_bytes(gzip.compress(tampered))


def corrupt_extra_row(path: Path) -> None:
    text = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(text + text.split(b"\n")[1] + b"\n"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.unlink(), "no such object"),
        (corrupt_truncate, "corrupt archive"),
        (corrupt_not_gzip, "corrupt archive"),
        (corrupt_tamper, "checksum mismatch"),
        (corrupt_extra_row, "checksum mismatch"),
    ],
    ids=["missing", "truncated", "not-gzip", "tampered", "extra-row"],
)
def test_a_missing_or_damaged_archive_fails_deletion_and_deletes_nothing(app, blobs, damage, reason, archive):
    seed(app, sample())
    archive(app, blobs)
    key = f"archived-data/batch-1_do_course/2021-1-{T}.csv.gz"
    damage(Path(blobs.path(key)))
    app.clock.now = T + 7
    summary = run_delete(app, blobs)
    assert (summary.deleted, summary.failed) == (3, 1)
    assert reason in summary.failures[0]["error"]
    [m] = [m for m in metadata(app) if m["blob_url"] == [key]]
    assert (m["deletion_status"], m["iteration"], m["archival_date"]) == ("FAILED", 1, T + 7)
    assert reason in m["err_message"] and len(m["err_message"]) <= 300
    assert {k[2] for k in live_keys(app)} == {"2021-1-a", "2021-1-b"}  # that week's rows, untouched


def test_a_wrong_recorded_row_count_deletes_nothing(app, blobs, archive):
    seed(app, sample())
    archive(app, blobs, ArchivalScope(batch_ids=("batch-2",)))
    with app.store.write() as conn:
        conn.execute(update(archival_metadata).values(row_count=2))
    summary = run_delete(app, blobs)
    assert summary.failed == 1 and "changed while it was being deleted" in summary.failures[0]["error"]
    assert len(attempts(app)) == 19


def test_an_archive_without_checksum_is_parsed_and_counted(app, blobs, archive):
    seed(app, sample())
    archive(app, blobs, ArchivalScope(batch_ids=("batch-2",)))
    with app.store.write() as conn:
        conn.execute(update(archival_metadata).values(checksum=None, row_count=None))
    assert run_delete(app, blobs).rows_deleted == 1


def test_deletion_gives_up_after_three_failures(app, blobs, archive):
    seed(app, sample())
    archive(app, blobs, ArchivalScope(batch_ids=("batch-2",)))
    blobs.delete(blobs.list_keys()[0])
    for expected in (1, 1, 1, 0):
        assert run_delete(app, blobs).files == expected
    assert metadata(app)[0]["iteration"] == 3


def test_a_file_of_another_batch_is_refused(app, blobs, archive):
    seed(app, sample())
    archive(app, blobs)
    other = f"archived-data/batch-2_do_other/2021-1-{T}.csv.gz"
    with app.store.write() as conn:
        conn.execute(
            update(archival_metadata)
            .where(archival_metadata.c.batch_id == BATCH)
            .values(blob_url=[other], checksum=None, row_count=None)
        )
    summary = run_delete(app, blobs, ArchivalScope(BATCH, COURSE))
    assert summary.failed == 3 and "belongs to batch 'batch-2'" in summary.failures[0]["error"]
    assert len(attempts(app)) == 19


def test_an_unusable_object_store_stops_before_any_work(app, tmp_path, archive):
    seed(app, sample())
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ObjectStoreError, match="cannot use the object store"):
        archive(app, ObjectStore(str(tmp_path / "file" / "blobs")))
    assert metadata(app) == []


def test_deleting_invalidates_the_group_cache_of_affected_users(app, blobs, archive):
    seed(app, sample())
    with app.store.write() as conn:
        conn.execute(insert(group_member).values(group_id="g1", user_id="abe", role="member", status="active"))
    dropped: list[list[str]] = []

    class Recording:
        enabled = True

        def invalidate_groups(self, group_ids):
            dropped.append(list(group_ids))

    app.cache = Recording()  # type: ignore[assignment]
    app.settings.archival.workers = 1  # recorded in this process (a worker process invalidates its own cache)
    archive(app, blobs)
    run_delete(app, blobs)
    assert ["g1"] in dropped


# -- the object store ------------------------------------------------------------------------------------------


def test_a_url_whose_backend_is_not_installed_names_the_package():
    with pytest.raises(ConfigurationError, match=r"needs the package s3fs: pip install s3fs"):
        ObjectStore("s3://bucket/archives")
    with pytest.raises(ConfigurationError, match="unsupported LEARNAGG_BLOB_URL"):
        ObjectStore("nosuch://x")


def test_the_local_store_writes_atomically_and_refuses_escaping_keys(tmp_path):
    store = ObjectStore(str(tmp_path / "new" / "folder"))
    with pytest.raises(RuntimeError), store.open_write("a/b.csv.gz") as f:
        f.write(b"half")
        raise RuntimeError("killed")
    assert store.list_keys() == [] and not Path(store.path("a/b.csv.gz") + ".part").exists()
    with store.open_write("a/b.csv.gz") as f:
        f.write(b"whole")
    assert store.list_keys() == ["a/b.csv.gz"] and store.size("a/b.csv.gz") == 5 and store.exists("a/b.csv.gz")
    assert store.url_for("a/b.csv.gz") == f"file://{tmp_path}/new/folder/a/b.csv.gz"
    store.delete("a/b.csv.gz")
    store.delete("a/b.csv.gz")
    assert store.list_keys() == []
    for bad in ("", "/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(ValueError, match="invalid object key"):
            store.path(bad)
    with pytest.raises(ObjectStoreError, match="no such object"), store.open_read("missing"):
        pass


def test_memory_urls_work_through_fsspec():
    store = ObjectStore("memory://learnagg-test")
    with store.open_write("x/y.txt") as f:
        f.write(b"hi")
    with store.open_read("x/y.txt") as f:
        assert f.read() == b"hi"
    assert store.list_keys("x") == ["x/y.txt"]
    store.delete("x/y.txt")
