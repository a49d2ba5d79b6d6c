"""SPEC §4.3 rule by rule (P1–P11), through the log and the worker, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select

from learnagg import bootstrap
from learnagg.adapters.store.tables import dedup_key, user_activity_agg, user_content_consumption, user_enrolments
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE
from learnagg.domain.messages import progress_event
from learnagg.domain.progress import dedup_key as md5_key
from learnagg.streams.activity_updater import ActivityUpdater, parse_progress_event
from learnagg.streams.handler import Incoming
from tests.conftest import T
from tests.support import activity_rows, drain, load, publish, source_ids, topic_events

C, B, U, U2 = "do_course", "batch-1", "user-1", "user-2"
CTX = f"cb:{B}"
TTL_MS = 604_800 * 1000


def leaf(identifier: str, **extra: Any) -> dict[str, Any]:
    return {"identifier": identifier, "name": identifier, "mimeType": "application/pdf", **extra}


def unit(identifier: str, children: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": identifier,
        "mimeType": COLLECTION_MIME_TYPE,
        "children": children,
        **extra,
    }


def hierarchy(course_id: str = C, **extra: Any) -> dict[str, Any]:
    """Unit U1 (L1, optional L2), optional unit U2 (L3), and L4 under the course: required(course) = {L1, L4}."""
    return unit(
        course_id,
        [unit("U1", [leaf("L1"), leaf("L2", optional=True)]), unit("U2", [leaf("L3")], optional=True), leaf("L4")],
        **extra,
    )


def progress(*contents: str | tuple[str, Any], user: str = U, course_id: str = C, **edata: Any) -> dict[str, Any]:
    pairs = [(c, 2) if isinstance(c, str) else c for c in contents]
    event = progress_event(user_id=user, batch_id=B, course_id=course_id, contents=pairs, now=T)
    event["edata"].update(edata)
    return event


def enrol(app: bootstrap.App, user: str = U, status: int = 0, **columns: Any) -> None:
    row = {"userid": user, "courseid": C, "batchid": B, "active": True, "status": status, "progress": 0, **columns}
    with app.store.write() as conn:
        conn.execute(insert(user_enrolments), [row])


def enrolment(app: bootstrap.App, user: str = U) -> dict[str, Any] | None:
    e = user_enrolments.c
    with app.store.read() as conn:
        row = conn.execute(select(user_enrolments).where(e.userid == user)).mappings().first()
    return None if row is None else dict(row)


def consumption(app: bootstrap.App, user: str = U) -> dict[str, tuple[Any, Any, Any]]:
    """{contentId: (status, viewcount, completedcount)}."""
    c = user_content_consumption.c
    stmt = select(c.contentid, c.status, c.viewcount, c.completedcount).where(c.userid == user)
    with app.store.read() as conn:
        return {r.contentid: (r.status, r.viewcount, r.completedcount) for r in conn.execute(stmt)}


def completed_counts(app: bootstrap.App, user: str = U) -> dict[str, tuple[float, int]]:
    """{activity_id: (completedCount, its agg_last_updated)} of the learner's rows."""
    return {
        r["activity_id"]: (r["aggregates"]["completedCount"], r["agg_last_updated"]["completedCount"])
        for r in activity_rows(app, user_id=user, context_id=CTX)
    }


def failed(app: bootstrap.App) -> list[dict[str, Any]]:
    return topic_events(app, "activity.agg.failed")


def certificates(app: bootstrap.App) -> list[dict[str, Any]]:
    return topic_events(app, "certificate")


def run(app: bootstrap.App, *events: Any) -> dict[str, int]:
    """Publish, drain the activity job, return its reference counters."""
    publish(app, "progress", events)
    worker = drain(app, ["activity-aggregate-updater"])
    return worker.consumers[0].reference_counters()


def with_activity(app: bootstrap.App, **activity: Any) -> bootstrap.App:
    current = app.settings.activity
    updated = current.model_copy(
        update={k: getattr(current, k).model_copy(update=v) for k, v in activity.items()}, deep=True
    )
    settings = app.settings.model_copy(update={"activity": updated})
    return bootstrap.build(settings, clock=app.clock, store=app.store)


def nothing_written(app: bootstrap.App) -> bool:
    with app.store.read() as conn:
        keys = conn.execute(select(dedup_key)).all()
    return consumption(app) == {} and activity_rows(app) == [] and keys == []


# --- P1–P3 ---


def test_p1_other_action_is_skipped_and_counted_without_failed_event(app):
    load(app, hierarchy())
    counters = run(app, progress("L1", action="batch-enrolment-sync"))
    assert counters["skipped-event-count"] == 1
    assert failed(app) == [] and nothing_written(app)


