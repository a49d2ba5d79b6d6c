"""SPEC §6.3 exhaust runner on SQLite and PostgreSQL: lifecycle, retries, dedup, limits, resume, files, archives."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from learnagg import bootstrap
from learnagg.adapters.exhaust_keys import exhaust_keys
from learnagg.adapters.objectstore import ObjectStore, open_store
from learnagg.adapters.store.tables import course, course_batch, job_request, user_enrolments, users
from learnagg.adapters.zipfiles import read_entry
from learnagg.batch import exhaust_runner
from learnagg.batch.archival import ArchivalScope, run_archive
from learnagg.batch.archival_delete import run_delete
from learnagg.batch.exhaust_runner import ExhaustService, run_exhaust
from learnagg.batch.progress_exhaust import write_progress_report
from learnagg.batch.response_exhaust import write_response_report
from learnagg.domain import exhaust as dx
from learnagg.domain.identity import PLATFORM_ADMIN, Caller
from learnagg.services.exhaust_requests import ExhaustRequests
from learnagg.settings import Settings
from tests.batch.test_archival import BATCH, COURSE, attempt, sample, seed
from tests.conftest import T
from tests.support import course as hierarchy
from tests.support import load

CHANNEL = "org-1"
BATCH2 = "batch-2b"
DAY = "20231115"  # T in Asia/Kolkata (report.timezone)
ENROLLED = 1568917800000
LEARNERS = ("Zed", "abe", "émile")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The test database, and report files in a private folder."""
    return Settings(database_url=database_url, blob_url=str(tmp_path / "blobs"))


def insert_rows(app: bootstrap.App, table: Any, *rows: dict[str, Any]) -> None:
    with app.store.write() as conn:
        conn.execute(insert(table), list(rows))


def world(app: bootstrap.App, *, attempts: bool = True) -> None:
    """A course of two SelfAssess contents with two batches, three enrolled learners and their attempts."""
    load(app, hierarchy(COURSE, ["c1", "c2"], channel=CHANNEL))
    load(app, hierarchy("do_old", ["c3"], channel=CHANNEL))
    with app.store.write() as conn:
        conn.execute(update(course).where(course.c.course_id == "do_old").values(status="Retired"))
    insert_rows(
        app,
        course_batch,
        {"courseid": COURSE, "batchid": BATCH, "name": "Batch One", "status": 1},
        {"courseid": COURSE, "batchid": BATCH2, "name": "Batch Two", "status": 1},
        {"courseid": "do_old", "batchid": "batch-old", "name": "Old", "status": 2},
    )
    insert_rows(app, users, *({"id": u, "first_name": u, "root_org_id": CHANNEL, "status": 1} for u in LEARNERS))
    insert_rows(
        app,
        user_enrolments,
        *(
            {"userid": u, "courseid": COURSE, "batchid": b, "active": True, "enrolled_date": ENROLLED, "status": 1}
            for u in LEARNERS
            for b in (BATCH, BATCH2)
        ),
    )
    if attempts:
        seed(app, sample())


def submit(
    app: bootstrap.App,
    config: dict[str, Any],
    *,
    dataset: str = "progress-exhaust",
    tag: str = "tag-1",
    key: str | None = None,
    by: str = "admin-1",
    **extra: Any,
) -> str:
    """Submit a request as an org admin of the channel (root org = channel); returns its request id."""
    with app.store.write() as conn:
        conn.execute(
            app.store.dialect.upsert(users, replace=("roles", "root_org_id")),
            {"id": by, "first_name": by, "root_org_id": CHANNEL, "roles": ["ORG_ADMIN"], "status": 1},
        )
    caller = Caller(by, None, frozenset({PLATFORM_ADMIN}))
    body = {"tag": tag, "dataset": dataset, "datasetConfig": config, "encryptionKey": key, **extra}
    service = ExhaustRequests(
        app, exhaust_keys(app.settings.exhaust.secret_key, app.store, app.clock()), app.clock(), "http://test"
    )
    return str(service.submit(caller, CHANNEL, body)["requestId"])


def row(app: bootstrap.App, request_id: str) -> dict[str, Any]:
    with app.store.read() as conn:
        return dict(conn.execute(select(job_request).where(job_request.c.request_id == request_id)).mappings().one())


def blobs_of(app: bootstrap.App) -> ObjectStore:
    return open_store(app.settings.blob_url)


def run(app: bootstrap.App, **kwargs: Any) -> exhaust_runner.RunSummary:
    return run_exhaust(app, blobs_of(app), **kwargs)


def zipped(app: bootstrap.App, key: str, password: str | None = None) -> tuple[str, str]:
    name, data = read_entry(blobs_of(app).path(key), password)
    return name, data.decode("utf-8")


def report(app: bootstrap.App, dataset: str, batch_id: str = BATCH, **kwargs: Any) -> str:
    out = io.StringIO()
    writer = write_progress_report if dataset == "progress-exhaust" else write_response_report
    writer(app, batch_id, out, channel=CHANNEL, **kwargs)
    return out.getvalue()


