"""Property tests (hypothesis) of the activity aggregate updater: batch = one-by-one, replays change nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from learnagg import bootstrap
from learnagg.adapters.store.tables import dedup_key, user_content_consumption, user_enrolments
from learnagg.domain.messages import progress_event
from tests.conftest import T
from tests.streams.test_activity_updater import B, C, hierarchy
from tests.support import activity_rows, drain, load, per_learner, publish, reset, topic_events

USERS = ("u-1", "u-2")
PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, int | None], list[dict[str, Any]]]:
    """Stored enrolment status per user (None: no enrolment) and events over two learners of one course."""
    enrolments = {u: draw(st.sampled_from([None, 0, 1, 2])) for u in USERS}
    events = []
    for _ in range(draw(st.integers(1, 10))):
        user = draw(st.sampled_from((*USERS, USERS[0])))  # mostly u-1, who has a stored completion
        course_id = draw(st.sampled_from([C, C, C, "do_unknown"]))
        contents = draw(
            st.lists(
                st.tuples(st.sampled_from(["L1", "L1", "L2", "L3", "L4", "L9"]), st.sampled_from([1, 2, 2, 2.0])),
                max_size=3,
            )
        )
        event = progress_event(user_id=user, batch_id=B, course_id=course_id, contents=contents, now=T)
        if draw(st.integers(0, 9)) == 0:
            event["edata"]["action"] = "other"
        events.append(event)
    return enrolments, events


def _reset(app: bootstrap.App, enrolments: dict[str, int | None]) -> None:
    reset(app)
    with app.store.write() as conn:
        rows = [
            {"userid": u, "courseid": C, "batchid": B, "active": True, "status": s, "progress": 0}
            for u, s in enrolments.items()
            if s is not None
        ]
        if rows:
            conn.execute(insert(user_enrolments), rows)
        # One stored completion the events may build on.
        conn.execute(
            insert(user_content_consumption),
            [{"userid": "u-1", "courseid": C, "batchid": B, "contentid": "L4", "status": 2}],
        )
    load(app, hierarchy())


def _state(app: bootstrap.App) -> tuple:
    with app.store.read() as conn:
        consumption = [tuple(r) for r in conn.execute(select(user_content_consumption).order_by("userid", "contentid"))]
        enrolments = [dict(r) for r in conn.execute(select(user_enrolments).order_by("userid")).mappings()]
        keys = sorted(tuple(r) for r in conn.execute(select(dedup_key)))
    certificates = [(e["ets"], e["object"], e["edata"]) for e in per_learner(topic_events(app, "certificate"))]
    failed = [
        (e["edata"], e["metadata"]["validation_error"]) for e in per_learner(topic_events(app, "activity.agg.failed"))
    ]
    return consumption, enrolments, activity_rows(app), keys, certificates, failed


def _run(app: bootstrap.App, scenario: tuple, batch_size: int) -> tuple:
    enrolments, events = scenario
    _reset(app, enrolments)
    publish(app, "progress", events)
    app.settings.worker.batch_size = batch_size
    drain(app, ["activity-aggregate-updater"])
    return _state(app)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), batch_size=st.integers(2, 6), dedup=st.booleans())
def test_batch_processing_equals_one_by_one(app, scenario, batch_size, dedup):
    app.settings.activity.dedup.enabled = dedup
    assert _run(app, scenario, batch_size) == _run(app, scenario, 1)


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_replaying_the_same_events_changes_nothing(app, scenario, clock):
    clock.now = T
    first = _run(app, scenario, 500)
    clock.now = T + 60_000
    publish(app, "progress", scenario[1])
    drain(app, ["activity-aggregate-updater"])
    consumption, enrolments, aggs, keys, certificates, failed = _state(app)
    # Only the failures repeat (unknown course): a failed event writes nothing, so it is not deduplicated.
    assert (consumption, enrolments, aggs, keys, certificates) == first[:5]
    assert failed == sorted(first[5] * 2, key=lambda f: f[0].get("userId") or "")  # learner by learner
