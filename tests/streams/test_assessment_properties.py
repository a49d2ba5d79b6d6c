"""Property tests (hypothesis): order independence within the guard, replay, batch = one-by-one."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnagg import bootstrap
from learnagg.bench.demo_data import batch_event as attempt_event
from tests.support import activity_rows, attempts, drain, per_learner, publish, reset, topic_events

C, B = "do_course", "batch-1"
PROPERTY_SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def attempt_events(draw: st.DrawFn) -> list[dict]:
    """Events over a few learners/contents/attempts; the same attempt key never repeats an assessmentTs."""
    count = draw(st.integers(min_value=1, max_value=12))
    used: set[tuple] = set()
    events = []
    for _ in range(count):
        user = draw(st.sampled_from(["u-1", "u-2"]))
        content = draw(st.sampled_from(["do_a1", "do_a2"]))
        attempt_id = draw(st.sampled_from(["at-1", "at-2", "at-3"]))
        ts = draw(st.integers(min_value=1, max_value=50))
        if (user, content, attempt_id, ts) in used:
            continue
        used.add((user, content, attempt_id, ts))
        recompute = draw(st.booleans()) and draw(st.booleans())
        answers = (
            []
            if recompute
            else [
                {
                    "ets": draw(st.integers(1, 5)),
                    "edata": {
                        "score": draw(st.sampled_from([0, 0.33, 0.5, 1, 2])),
                        "item": {"id": f"q{draw(st.integers(1, 3))}", "maxscore": 2},
                    },
                }
                for _ in range(draw(st.integers(1, 4)))
            ]
        )
        events.append(
            attempt_event(
                course_id=C, batch_id=B, user_id=user, content_id=content, attempt_id=attempt_id, ts=ts, events=answers
            )
        )
    return events


def _state(app: bootstrap.App) -> tuple:
    return attempts(app), activity_rows(app)


def _run(app: bootstrap.App, events: list[dict], batch_size: int = 500) -> tuple:
    reset(app)
    publish(app, "assess", events)
    app.settings.worker.batch_size = batch_size
    drain(app)
    return _state(app)


def _certificates(app: bootstrap.App) -> list[tuple]:
    return [(e["ets"], e["object"], e["edata"]) for e in per_learner(topic_events(app, "certificate"))]


@PROPERTY_SETTINGS
@given(events=attempt_events(), seed=st.integers(0, 1000))
def test_results_do_not_depend_on_event_order(app, events, seed):
    """Attempts (not recomputes) in any order give the same rows: the guard keeps the newest of each key."""
    attempts_only = [e for e in events if e["events"]]
    shuffled = attempts_only[:]
    random.Random(seed).shuffle(shuffled)
    assert _run(app, attempts_only) == _run(app, shuffled)


@PROPERTY_SETTINGS
@given(events=attempt_events())
def test_replaying_the_same_events_changes_nothing(app, events):
    first = _run(app, events)
    publish(app, "assess", [e for e in events if e["events"]])
    drain(app)
    assert _state(app) == first


@PROPERTY_SETTINGS
@given(events=attempt_events(), batch_size=st.integers(2, 5))
def test_batch_processing_equals_one_by_one(app, events, batch_size):
    one_by_one = _run(app, events, batch_size=1)
    certificates = _certificates(app)
    assert _run(app, events, batch_size=batch_size) == one_by_one
    assert _certificates(app) == certificates