def test_request_ends_success_with_one_zip_per_batch(app):
    world(app)
    rid = submit(app, {"batchFilter": [BATCH2, BATCH]})
    summary = run(app)
    r = row(app, rid)
    keys = [f"progress-exhaust/{rid}/{b}_progress_{DAY}.zip" for b in (BATCH2, BATCH)]
    assert (summary.requests, summary.succeeded, summary.batches) == (1, 1, 2)
    assert (r["status"], r["download_urls"], r["dt_job_completed"], r["iteration"]) == ("SUCCESS", keys, T, 0)
    assert r["processed_batches"] == [
        {"channel": CHANNEL, "batchId": b, "filePath": k, "fileSize": blobs_of(app).size(k)}
        for b, k in zip((BATCH2, BATCH), keys, strict=True)
    ]
    assert isinstance(r["execution_time"], int) and r["lease_until"] is None
    # One entry named after the CSV, which is not left in the store.
    assert zipped(app, keys[1]) == (f"{BATCH}_progress_{DAY}.csv", report(app, "progress-exhaust"))
    assert blobs_of(app).list_keys("progress-exhaust") == sorted(keys)
    assert run(app).requests == 0  # finished requests are not picked again


def test_password_zip_is_aes256_and_refused_without_the_password(app):
    world(app)
    rid = submit(app, {"batchId": BATCH}, key="s3cret")
    run(app)
    key = row(app, rid)["download_urls"][0]
    assert zipped(app, key, "s3cret")[1] == report(app, "progress-exhaust")
    with pytest.raises(RuntimeError):
        zipped(app, key)
    with pytest.raises(RuntimeError):
        zipped(app, key, "wrong")
    with zipfile.ZipFile(blobs_of(app).path(key)) as zf:
        assert zf.infolist()[0].compress_type == 99  # WinZip AES
    # Never in clear in the database.
    stored = row(app, rid)["encryption_key"]
    assert stored.startswith("enc:v1:") and "s3cret" not in stored


def test_zipcrypto_on_request_opens_with_standard_unzip(app):
    world(app)
    rid = submit(app, {"batchId": BATCH}, key="s3cret", zipEncryption="zipcrypto")
    run(app)
    path = blobs_of(app).path(row(app, rid)["download_urls"][0])
    with zipfile.ZipFile(path) as zf:
        with pytest.raises(RuntimeError):
            zf.read(zf.namelist()[0])
        zf.setpassword(b"s3cret")
        assert zf.read(zf.namelist()[0]).decode() == report(app, "progress-exhaust")


def test_missing_key_field_fails_and_is_retried_up_to_three_times(app):
    world(app)
    rid = submit(app, {"type": "x"})
    for iteration in (1, 2, 3):
        assert run(app).failed == 1
        r = row(app, rid)
        assert (r["status"], r["iteration"], r["err_message"]) == ("FAILED", iteration, dx.MISSING_KEY_FIELD)
        assert (r["dt_job_completed"], r["download_urls"]) == (T, [])
    assert run(app).requests == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"batchFilter": ["nope-1", "nope-2"]}, "No data found"),
        ({"batchId": "batch-old"}, "The request is made for retired collection"),
        (
            {"batchFilter": [f"b{i}" for i in range(21)]},
            "Number of batches in request exceeded. It should be within 20",
        ),
        ({"searchFilter": {"filters": {"identifier": "do_old"}}}, "The request is made for retired collection"),
    ],
)
def test_bad_requests_fail_with_the_reference_message_and_others_carry_on(app, config, message):
    world(app, attempts=False)
    bad = submit(app, config, tag="bad")
    good = submit(app, {"batchId": BATCH}, tag="good")
    summary = run(app)
    assert (summary.failed, summary.succeeded) == (1, 1)
    assert (row(app, bad)["status"], row(app, bad)["err_message"]) == ("FAILED", message)
    assert row(app, good)["status"] == "SUCCESS"


def test_search_filter_selects_the_batches_of_the_courses(app):
    world(app, attempts=False)
    rid = submit(app, {"searchFilter": {"filters": {"identifier": [COURSE], "channel": CHANNEL}}})
    run(app)
    assert [p["batchId"] for p in row(app, rid)["processed_batches"]] == [BATCH, BATCH2]


def test_identical_pending_requests_are_produced_once_and_share_the_files(app, monkeypatch):
    world(app, attempts=False)
    calls = []
    produce = exhaust_runner.produce_batch
    monkeypatch.setattr(exhaust_runner, "produce_batch", lambda *a, **k: calls.append(k) or produce(*a, **k))
    first = submit(app, {"batchId": BATCH}, tag="one", key="k")
    second = submit(app, {"batchId": BATCH}, tag="two", key="k")
    other_key = submit(app, {"batchId": BATCH}, tag="three", key="other")
    summary = run(app)
    assert (summary.requests, summary.duplicates, summary.succeeded, len(calls)) == (3, 1, 3, 2)
    assert row(app, first)["download_urls"] == row(app, second)["download_urls"]
    assert row(app, first)["download_urls"] != row(app, other_key)["download_urls"]


