"""The input bounds (docs/threat-model.md): the bound functions, numbers in ASCII digits only, and the bounds as
the assessment parser applies them (right after the A1 check of the same field)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from learnagg.domain import bounds
from learnagg.domain.assess_event import InvalidEvent, parse_assessment_event
from learnagg.domain.content_state import api_time_text, bounded_api_time, stored_api_time
from learnagg.domain.numbers import finite_double, is_numeric, is_numeric_text, to_double, truncated_int
from tests.domain.test_assess_event import answer, golden_event, minimal_event

MAX_TS = 253402300799999
NUMBER = "must be a finite number with absolute value at most 1e15"
TIMESTAMP = "must be an epoch-ms timestamp between 0 and 253402300799999"
NESTED = "is nested deeper than 64 levels"
NUL = "must not contain a NUL character"


def nested(depth: int, leaf: Any = "x") -> Any:
    """A value with ``depth`` containers (lists and objects alternating) around ``leaf``."""
    value = leaf
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


def refusal(raw: object, **kwargs: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_assessment_event(raw, **kwargs)
    return caught.value


def reason(raw: object, **kwargs: Any) -> str:
    return refusal(raw, **kwargs).reason


# --- the bound functions ---


@pytest.mark.parametrize("value", [0, 1e15, -1e15, 10**15, -(10**15), 2.5, 0.0])
def test_numbers_within_the_bound(value: float) -> None:
    assert bounds.number_ok(value)


@pytest.mark.parametrize("value", [1e26, -1e16, 10**15 + 1, 2**63, 10**400, math.inf, -math.inf, math.nan])
def test_numbers_beyond_the_bound_or_not_finite(value: float) -> None:
    assert not bounds.number_ok(value)


def test_timestamp_bounds() -> None:
    assert bounds.timestamp_ok(0) and bounds.timestamp_ok(MAX_TS)
    assert not bounds.timestamp_ok(-1) and not bounds.timestamp_ok(MAX_TS + 1) and not bounds.timestamp_ok(2**63)


def test_nesting_is_counted_in_containers_below_the_event() -> None:
    # A field of the event is at level 1: 64 containers (levels 1 to 64) are allowed, a 65th is not.
    assert bounds.json_violation(nested(64), level=1) is None
    assert bounds.json_violation(nested(65), level=1) == NESTED
    assert bounds.json_violation(nested(60), level=5) is None
    assert bounds.json_violation(nested(61), level=5) == NESTED
    assert bounds.json_violation(nested(65)) is None  # the event itself, at level 0, and 64 below it


def test_nesting_check_never_recurses() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert bounds.json_violation(deep) == NESTED


def test_nul_in_any_text_or_key_at_any_depth() -> None:
    assert bounds.json_violation({"a": [{"b": "x\x00y"}]}) == NUL
    assert bounds.json_violation({"a": [{"b\x00": "x"}]}) == NUL
    assert bounds.json_violation("\x00") == NUL
    assert bounds.json_violation({"a": ["x", 1, None, True, 2.5]}) is None


def test_numbers_in_values_the_jobs_read_or_only_non_finite_ones() -> None:
    assert bounds.json_violation([1e20]) is None
    assert bounds.json_violation([math.inf]) == bounds.FINITE_RULE
    assert bounds.json_violation([1e20], numbers=True) == bounds.NUMBERS_RULE
    assert bounds.json_violation({"k": [math.nan]}, numbers=True) == bounds.NUMBERS_RULE
    assert bounds.json_violation([True, 10**15], numbers=True) is None


def test_answer_count() -> None:
    assert bounds.questions_error("events", 1000, 1000) is None
    assert bounds.questions_error("events", 200_000, 1000) == "events has 200000 answers, more than the 1000 allowed"


def test_short_text_never_renders_deep_or_huge_values() -> None:
    assert bounds.short_text(nested(100_001)) == "{...}"
    assert bounds.short_text([1]) == "[...]"
    assert bounds.short_text(10**5000) == "an integer of about 5001 digits"
    assert bounds.short_text(2**63) == "9223372036854775808"
    assert bounds.short_text("x" * 100) == "x" * 61 + "..."
    assert bounds.short_text(1e26) == "1e+26"
    assert bounds.short_text(None) == "null"


# --- numbers are ASCII digits only ---


@pytest.mark.parametrize("text", ["١٢", "１２", "१२", "1٢", "٣.5"])
def test_other_scripts_digits_are_not_numbers(text: str) -> None:
    # Regression: \d matched Arabic-Indic and full-width digits, so "١٢" read as 12.0.
    assert not is_numeric_text(text) and not is_numeric(text)
    assert finite_double(text) is None and truncated_int(text) is None
    with pytest.raises(ValueError):
        to_double(text)


def test_ascii_numbers_still_read() -> None:
    assert [to_double(t) for t in ("12", " 2.5 ", "-1e3", ".5", "+3.")] == [12.0, 2.5, -1000.0, 0.5, 3.0]


def test_numeric_string_scores_in_other_digits_are_refused() -> None:
    assert reason(minimal_event(events=[answer(score="١٢")])) == "events[0].edata.score must be numeric"


# --- the bounds in the assessment parser ---


@pytest.mark.parametrize("ts", [2**63, 9223372036854775808, -1, MAX_TS + 1, 10**400])
def test_assessment_ts_range_after_its_integer_check(ts: int) -> None:
    refused = refusal(minimal_event(assessmentTs=ts, events="not checked yet"))
    assert refused.reason == f"assessmentTs {TIMESTAMP}"
    assert (refused.field, refused.value) == ("assessmentTs", ts)


def test_assessment_ts_edges_accepted() -> None:
    assert parse_assessment_event(minimal_event(assessmentTs=0)).assessment_ts == 0
    assert parse_assessment_event(minimal_event(assessmentTs=MAX_TS)).assessment_ts == MAX_TS


@pytest.mark.parametrize("ets", [-1, MAX_TS + 1, 2**63])
def test_answer_ets_range(ets: int) -> None:
    assert reason(minimal_event(events=[answer(), answer(ets=ets)])) == f"events[1].ets {TIMESTAMP}"


@pytest.mark.parametrize(
    ("edata", "path"),
    [
        ({"score": 1e26}, "edata.score"),
        ({"score": -1e16}, "edata.score"),
        ({"score": "1e999"}, "edata.score"),
        ({"score": "1e26"}, "edata.score"),
        ({"score": "9" * 200_000}, "edata.score"),
        ({"score": 10**20}, "edata.score"),
        ({"score": math.inf}, "edata.score"),
        ({"score": math.nan}, "edata.score"),
        ({"duration": 2**63}, "edata.duration"),
        ({"item": {"id": "q", "maxscore": 1e26}}, "edata.item.maxscore"),
        ({"item": {"id": "q", "maxscore": "-1E400"}}, "edata.item.maxscore"),
    ],
)
def test_numbers_beyond_the_bound_are_refused_naming_the_field(edata: dict[str, Any], path: str) -> None:
    refused = refusal(minimal_event(events=[answer(**edata)]))
    assert refused.reason == f"events[0].{path} {NUMBER}"
    assert refused.field == f"events[0].{path}"


def test_numbers_at_the_bound_are_accepted() -> None:
    event = minimal_event(events=[answer(score=1e15, duration="-1e15", item={"id": "q", "maxscore": 10**15})])
    question = parse_assessment_event(event).questions[0]
    assert (question.score, question.duration, question.max_score) == (1e15, -1e15, 1e15)


def test_a_non_numeric_value_keeps_its_a1_message() -> None:
    assert reason(minimal_event(events=[answer(score="1e26x")])) == "events[0].edata.score must be numeric"


@pytest.mark.parametrize(
    ("edata", "path"),
    [
        ({"resvalues": [{"a": nested(500)}]}, "edata.resvalues"),
        ({"item": {"id": "q", "params": [{"a": nested(59)}]}}, "edata.item.params"),
        ({"item": {"id": "q", "title": nested(61)}}, "edata.item.title"),
        ({"item": {"id": nested(61)}}, "edata.item.id"),
    ],
)
def test_deep_nesting_in_read_fields_is_refused(edata: dict[str, Any], path: str) -> None:
    assert reason(minimal_event(events=[answer(), answer(**edata)])) == f"events[1].{path} {NESTED}"


def test_nesting_up_to_64_levels_below_the_event_is_accepted() -> None:
    # A params map is 6 levels below the event (events, answer, edata, item, params, map): 58 more are allowed.
    question = parse_assessment_event(minimal_event(events=[answer(item={"id": "q", "params": [{"a": nested(58)}]})]))
    assert question.questions[0].params[0]["a"].startswith('[{"k":[{"k"')


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"userId": "u\x00"}, f"userId {NUL}"),
        ({"courseId": "\x00"}, f"courseId {NUL}"),
        ({"contentId": "what\x00is"}, f"contentId {NUL}"),
        ({"attemptId": "a\x00"}, f"attemptId {NUL}"),
        ({"attemptId": "a\x00", "events": []}, f"attemptId {NUL}"),
        ({"events": [answer(item={"id": "q", "title": "t\x00"})]}, f"events[0].edata.item.title {NUL}"),
        ({"events": [answer(item={"id": "q\x00"})]}, f"events[0].edata.item.id {NUL}"),
        ({"events": [answer(item={"id": "q", "type": "\x00"})]}, f"events[0].edata.item.type {NUL}"),
        ({"events": [answer(item={"id": "q", "desc": "\x00"})]}, f"events[0].edata.item.desc {NUL}"),
        ({"events": [answer(resvalues=[{"a": "1"}, {"b": "\x00"}])]}, f"events[0].edata.resvalues {NUL}"),
        ({"events": [answer(resvalues=[{"b\x00": "1"}])]}, f"events[0].edata.resvalues {NUL}"),
        ({"events": [answer(item={"id": "q", "params": [{"b": ["\x00"]}]})]}, f"events[0].edata.item.params {NUL}"),
    ],
)
def test_nul_in_read_fields_is_refused(overrides: dict[str, Any], message: str) -> None:
    assert reason(minimal_event(**overrides)) == message


def test_nul_is_checked_right_after_the_same_field() -> None:
    # courseId holds NUL and batchId is missing: courseId's checks come first (SPEC A1 order).
    assert reason(minimal_event(courseId="c\x00", batchId=None)) == f"courseId {NUL}"
    assert reason(minimal_event(courseId=None, batchId="b\x00")) == "courseId is mandatory"


def test_answers_are_counted_before_de_duplication() -> None:
    same = [answer(ets=n) for n in range(1001)]  # one question id: one answer after de-duplication
    refused = refusal(minimal_event(events=same))
    assert refused.reason == "events has 1001 answers, more than the 1000 allowed"
    assert refused.field == "events"
    assert len(parse_assessment_event(minimal_event(events=same[:1000])).questions) == 1000
    assert reason(minimal_event(events=same[:3]), max_questions=2) == "events has 3 answers, more than the 2 allowed"


def test_answer_count_comes_after_the_events_type_check_and_before_attempt_id() -> None:
    assert reason(minimal_event(events=[answer()] * 3, attemptId=None), max_questions=2).startswith("events has 3")
    assert reason(minimal_event(events="x"), max_questions=0) == "events must be an array"


# --- every_field: the APIs hold the fields the aggregator ignores to the bounds too ---


@pytest.mark.parametrize(
    ("mutate", "field", "rule"),
    [
        (lambda e: e["events"][0].update(context={"channel": "c\x00"}), "events[0].context", NUL),
        (lambda e: e["events"][0].update(context=nested(70)), "events[0].context", NESTED),
        (lambda e: e["events"][0]["edata"].update(extra=nested(62)), "events[0].edata.extra", NESTED),
        (lambda e: e["events"][0]["edata"]["item"].update(uri="\x00"), "events[0].edata.item.uri", NUL),
        (lambda e: e["events"][0].update({"k\x00": 1}), "events[0].k\\u0000", NUL),
        (lambda e: e.update(extra=[math.inf]), "extra", bounds.FINITE_RULE),
        (lambda e: e.update(extra=nested(65)), "extra", NESTED),
    ],
)
def test_every_field_refuses_hostile_values_in_ignored_fields(mutate: Any, field: str, rule: str) -> None:
    event = minimal_event()
    mutate(event)
    parse_assessment_event(copy.deepcopy(event))  # the stream job reads only what it needs: accepted
    refused = refusal(event, every_field=True)
    assert refused.reason == f"{field} {rule}"
    assert refused.field == field


def test_every_field_accepts_the_golden_event_and_large_integers_in_ignored_fields() -> None:
    assert parse_assessment_event(golden_event(), every_field=True) == parse_assessment_event(golden_event())
    parse_assessment_event(minimal_event(extra={"n": 2**70}), every_field=True)


# --- content-state dates ---


@pytest.mark.parametrize(
    "text", ["0001-01-01 00:00:00:000+1400", "9999-12-31 23:59:59:999-1400", "1969-12-31 23:59:59:999+0000"]
)
def test_content_dates_outside_the_bounds_raise_value_error_never_overflow(text: str) -> None:
    with pytest.raises(ValueError):
        bounded_api_time(text)
    assert stored_api_time("0001-01-01 00:00:00:000+1400") is None


def test_content_dates_inside_the_bounds() -> None:
    assert bounded_api_time("1970-01-01 00:00:00:000+0000") == 0
    assert bounded_api_time("9999-12-31 23:59:59:999+0000") == MAX_TS
    assert bounded_api_time("2023-11-14") is None and bounded_api_time(5) is None


def test_dates_the_zone_cannot_show_format_as_none() -> None:
    assert api_time_text(MAX_TS, "Asia/Kolkata") is None
    assert api_time_text(MAX_TS, "UTC") == "9999-12-31 23:59:59:999+0000"