def test_p2_missing_identifier_fails_and_the_job_carries_on(app, bus):
    load(app, hierarchy())
    bad = progress("L1", batchId="")
    src, job = "ActivityAggregateUpdater", "activity-aggregate-updater"
    publish(app, "progress", [bad, "[1, 2]", progress("L1")])
    where = source_ids(app, job, "progress")
    bad_at, not_json_at = where[orjson.dumps(bad).decode()], where["[1, 2]"]
    counters = drain(app, [job]).consumers[0].reference_counters()
    by_reason = {f["metadata"]["validation_error"]: f for f in failed(app)}
    assert [by_reason[r]["metadata"] for r in ("batchId is mandatory", "event is not a JSON object")] == [
        {"validation_error": "batchId is mandatory", "src": src, "failed_ts": T, "failed_id": bad_at},
        {"validation_error": "event is not a JSON object", "src": src, "failed_ts": T, "failed_id": not_json_at},
    ]
    if bus == "p1":  # one partition on the embedded log: the first two events of the log
        assert (bad_at, not_json_at) == (f"{job}:0:1", f"{job}:0:2")
    assert {k: v for k, v in by_reason["batchId is mandatory"].items() if k != "metadata"} == bad
    assert counters["failed-event-count"] == 2 and counters["success-event-count"] == 1
    assert consumption(app) == {"L1": (None, 1, 1)}


def test_p3_only_contents_with_numeric_status_two_count(app):
    load(app, hierarchy())
    run(app, progress(("L1", 2.0), ("L4", "2"), ("L2", 1), ("", 2)))
    assert consumption(app) == {"L1": (None, 1, 1)}


def test_p3_no_completed_content_skips_the_event(app):
    load(app, hierarchy())
    counters = run(app, progress(("L1", 1), ("L4", "2")))
    assert counters["skipped-event-count"] == 1 and nothing_written(app)


# --- P4 / P10 dedup ---


def test_p10_dedup_keys_are_stored_with_their_expiry(app):
    load(app, hierarchy())
    run(app, progress("L1", "L4"))
    with app.store.read() as conn:
        stored = dict(conn.execute(select(dedup_key.c.key, dedup_key.c.expires_on)).all())
    assert stored == {md5_key(C, B, U, "L1"): T + TTL_MS, md5_key(C, B, U, "L4"): T + TTL_MS}


def test_p4_replayed_event_changes_nothing(app, clock):
    load(app, hierarchy())
    enrol(app)
    event = progress("L1")
    run(app, event)
    before = (consumption(app), activity_rows(app), enrolment(app), certificates(app))
    clock.now = T + 1000
    counters = run(app, event)
    assert counters["dedup-skipped-count"] == 1
    assert (consumption(app), activity_rows(app), enrolment(app), certificates(app)) == before


def test_p4_only_new_contents_of_a_partly_seen_event_are_applied(app, clock):
    load(app, hierarchy())
    run(app, progress("L1"))
    clock.now = T + 5
    run(app, progress("L1", "L2"))
    assert consumption(app) == {"L1": (None, 1, 1), "L2": (None, 1, 1)}
    with app.store.read() as conn:
        expiry = conn.execute(select(dedup_key.c.expires_on).where(dedup_key.c.key == md5_key(C, B, U, "L1"))).scalar()
    assert expiry == T + TTL_MS  # the dropped content's key is not renewed


def test_p4_an_expired_key_no_longer_deduplicates(app, clock):
    load(app, hierarchy())
    run(app, progress("L1"))
    clock.now = T + TTL_MS
    run(app, progress("L1"))
    assert consumption(app) == {"L1": (None, 2, 2)}


def test_p4_dedup_disabled_applies_a_replay_again(app):
    off = with_activity(app, dedup={"enabled": False})
    load(off, hierarchy())
    run(off, progress("L1"), progress("L1"))
    assert consumption(off) == {"L1": (None, 2, 2)}
    with off.store.read() as conn:
        assert conn.execute(select(dedup_key)).all() == []


# --- P5 hierarchy ---


def test_p5_retired_course_without_leaves_is_skipped(app):
    load(app, unit("do_retired", [], status="Retired"))
    counters = run(app, progress("L1", course_id="do_retired"))
    assert counters["skipped-event-count"] == 1
    assert failed(app) == [] and nothing_written(app)


