"""The spark engine's progress and response reports: the same CSV bytes as the python engine's, slice after slice
(two learners per slice here), with archived attempts, channels and unreadable archives."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from learnagg.adapters.objectstore import ObjectStore
from learnagg.batch.exhaust_files import BatchError, write_report
from learnagg.batch.spark.reports import write_report_spark
from tests.batch import test_progress_exhaust as progress
from tests.batch import test_response_exhaust as response

PROGRESS, RESPONSE = "progress-exhaust", "response-exhaust"

pytestmark = pytest.mark.usefixtures("spark")  # the engine finds and reuses the shared session


def both(app, blobs: ObjectStore, job: str, batch: str, course: str, channel: str | None = None) -> tuple[str, str]:
    """The report text of each engine (with the same row count)."""
    texts, counts = [], []
    for write in (write_report, write_report_spark):
        out = io.StringIO()
        counts.append(write(app, blobs, job, batch, course, out, channel))
        texts.append(out.getvalue())
    assert counts[0] == counts[1]
    return texts[0], texts[1]


@pytest.fixture
def blobs(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "blobs"))


def progress_data(app) -> None:
    progress._setup(app)
    scores = {"score:do_a1": 1.5, "max_score:do_a1": 2.0}
    for i, user in enumerate(["émile", "zoë", "Åsa", "a,b", 'q"t', "日本", "u-20", "u-2"]):
        progress._user(app, user, school_name=f"School {i}\nline" if i % 2 else "S", board='["x"]')
        progress._enrol(app, user, contentstatus={"do_a1": 2, "do_r1": i % 3})
        progress._scores(app, user, aggregates=scores if i % 3 else None)


def test_the_progress_report_is_the_same_on_both_engines(app, blobs):
    progress_data(app)
    python, spark = both(app, blobs, PROGRESS, progress.B, progress.C)
    assert python.count("\n") == 16 and "u-1," in python and "日本" in python
    assert spark == python
    python, spark = both(app, blobs, PROGRESS, progress.B, progress.C, channel="org-2")
    assert python.count("\n") == 2 and spark == python  # only U-9 of org-2


def test_an_empty_batch_gives_the_header_on_both_engines(app, blobs):
    progress._setup(app)
    python, spark = both(app, blobs, PROGRESS, progress.B, progress.C, channel="nobody")
    assert python.count("\n") == 1 and spark == python


def response_data(app, blobs: ObjectStore) -> None:
    response._setup(app)
    q = response._question
    users = ["émile", "zoë", "a,b", 'q"t', "日本", "u-2", "u-10"]
    for i, user in enumerate(users):
        response._learner(app, user)
        response._live(app, user, f"live-{i}", [q("q2", 0.5, title='T "2", x'), q("q1", params=[{"a": "b,c"}])])
        if i % 3 == 0:
            response._live(app, user, "no-questions", None, content_id="do_other_content")
    response._learner(app, "inactive", active=False)
    response._live(app, "inactive", "x", [q("q1")])
    response.write_archive(blobs, "2020-1-1", [
        response._archived(response.USER, response.ATTEMPT, [q(response.MCQ, 0.0), q("zz-archived-only")]),
        response._archived("émile", "live-0", [q("q1", 0.0), q("q3")]),
        response._archived("émile", "old", [q("q1")], content_id="do_unknown_content"),
        response._archived("inactive", "old", [q("q1")]),
        response._archived("u-10", "other", [q("q1")], batch_id="other"),
    ])  # fmt: skip
    response.write_archive(
        blobs, "2020-2-2", [response._archived(u, "old-2", [q("q9", duration=2.5)]) for u in users[::2]]
    )


def test_the_response_report_is_the_same_on_both_engines_with_archives(app, blobs):
    response_data(app, blobs)
    python, spark = both(app, blobs, RESPONSE, response.BATCH, response.COURSE)
    assert "zz-archived-only" in python and "old-2" in python and ",x," not in python
    assert len(python.splitlines()) > 25
    assert spark == python
    python, spark = both(app, blobs, RESPONSE, response.BATCH, response.COURSE, channel="org-2")
    assert spark == python
    assert blobs.list_keys("tmp") == []  # the slices' part objects are gone


def test_an_unreadable_archive_fails_the_batch_with_the_same_message(app, blobs):
    response_data(app, blobs)
    bad = f"archived-data/{response.BATCH}_{response.COURSE}/2020-3-3.csv.gz"
    with blobs.open_write(bad) as out:
        out.write(b"not gzip")
    messages = []
    for write in (write_report, write_report_spark):
        with pytest.raises(BatchError) as caught:
            write(app, blobs, RESPONSE, response.BATCH, response.COURSE, io.StringIO(), None)
        messages.append(str(caught.value))
    assert messages[0].startswith(f"Archived file {bad} cannot be read") and messages[1] == messages[0]


def test_an_unknown_batch_is_the_same_batch_error(app, blobs):
    for job in (PROGRESS, RESPONSE):
        with pytest.raises(BatchError, match="Batch nope does not exist"):
            write_report_spark(app, blobs, job, "nope", "c", io.StringIO(), None)
