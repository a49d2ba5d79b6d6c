"""Property test: hostile events mixed with valid ones never stop the assessment aggregator nor change its results.

Generated hostile events (huge and non-finite numbers, deep nesting, NUL characters, wrong types, giant strings,
text that is not a JSON object) are interleaved with valid attempts and run through the real worker, with batch
sizes that put them anywhere in a batch. The worker drains and returns normally, the rows and certificate requests
equal those of a run with the valid events only, and every hostile event is in the failed topic with a reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnagg import bootstrap
from learnagg.bench.demo_data import batch_event
from learnagg.domain.assess_event import InvalidEvent, parse_assessment_event
from tests.support import activity_rows, attempts, course, drain, load, per_learner, publish, reset, topic_events

C, B = "do_course", "batch-1"
CONTENTS = ["do_a1", "do_a2"]


def _answer(qid: str, score: Any, maxscore: Any = 2, **item: Any) -> dict[str, Any]:
    return {
        "eid": "ASSESS",
        "ets": 3,
        "edata": {"score": score, "duration": 1, "item": {"id": qid, "maxscore": maxscore, **item}},
    }


@st.composite
def valid_event(draw: st.DrawFn) -> dict[str, Any]:
    answers = [
        _answer(f"q{draw(st.integers(1, 3))}", draw(st.sampled_from([0, 0.5, 1, 2])))
        for _ in range(draw(st.integers(1, 3)))
    ]
    return batch_event(
        course_id=C,
        batch_id=B,
        user_id=draw(st.sampled_from(["u-1", "u-2", "u-3"])),
        content_id=draw(st.sampled_from(CONTENTS)),
        attempt_id=draw(st.sampled_from(["at-1", "at-2"])),
        ts=draw(st.integers(1, 40)),
        events=answers,
    )


def _nested(depth: int) -> Any:
    value: Any = {"text": "leaf"}
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


def _parser_refuses_nul() -> bool:
    """Whether the assessment parser's input bounds refuse NUL characters (SQLite would otherwise store them)."""
    event = batch_event(course_id=C, batch_id=B, user_id="u\x00", content_id="x", attempt_id="a", ts=1, events=[])
    try:
        parse_assessment_event(event)
    except InvalidEvent:
        return True
    return False


def _set(path: tuple[Any, ...], value: Any) -> Any:
    """A mutation that sets ``event[path…] = value``."""

    def apply(event: dict[str, Any]) -> None:
        target: Any = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return apply


SCORE = ("events", 0, "edata", "score")
MAXSCORE = ("events", 0, "edata", "item", "maxscore")

huge_number = st.floats(min_value=1e26, max_value=1e300) | st.floats(min_value=-1e300, max_value=-1e26)
mutations = st.one_of(
    st.builds(_set, st.just(("assessmentTs",)), st.integers(2**63, 2**64 - 1) | st.integers(-(2**64), -(2**63) - 1)),
    st.builds(_set, st.sampled_from([SCORE, MAXSCORE]), huge_number),
    st.builds(_set, st.sampled_from([SCORE, MAXSCORE]), st.sampled_from(["1e999", "-1e999", "1E400"])),
    st.builds(
        _set,
        st.sampled_from([("events", 0, "edata", "item", "params"), ("events", 0, "edata", "resvalues")]),
        st.integers(300, 600).map(_nested),
    ),
    st.builds(_set, st.just(("userId",)), st.sampled_from([5, None, ["u-1"], {"id": "u-1"}, ""])),
    st.builds(_set, st.just(("assessmentTs",)), st.sampled_from(["12", 1.5, True, None, [1]])),
    st.builds(_set, st.just(("events",)), st.sampled_from(["x", {"a": 1}, [None], [1]])),
    st.builds(_set, st.just(SCORE), st.sampled_from([True, [1], {"v": 1}, "twelve"])),
    st.builds(_set, st.sampled_from([SCORE, ("assessmentTs",)]), st.integers(10_000, 200_000).map(lambda n: "9" * n)),
)
nul_mutations = st.builds(
    _set,
    st.sampled_from([("userId",), ("contentId",), ("events", 0, "edata", "item", "title")]),
    st.sampled_from(["u\x00", "\x00", "what\x00is"]),
)
not_an_object = st.sampled_from(["{", "[1, 2]", "null", '"text"', "1e999", '{"assessmentTs": 1'])


@st.composite
def hostile_text(draw: st.DrawFn, marker: int, nul: bool) -> str:
    """A hostile event as published (JSON text); it carries ``hostile: marker`` when it is an object."""
    if draw(st.integers(0, 9)) == 0:
        return draw(not_an_object) + " " * marker  # trailing blanks keep the texts apart
    event = draw(valid_event())
    event["hostile"] = marker  # unknown fields are ignored by the parser
    draw(nul_mutations if nul and draw(st.booleans()) else mutations)(event)
    return json.dumps(event)  # the standard library encodes the deep nesting orjson refuses


@st.composite
def mixed_events(draw: st.DrawFn, nul: bool) -> tuple[list[dict[str, Any]], list[str], list[str | dict[str, Any]]]:
    valid = draw(st.lists(valid_event(), min_size=1, max_size=8))
    hostile = [draw(hostile_text(n, nul)) for n in range(draw(st.integers(1, 5)))]
    mixed: list[str | dict[str, Any]] = list(valid)
    for text in hostile:
        mixed.insert(draw(st.integers(0, len(mixed))), text)
    return valid, hostile, mixed


def _reset(app: bootstrap.App) -> None:
    reset(app)
    load(app, course(C, CONTENTS))


def _run(app: bootstrap.App, events: list[str | dict[str, Any]], batch_size: int) -> tuple[Any, ...]:
    _reset(app)
    publish(app, "assess", events)
    app.settings.worker.batch_size = batch_size
    drain(app)  # returns normally: no job stopped
    certificates = [(e["ets"], e["object"], e["edata"]) for e in per_learner(topic_events(app, "certificate"))]
    return attempts(app), activity_rows(app), certificates


def _marker(envelope: dict[str, Any], by_text: dict[str, int]) -> int:
    """Which hostile event a failed envelope holds."""
    if set(envelope) == {"raw", "metadata"}:
        raw = envelope["raw"]
        return by_text[raw] if raw in by_text else json.loads(raw)["hostile"]
    return int(envelope["hostile"])


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), batch_size=st.sampled_from([1, 2, 3, 500]))
def test_hostile_events_are_failed_and_valid_ones_applied_as_without_them(app, data, batch_size):
    nul = app.store.backend == "postgresql" or _parser_refuses_nul()
    valid, hostile, mixed = data.draw(mixed_events(nul))

    with_hostile = _run(app, mixed, batch_size)
    failed = topic_events(app, "telemetry.assess.failed")
    without = _run(app, list(valid), batch_size)

    assert with_hostile == without
    by_text = {text: n for n, text in enumerate(hostile)}
    assert sorted(_marker(e, by_text) for e in failed) == list(range(len(hostile)))
    for envelope in failed:
        reason = envelope["metadata"]["validation_error"]
        assert isinstance(reason, str) and 0 < len(reason) <= 500
        assert envelope["metadata"]["src"] == "AssessmentAggregator"