def test_p5_unknown_leaves_fail_and_the_job_carries_on(app):
    load(app, hierarchy())
    counters = run(app, progress("L1", course_id="do_unknown"), progress("L1"))
    assert [f["metadata"]["validation_error"] for f in failed(app)] == ["leaf nodes not found for course do_unknown"]
    assert counters["success-event-count"] == 1
    assert consumption(app) == {"L1": (None, 1, 1)}
    assert set(completed_counts(app)) == {C, "U1"}


# --- P6 consumption ---


def test_p6_counts_go_up_and_stored_status_is_left_as_it_is(app):
    load(app, hierarchy())
    enrol(app)
    key = {"userid": U, "courseid": C, "batchid": B}
    rows = [
        {**key, "contentid": "L1", "status": 1, "viewcount": 3, "completedcount": 0},
        {**key, "contentid": "L3", "status": None, "viewcount": None, "completedcount": None},
        {**key, "contentid": "L9", "status": 0, "viewcount": None, "completedcount": None},
    ]
    with app.store.write() as conn:
        conn.execute(insert(user_content_consumption), rows)
    run(app, progress("L1", "L4"))
    assert consumption(app) == {"L1": (1, 4, 1), "L3": (None, None, None), "L4": (None, 1, 1), "L9": (0, None, None)}
    # merged map: stored contents (null read as 1) and the inputs at 2
    assert enrolment(app)["contentstatus"] == {"L1": 2, "L3": 1, "L4": 2, "L9": 0}


def test_p6_a_created_row_keeps_a_null_status_which_later_events_read_as_one(app, clock):
    load(app, hierarchy())
    enrol(app)
    run(app, progress("L1"))
    clock.now = T + 1
    run(app, progress("L4"))
    row = enrolment(app)
    assert row["contentstatus"] == {"L1": 1, "L4": 2}
    assert (row["status"], row["progress"]) == (1, 1)


# --- P7 / P8 completion counts ---


def test_p7_completed_count_excludes_optional_leaves_and_units(app):
    load(app, hierarchy())
    run(app, progress("L1", "L2", "L3"))
    assert completed_counts(app) == {C: (1.0, T), "U1": (1.0, T), "U2": (1.0, T)}
    [row] = activity_rows(app, activity_id=C)
    assert row["activity_type"] == "Course" and row["agg"] is None and row["agg_details"] is None
    assert isinstance(row["aggregates"]["completedCount"], float)


def test_p7_other_metric_keys_are_kept(app):
    load(app, hierarchy())
    with app.store.write() as conn:
        row = {"activity_type": "Course", "activity_id": C, "user_id": U, "context_id": CTX}
        conn.execute(
            insert(user_activity_agg),
            [{**row, "aggregates": {"score:L1": 1.5}, "agg_last_updated": {"score:L1": 5}, "agg": {"x": 1}}],
        )
    run(app, progress("L4"))
    [stored] = activity_rows(app, activity_id=C)
    assert stored["aggregates"] == {"score:L1": 1.5, "completedCount": 1.0}
    assert stored["agg_last_updated"] == {"score:L1": 5, "completedCount": T}
    assert stored["agg"] == {"x": 1}


def test_p8_units_come_from_every_merged_content(app):
    load(app, hierarchy())
    with app.store.write() as conn:
        row = {"userid": U, "courseid": C, "batchid": B, "contentid": "L3", "status": 2}
        conn.execute(insert(user_content_consumption), [row])
    run(app, progress("L4"))
    # L3 (stored) sits in U2; L4 (input) directly under the course; U1 holds no merged content
    assert completed_counts(app) == {C: (1.0, T), "U2": (1.0, T)}


def test_p8_module_aggs_disabled_writes_only_the_course_row(app):
    off = with_activity(app, module_aggs={"enabled": False})
    load(off, hierarchy())
    run(off, progress("L1", "L3"))
    assert completed_counts(off) == {C: (1.0, T)}


# --- P9 enrolment ---


def test_p9_missing_enrolment_is_not_created(app):
    load(app, hierarchy())
    counters = run(app, progress("L1", "L4"))
    assert enrolment(app) is None and certificates(app) == []
    assert "processed-enrolment-count" not in counters and counters["success-event-count"] == 1


def test_p9_incomplete_course_sets_status_one(app):
    load(app, hierarchy())
    enrol(app, enrolled_date=5)
    run(app, progress("L1", "L2"))
    row = enrolment(app)
    assert (row["status"], row["progress"], row["completedon"], row["datetime"]) == (1, 1, None, T)
    assert row["contentstatus"] == {"L1": 2, "L2": 2} and row["enrolled_date"] == 5
    assert certificates(app) == []


