"""`activity_agg` stays exact under concurrency: enrolments, unenrolments and content-state updates through the
HTTP API from several threads while two `learnagg worker` processes complete those enrolments at the same time."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest
from fastapi.testclient import TestClient

from learnagg import bootstrap
from learnagg.adapters.bus.log import DatabaseLog
from learnagg.domain.messages import progress_event
from learnagg.domain.platform import EnrolmentRecord, NewBatch
from learnagg.entrypoints.api.app import create_app
from learnagg.services import activity_agg
from learnagg.services.batches import create_batches
from learnagg.services.enrolments import load_enrolments
from tests.entrypoints.api.support import Api
from tests.support import course, load, publish

COURSE = "do_race"
LEAF = "do_race_l1"
BATCHES = ("b-1", "b-2")
USERS = [f"u-{n}" for n in range(120)]
THREADS = 8
JOB = "activity-aggregate-updater"


def _worker(url: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url, "LEARNAGG_WORKER__BATCH_SIZE": "3"}
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "worker", "--job", JOB, *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _learner(api: Api, user: str, rnd: random.Random) -> list[httpx.Response]:
    """One learner: enrol in a batch or two, sometimes leave one, then complete the course in the other."""
    admin, learner = api.as_admin(), api.as_user(user)
    batches = rnd.sample(BATCHES, rnd.choice([1, 2]))
    answers = []
    for batch in batches:
        request = {"courseId": COURSE, "batchId": batch, "userId": user}
        answers.append(admin.post("/v1/course/enrol", request))
    if len(batches) == 2 and rnd.random() < 0.5:
        request = {"courseId": COURSE, "batchId": batches[1], "userId": user}
        answers.append(admin.post("/v1/course/unenrol", request))
    content = {"contentId": LEAF, "courseId": COURSE, "batchId": batches[0], "status": rnd.choice([1, 2, 2])}
    answers.append(learner.patch("/v1/content/state/update", {"userId": user, "contents": [content]}))
    return answers


def _wait_until_drained(app: bootstrap.App, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 180
    while True:
        with app.store.read() as conn:
            if app.log.lag(conn, JOB, app.topics.progress) == 0:
                return
        for process in workers:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "worker stopped"
        assert time.monotonic() < deadline, "the workers did not drain the progress topic"
        time.sleep(0.05)


@pytest.mark.slow
def test_api_and_two_workers_at_once_leave_the_table_equal_to_a_recount(app: bootstrap.App) -> None:
    load(app, course(COURSE, [LEAF]))
    with app.store.write() as conn:
        assert DatabaseLog(app.store.dialect).store_default_partitions(conn, 2) == 2
        batches = [NewBatch(COURSE, b, b, date(2023, 1, 1), status=1) for b in BATCHES]
        create_batches(conn, app.store.dialect, batches, created_by=None, now=app.clock(), zone="UTC")
    service = create_app(app)
    with TestClient(service, raise_server_exceptions=False) as client:
        api = Api(client, app, service.state.token_keys)
        with ThreadPoolExecutor(THREADS) as pool:
            processes = [_worker(app.settings.database_url), _worker(app.settings.database_url)]
            try:
                rnd = random.Random(16)
                jobs = [pool.submit(_learner, api, user, random.Random(rnd.random())) for user in USERS]
                answers = [answer for job in jobs for answer in job.result()]
                assert all(a.status_code == 200 for a in answers), [a.json() for a in answers if a.status_code != 200]
                _wait_until_drained(app, processes)
            finally:
                for process in processes:
                    if process.poll() is None:
                        process.send_signal(signal.SIGTERM)
                for process in processes:
                    process.wait(timeout=60)
    with app.store.read() as conn:
        table, recount = activity_agg.stored(conn), activity_agg.expected(conn)
    assert table == recount
    assert sorted(table) == [(COURSE, b) for b in BATCHES]
    assert sum(agg["completedCount"] for agg in table.values()) > 0, "no completion reached the table"


def test_a_completion_waits_for_an_enrolment_that_has_not_committed(app: bootstrap.App) -> None:
    """The interleaving that loses an update without the row lock: an enrolment counted but not committed yet,
    and a worker completing another learner of the same batch in between."""
    load(app, course(COURSE, [LEAF]))
    with app.store.write() as conn:
        batch = NewBatch(COURSE, "b-1", "b-1", date(2023, 1, 1), status=1)
        create_batches(conn, app.store.dialect, [batch], created_by=None, now=app.clock(), zone="UTC")
        load_enrolments(conn, app.store.dialect, [EnrolmentRecord("u-1", COURSE, "b-1")], now=app.clock(), zone="UTC")
    event = progress_event(user_id="u-1", batch_id="b-1", course_id=COURSE, contents=[(LEAF, 2)], now=app.clock())
    publish(app, "progress", [event])
    with app.store.write() as conn:
        load_enrolments(conn, app.store.dialect, [EnrolmentRecord("u-2", COURSE, "b-1")], now=app.clock(), zone="UTC")
        worker = _worker(app.settings.database_url, "--until-idle")
        time.sleep(2)  # the worker reads the event and reaches the batch's row while this transaction is open
        assert worker.poll() is None, "the worker finished while an enrolment of its batch was in flight"
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err.decode()
    with app.store.read() as conn:
        table, recount = activity_agg.stored(conn), activity_agg.expected(conn)
    assert table == recount
    assert table[(COURSE, "b-1")] == {"enrolledCount": 2.0, "completedCount": 1.0, "completionPercentage": 50.0}