def test_channel_limit_sends_requests_back_to_submitted_keeping_processed_batches(app, clock):
    app.settings.exhaust.batches_per_channel = 1
    world(app, attempts=False)
    rid = submit(app, {"batchFilter": [BATCH, BATCH2]})
    clock.now += 1
    later = submit(app, {"batchId": BATCH}, tag="later")
    summary = run(app)
    assert (summary.requeued, summary.batches) == (2, 1)
    r = row(app, rid)
    assert (r["status"], [p["batchId"] for p in r["processed_batches"]], r["iteration"]) == ("SUBMITTED", [BATCH], 0)
    assert row(app, later)["status"] == "SUBMITTED"
    run(app)
    r = row(app, rid)
    assert (r["status"], len(r["download_urls"])) == ("SUCCESS", 2)


class Crash(BaseException):
    """The process dies mid-run."""


def test_a_crashed_run_resumes_from_the_batches_already_done(app, clock, monkeypatch):
    world(app, attempts=False)
    rid = submit(app, {"batchFilter": [BATCH, BATCH2]})
    produce = exhaust_runner.produce_batch
    produced: list[str] = []

    def crashing(*args: Any, **kwargs: Any) -> Any:
        if kwargs["batch_id"] == BATCH2 and not produced.count("crashed"):
            produced.append("crashed")
            raise Crash
        produced.append(kwargs["batch_id"])
        return produce(*args, **kwargs)

    monkeypatch.setattr(exhaust_runner, "produce_batch", crashing)
    with pytest.raises(Crash):
        run(app)
    r = row(app, rid)
    assert (r["status"], [p["batchId"] for p in r["processed_batches"]]) == ("PROCESSING", [BATCH])
    assert run(app).requests == 0  # still leased to the dead run
    clock.now += app.settings.exhaust.lease_seconds * 1000 + 1
    assert run(app).succeeded == 1
    assert produced == [BATCH, "crashed", BATCH2]
    assert row(app, rid)["status"] == "SUCCESS" and len(row(app, rid)["download_urls"]) == 2


def test_unreadable_archive_file_fails_the_response_request(app):
    world(app)
    blobs = blobs_of(app)
    with blobs.open_write(f"archived-data/{BATCH}_{COURSE}/2021-1-1700000000000.csv.gz") as f:
        f.write(b"not gzip")
    bad = submit(app, {"batchId": BATCH}, dataset="response-exhaust", tag="bad")
    good = submit(app, {"batchId": BATCH2}, dataset="response-exhaust", tag="good")
    run(app)
    r = row(app, bad)
    assert r["status"] == "FAILED"
    assert r["err_message"].startswith(f"Archived file archived-data/{BATCH}_{COURSE}/2021-1-1700000000000.csv.gz")
    assert row(app, good)["status"] == "SUCCESS", row(app, good)["err_message"]


def response_csv(app: bootstrap.App, tag: str) -> str:
    rid = submit(app, {"batchId": BATCH}, dataset="response-exhaust", tag=tag)
    run(app, datasets=["response-exhaust"])
    r = row(app, rid)
    assert r["status"] == "SUCCESS", r["err_message"]
    return zipped(app, r["download_urls"][0])[1]


def test_response_exhaust_is_identical_before_and_after_archive_and_delete(app):
    world(app)
    before = response_csv(app, "before")
    assert before.count("\n") == 1 + 18  # header + 3 learners x 3 weeks x 2 attempts, one question each
    blobs = blobs_of(app)
    scope = ArchivalScope(BATCH, COURSE)
    # Archived and still live: every row once, the live copy winning (SPEC §6.5, §7 #11).
    assert run_archive(app, blobs, scope).archived == 3
    assert response_csv(app, "both") == before
    assert run_delete(app, blobs, scope).deleted == 3
    assert response_csv(app, "after") == before


def test_live_copy_wins_over_the_archived_one(app):
    world(app)
    run_archive(app, blobs_of(app), ArchivalScope(BATCH, COURSE))
    # The attempt is rewritten after archiving: the report shows the live title only.
    seed(app, [attempt("abe", "c1", "2021-1-a", 1_700_000_000_000, 2.0, title="Rewritten")])
    text = response_csv(app, "rewritten")
    assert "Rewritten" in text and text.count("\n") == 19


def test_the_serve_loop_runs_pending_requests(app):
    world(app, attempts=False)
    rid = submit(app, {"batchId": BATCH})
    service = ExhaustService(app, blobs_of(app))
    assert service.start(loops=1) == 1
    assert row(app, rid)["status"] == "SUCCESS"