def test_p9_complete_course_completes_enrolment_and_requests_a_certificate(app):
    load(app, hierarchy())
    enrol(app)
    counters = run(app, progress("L4", "L1"))
    row = enrolment(app)
    assert (row["status"], row["progress"], row["completedon"], row["datetime"]) == (2, 2, T, T)
    assert row["contentstatus"] == {"L1": 2, "L4": 2}
    [request] = certificates(app)
    assert request["object"] == {"id": f"{B}_{C}", "type": "CourseCertificateGeneration"}
    assert request["edata"] == {
        "userIds": [U],
        "action": "issue-certificate",
        "iteration": 1,
        "trigger": "auto-issue",
        "batchId": B,
        "reIssue": False,
        "courseId": C,
    }
    assert request["ets"] == T and request["actor"]["id"] == "Course Certificate Generator"
    assert counters["enrolment-complete-count"] == 1 and counters["cert-issue-events-count"] == 1


def test_p9_out_of_order_completion_completes_on_the_last_required_leaf(app, clock):
    load(app, hierarchy())
    enrol(app)
    run(app, progress("L4"))  # the last leaf of the course first
    assert (enrolment(app)["status"], enrolment(app)["progress"]) == (1, 1)
    clock.now = T + 10
    with app.store.write() as conn:  # the content-state API stored L4 as completed meanwhile
        conn.execute(
            user_content_consumption.update().where(user_content_consumption.c.contentid == "L4").values(status=2)
        )
    run(app, progress("L3", "L1"))
    row = enrolment(app)
    assert (row["status"], row["progress"], row["completedon"]) == (2, 2, T + 10)
    assert len(certificates(app)) == 1


def test_p9_completed_enrolment_is_never_rewritten(app, clock):
    load(app, hierarchy())
    enrol(app, status=2, progress=7, completedon=5, contentstatus={"old": 2}, datetime=5)
    before = enrolment(app)
    run(app, progress("L1", "L4"))
    assert enrolment(app) == before and certificates(app) == []
    assert completed_counts(app)[C] == (2.0, T)


def test_p9_two_events_of_one_learner_in_one_batch_complete_once(app):
    load(app, hierarchy())
    enrol(app)
    off = with_activity(app, dedup={"enabled": False})
    counters = run(off, progress("L3"), progress("L1", "L4"), progress("L4"))
    row = enrolment(off)
    assert (row["status"], row["progress"], row["completedon"]) == (2, 2, T)
    # the third event sees the completion of the second: the enrolment is not rewritten
    assert row["contentstatus"] == {"L1": 2, "L3": 1, "L4": 2}
    assert len(certificates(off)) == 1
    assert consumption(off) == {"L1": (None, 1, 1), "L3": (None, 1, 1), "L4": (None, 2, 2)}
    assert counters["processed-enrolment-count"] == 2 and counters["enrolment-complete-count"] == 1


def test_p9_course_with_only_optional_leaves_completes_at_once(app):
    load(app, unit("do_opt", [leaf("O1", optional=True)]))
    with app.store.write() as conn:
        conn.execute(insert(user_enrolments), [{"userid": U, "courseid": "do_opt", "batchid": B, "status": 0}])
    run(app, progress("O1", course_id="do_opt"))
    row = enrolment(app)
    assert (row["status"], row["progress"]) == (2, 0)
    assert len(certificates(app)) == 1


# --- P11 and the batch result ---


def test_p11_changed_users_are_the_learners_written(app):
    load(app, hierarchy())
    raws = [progress("L1"), progress("L1", user=U2, course_id="do_unknown"), progress("L1", user="u3", action="x")]
    batch = [Incoming("", raw, parse_progress_event(raw)) for raw in raws]
    with app.store.write() as conn:
        result = ActivityUpdater(app).handle(conn, batch)
    assert result.changed_users == {U}
    assert [reason for _, reason in result.failures] == ["leaf nodes not found for course do_unknown"]
    assert result.counters["success"] == 1 and result.counters["skipped"] == 1


@pytest.mark.parametrize("batch_size", [1, 500])
def test_learners_are_kept_apart_within_one_batch(app, batch_size):
    load(app, hierarchy())
    enrol(app)
    enrol(app, user=U2)
    app.settings.worker.batch_size = batch_size
    run(app, progress("L2"), progress("L4", user=U2), progress("L4", "L1"))
    assert (enrolment(app)["status"], enrolment(app, U2)["status"]) == (2, 1)
    assert completed_counts(app, U2) == {C: (1.0, T)}
