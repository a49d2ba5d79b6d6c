"""Tests for assessment batch event validation (SPEC A1) and answer normalisation (SPEC A2)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from learnagg.domain.assess_event import (
    AssessmentBatchEvent,
    InvalidEvent,
    Question,
    parse_assessment_event,
)

SHARED_GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden-assess-event.json"

_CONTEXT: dict[str, Any] = {
    "channel": "0124784842112040965",
    "pdata": {"id": "dev.sunbird.portal", "ver": "2.4.0", "pid": "sunbird-portal.contentplayer"},
    "env": "contentplayer",
    "sid": "wqmQpaYc9mRD6jdU6NOWuBTEyGMPXFEe",
    "did": "a08946e8b72abfeeff6642f245d470cb",
    "cdata": [
        {"id": "do_2128415652377067521127", "type": "course"},
        {"type": "batch", "id": "012846671379595264119"},
        {"id": "f3ec2acf4360e93172b9234e29e38be4", "type": "ContentSession"},
    ],
    "rollup": {"l1": "0124784842112040965"},
}
_OBJECT: dict[str, Any] = {
    "id": "do_212686723743318016173",
    "type": "Content",
    "ver": "1",
    "rollup": {"l1": "do_2128415652377067521127", "l2": "do_2128415660716359681128"},
}
MCQ_ID = "801ae93c-8807-4be5-8853-dd49362d8776"
MTF_ID = "2bc922e7-985e-486a-ae23-4ba9a1c67edc"
WHO = '{"text":"World Health Organizaton\\n"}'
MCQ_PARAMS = [
    {"1": WHO},
    {"2": '{"text":"Work Heavy Organization\\n"}'},
    {"3": '{"text":"Work hell Organization\\n"}'},
    {"4": '{"text":"None of The above\\n"}'},
    {"answer": '{"correct":["1"]}'},
]
MTF_LHS = '[{"1":"{\\"text\\":\\"1\\"}"},{"2":"{\\"text\\":\\"2\\"}"},{"3":"{\\"text\\":\\"3\\"}"}]'
MTF_PARAMS = [
    {"lhs": MTF_LHS},
    {"rhs": '[{"1":"{\\"text\\":\\"2\\"}"},{"2":"{\\"text\\":\\"3\\"}"},{"3":"{\\"text\\":\\"1\\"}"}]'},
    {"answer": '{"lhs":["1","2","3"],"rhs":["3","1","2"]}'},
]
MTF_RESVALUES = [
    {"lhs": MTF_LHS},
    {"rhs": '[{"1":"{\\"text\\":\\"3\\"}"},{"2":"{\\"text\\":\\"2\\"}"},{"3":"{\\"text\\":\\"1\\"}"}]'},
]


def _golden_answer(
    mid: str,
    ets: int,
    item: dict[str, Any],
    index: int,
    passed: str,
    score: float,
    resvalues: list,
    duration: int,
) -> dict[str, Any]:
    return {
        "eid": "ASSESS",
        "ets": ets,
        "ver": "3.1",
        "mid": mid,
        "actor": {"id": "ff1c4bdf-27e2-49bc-a53f-6e304bb3a87f", "type": "User"},
        "context": copy.deepcopy(_CONTEXT),
        "object": copy.deepcopy(_OBJECT),
        "tags": ["0124784842112040965"],
        "edata": {
            "item": copy.deepcopy(item),
            "index": index,
            "pass": passed,
            "score": score,
            "resvalues": resvalues,
            "duration": duration,
        },
    }


def _item(item_id: str, kind: str, params: list, title: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "maxscore": 1,
        "type": kind,
        "exlength": 0,
        "params": params,
        "uri": "",
        "title": title,
        "mmc": [],
        "mc": [],
        "desc": "",
    }


def golden_event() -> dict[str, Any]:
    """The SPEC §3.6 input, equal to tests/fixtures/golden-assess-event.json."""
    mcq = _item(MCQ_ID, "mcq", MCQ_PARAMS, "What is the Full form of WHO..?\n")
    mtf = _item(MTF_ID, "mtf", MTF_PARAMS, "MTF 3\n")
    return {
        "assessmentTs": 1568891729576,
        "batchId": "012846671379595264119",
        "courseId": "do_2128415652377067521125",
        "userId": "ff1c4bdf-27e2-49bc-a53f-6e304bb3a87f",
        "attemptId": "8cd87e24df268ad09a8b0060c0a40271",
        "contentId": "do_212686723743318016173",
        "events": [
            _golden_answer("ASSESS:db00a858fec1b8796c62f224874c7edf", 1568891735461, mcq, 1, "No", 0, [], 2),
            _golden_answer(
                "ASSESS:135815023ec32a430632ba5d7f84fe18",
                1568891738245,
                mcq,
                1,
                "No",
                0,
                [{"2": '{"text":"Work Heavy Organization\\n"}'}],
                4,
            ),
            _golden_answer(
                "ASSESS:6ba5953669ea86e8f85759d3e7f5998b", 1568891747395, mcq, 1, "Yes", 1, [{"1": WHO}], 14
            ),
            _golden_answer(
                "ASSESS:018f01bf99288474860b630b513b9d0c",
                1568891772964,
                mtf,
                2,
                "No",
                0.33,
                MTF_RESVALUES,
                24,
            ),
        ],
    }


def minimal_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "assessmentTs": 1000,
        "courseId": "c1",
        "batchId": "b1",
        "userId": "u1",
        "contentId": "x1",
        "attemptId": "a1",
        "events": [answer()],
    }
    event.update(overrides)
    return event


def answer(ets: int = 10, **edata: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"item": {"id": "q1", "maxscore": 1}, "score": 1, "duration": 3}
    body.update(edata)
    return {"ets": ets, "edata": body}


def reason_of(raw: object) -> str:
    with pytest.raises(InvalidEvent) as caught:
        parse_assessment_event(raw)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def only_question(**edata: Any) -> Question:
    return parse_assessment_event(minimal_event(events=[answer(**edata)])).questions[0]


# --- golden example (SPEC §3.6) ---------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED_GOLDEN.exists(), reason="shared golden fixture not available")
def test_golden_literal_matches_shared_fixture() -> None:
    assert json.loads(SHARED_GOLDEN.read_text(encoding="utf-8")) == golden_event()


def test_golden_event_parses_all_answers_in_input_order() -> None:
    event = parse_assessment_event(golden_event())
    assert isinstance(event, AssessmentBatchEvent)
    assert event.course_id == "do_2128415652377067521125"
    assert event.batch_id == "012846671379595264119"
    assert event.user_id == "ff1c4bdf-27e2-49bc-a53f-6e304bb3a87f"
    assert event.content_id == "do_212686723743318016173"
    assert event.attempt_id == "8cd87e24df268ad09a8b0060c0a40271"
    assert event.assessment_ts == 1568891729576
    assert not event.is_recompute
    assert [q.assess_ts for q in event.questions] == [
        1568891735461,
        1568891738245,
        1568891747395,
        1568891772964,
    ]
    mcq = event.questions[2]
    assert mcq.to_json() == {
        "id": MCQ_ID,
        "assess_ts": 1568891747395,
        "max_score": 1.0,
        "score": 1.0,
        "type": "mcq",
        "title": "What is the Full form of WHO..?\n",
        "description": "",
        "duration": 14.0,
        "resvalues": [{"1": '{"text":"World Health Organizaton\\n"}'}],
        "params": MCQ_PARAMS,
    }
    # Stored in the archive's key order (docs/batch.md#assessment-archival), so archiving needs no reordering.
    assert list(mcq.to_json()) == [
        "id",
        "assess_ts",
        "max_score",
        "score",
        "type",
        "title",
        "resvalues",
        "params",
        "description",
        "duration",
    ]
    assert event.questions[0].resvalues == ()


# --- A1 validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, [], "text", 5, True])
def test_a1_event_not_a_json_object(raw: object) -> None:
    assert reason_of(raw) == "event is not a JSON object"


@pytest.mark.parametrize("field", ["courseId", "batchId", "userId", "contentId"])
@pytest.mark.parametrize("bad", ["<absent>", None, "", "   ", "\t\n", 5, True, ["x"], {"a": "b"}])
def test_a1_mandatory_ids_must_be_non_blank_strings(field: str, bad: object) -> None:
    event = minimal_event()
    if bad == "<absent>":
        del event[field]
    else:
        event[field] = bad
    assert reason_of(event) == f"{field} is mandatory"


def test_a1_mandatory_ids_checked_in_spec_order() -> None:
    event = minimal_event(courseId=None, batchId=None, userId=None, contentId=None, assessmentTs="x")
    assert reason_of(event) == "courseId is mandatory"
    event["courseId"] = "c"
    assert reason_of(event) == "batchId is mandatory"
    event["batchId"] = "b"
    assert reason_of(event) == "userId is mandatory"
    event["userId"] = "u"
    assert reason_of(event) == "contentId is mandatory"
    event["contentId"] = "x"
    assert reason_of(event) == "assessmentTs must be an integer"


@pytest.mark.parametrize("bad", ["<absent>", None, "1568891729576", True, False, 1.5, [1], {"a": 1}])
def test_a1_assessment_ts_must_be_an_integer(bad: object) -> None:
    event = minimal_event()
    if bad == "<absent>":
        del event["assessmentTs"]
    else:
        event["assessmentTs"] = bad
    assert reason_of(event) == "assessmentTs must be an integer"


def test_a1_assessment_ts_float_is_refused() -> None:
    raw = json.loads('{"assessmentTs":1568891729576.0,"courseId":"c","batchId":"b","userId":"u","contentId":"x"}')
    assert reason_of(raw) == "assessmentTs must be an integer"


@pytest.mark.parametrize("bad", ["[]", {}, 5, True, "x"])
def test_a1_events_must_be_an_array(bad: object) -> None:
    assert reason_of(minimal_event(events=bad, attemptId=None)) == "events must be an array"


@pytest.mark.parametrize("bad", ["<absent>", None, "", "  ", 7, True])
def test_a1_attempt_id_mandatory_when_events_non_empty(bad: object) -> None:
    event = minimal_event(events=[{"not": "checked yet"}])
    if bad == "<absent>":
        del event["attemptId"]
    else:
        event["attemptId"] = bad
    assert reason_of(event) == "attemptId is mandatory"


@pytest.mark.parametrize("events", ["<absent>", None, []])
def test_a1_attempt_id_optional_for_recompute(events: object) -> None:
    event = minimal_event(attemptId=None)
    if events == "<absent>":
        del event["events"]
    else:
        event["events"] = events
    parsed = parse_assessment_event(event)
    assert parsed.is_recompute
    assert parsed.questions == ()
    assert parsed.attempt_id is None


def test_a1_recompute_keeps_a_string_attempt_id_and_drops_a_non_string_one() -> None:
    assert parse_assessment_event(minimal_event(events=None)).attempt_id == "a1"
    assert parse_assessment_event(minimal_event(events=None, attemptId=12)).attempt_id is None


@pytest.mark.parametrize("bad_answer", [None, 5, "s", [], {"ets": None}, {"ets": "1"}, {"ets": 1.0}, {"ets": True}, {}])
def test_a1_answer_ets_must_be_an_integer(bad_answer: object) -> None:
    event = minimal_event(events=[answer(), bad_answer])
    assert reason_of(event) == "events[1].ets must be an integer"


@pytest.mark.parametrize(
    "bad_answer",
    [
        {"ets": 1},
        {"ets": 1, "edata": None},
        {"ets": 1, "edata": []},
        {"ets": 1, "edata": {}},
        {"ets": 1, "edata": {"item": None}},
        {"ets": 1, "edata": {"item": "q1"}},
        {"ets": 1, "edata": {"item": [{"id": "q1"}]}},
    ],
)
def test_a1_answer_edata_item_is_mandatory(bad_answer: object) -> None:
    assert reason_of(minimal_event(events=[bad_answer])) == "events[0].edata.item is mandatory"


@pytest.mark.parametrize("bad", ["abc", "", " ", True, [1], {"v": 1}, "1,5"])
def test_a1_score_duration_maxscore_must_be_numeric(bad: object) -> None:
    assert reason_of(minimal_event(events=[answer(score=bad)])) == "events[0].edata.score must be numeric"
    assert reason_of(minimal_event(events=[answer(duration=bad)])) == "events[0].edata.duration must be numeric"
    item_answer = answer(item={"id": "q", "maxscore": bad})
    assert reason_of(minimal_event(events=[item_answer])) == "events[0].edata.item.maxscore must be numeric"


@pytest.mark.parametrize("bad", [{}, "x", 5, True, [1], ["a"], [{}, None], [[]]])
def test_a1_resvalues_and_params_must_be_arrays_of_objects(bad: object) -> None:
    assert (
        reason_of(minimal_event(events=[answer(resvalues=bad)]))
        == "events[0].edata.resvalues must be an array of objects"
    )
    params_answer = answer(item={"id": "q", "params": bad})
    assert reason_of(minimal_event(events=[params_answer])) == "events[0].edata.item.params must be an array of objects"


def test_a1_checks_within_one_answer_run_in_spec_order() -> None:
    bad: dict[str, Any] = {
        "ets": "x",
        "edata": {
            "item": {"id": "q", "maxscore": "m", "params": 1},
            "score": "s",
            "duration": "d",
            "resvalues": 1,
        },
    }
    assert reason_of(minimal_event(events=[bad])) == "events[0].ets must be an integer"
    bad["ets"] = 5
    assert reason_of(minimal_event(events=[bad])) == "events[0].edata.score must be numeric"
    bad["edata"]["score"] = None
    assert reason_of(minimal_event(events=[bad])) == "events[0].edata.duration must be numeric"
    bad["edata"]["duration"] = "2"
    assert reason_of(minimal_event(events=[bad])) == "events[0].edata.item.maxscore must be numeric"
    bad["edata"]["item"]["maxscore"] = 1
    assert reason_of(minimal_event(events=[bad])) == "events[0].edata.resvalues must be an array of objects"
    bad["edata"]["resvalues"] = []
    assert reason_of(minimal_event(events=[bad])) == "events[0].edata.item.params must be an array of objects"
    bad["edata"]["item"]["params"] = []
    assert parse_assessment_event(minimal_event(events=[bad])).questions[0].duration == 2.0


def test_a1_edata_item_is_checked_before_score() -> None:
    bad = {"ets": 1, "edata": {"score": "s"}}
    assert reason_of(minimal_event(events=[bad])) == "events[0].edata.item is mandatory"


def test_a1_first_failing_answer_in_array_order_wins() -> None:
    events = [answer(), answer(score="bad"), {"ets": None}]
    assert reason_of(minimal_event(events=events)) == "events[1].edata.score must be numeric"


def test_a1_event_level_checks_come_before_answer_checks() -> None:
    assert reason_of(minimal_event(events=[None], assessmentTs=None)) == "assessmentTs must be an integer"
    assert reason_of(minimal_event(events=[None], attemptId="")) == "attemptId is mandatory"


def test_a1_numeric_strings_absent_and_null_values_are_accepted() -> None:
    question = only_question(score=" 2.5 ", duration=None, item={"id": "q", "maxscore": "1e1"})
    assert (question.score, question.duration, question.max_score) == (2.5, 0.0, 10.0)


# --- A2 normalisation ---------------------------------------------------------------------------------------


def test_a2_numbers_become_doubles_and_absent_becomes_zero() -> None:
    question = parse_assessment_event(minimal_event(events=[{"ets": 7, "edata": {"item": {}}}])).questions[0]
    assert question == Question(
        id=None,
        assess_ts=7,
        max_score=0.0,
        score=0.0,
        type=None,
        title=None,
        description=None,
        duration=0.0,
        resvalues=(),
        params=(),
    )
    scored = only_question(score=1, duration=4, item={"id": "q", "maxscore": 2})
    for value in (scored.score, scored.duration, scored.max_score):
        assert type(value) is float


def test_a2_map_strings_kept_and_nulls_dropped() -> None:
    question = only_question(resvalues=[{"a": "x", "b": None, "c": ""}, {"d": None}])
    assert question.resvalues == ({"a": "x", "c": ""}, {})


def test_a2_map_numbers_render_as_doubles() -> None:
    question = only_question(resvalues=[{"i": 5, "f": 2.5, "neg": -3, "big": 10**15, "zero": 0}])
    assert question.resvalues == ({"i": "5.0", "f": "2.5", "neg": "-3.0", "big": "1000000000000000.0", "zero": "0.0"},)


def test_a2_map_nested_values_compact_json_with_doubles_and_no_null_members() -> None:
    item = {
        "id": "q",
        "params": [
            {
                "a": {"a": [1, 2.5]},
                "b": [1, None, {"x": None, "y": True, "z": [None]}],
                "c": {"deep": {"gone": None}},
                "d": True,
                "e": False,
                "f": {"t": "é ü 中"},
            }
        ],
    }
    question = only_question(item=item)
    assert question.params == (
        {
            "a": '{"a":[1.0,2.5]}',
            "b": '[1.0,null,{"y":true,"z":[null]}]',
            "c": '{"deep":{}}',
            "d": "true",
            "e": "false",
            "f": '{"t":"é ü 中"}',
        },
    )


def test_a2_text_fields_keep_strings_and_render_other_values_as_json() -> None:
    question = only_question(item={"id": 5, "type": True, "title": 2.5, "desc": {"k": [1, None]}})
    assert question.id == "5"
    assert question.type == "true"
    assert question.title == "2.5"
    assert question.description == '{"k":[1,null]}'
    plain = only_question(item={"id": "ü", "type": "mcq", "title": "", "desc": None})
    assert (plain.id, plain.type, plain.title, plain.description) == ("ü", "mcq", "", None)


def test_a2_other_answer_fields_are_ignored() -> None:
    extra = answer(pass_="Yes", index=3)
    extra["eid"] = "ASSESS"
    extra["actor"] = {"id": "someone-else"}
    extra["edata"]["item"]["uri"] = 5
    assert parse_assessment_event(minimal_event(events=[extra])).questions[0] == only_question()


def test_a2_to_json_returns_fresh_lists() -> None:
    question = only_question(resvalues=[{"a": "1"}])
    data = question.to_json()
    data["resvalues"].append({"b": "2"})  # type: ignore[union-attr]
    assert question.resvalues == ({"a": "1"},)
    assert json.loads(json.dumps(data)) == data


def test_integers_beyond_the_number_bound_are_refused_not_rendered_infinite() -> None:
    # Regression: 10**400 used to become an infinite score, which then broke the aggregate's rendering.
    with pytest.raises(InvalidEvent) as refused:
        only_question(score=10**400)
    assert refused.value.reason == "events[0].edata.score must be a finite number with absolute value at most 1e15"
    with pytest.raises(InvalidEvent) as refused:
        only_question(resvalues=[{"k": [10**400, -(10**400)]}])
    assert refused.value.reason == (
        "events[0].edata.resvalues must hold only finite numbers with absolute value at most 1e15"
    )
