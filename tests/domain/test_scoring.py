"""Tests for de-duplication (SPEC A5), the question-count guard (SPEC A6) and attempt totals (SPEC A7)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from learnagg.domain.assess_event import Question, parse_assessment_event
from learnagg.domain.scoring import (
    AttemptScore,
    deduplicate,
    known_total_questions,
    question_count_error,
    score_attempt,
)

from .test_assess_event import MCQ_ID, MCQ_PARAMS, MTF_ID, MTF_PARAMS, MTF_RESVALUES, golden_event


def q(qid: str | None, ts: int, score: float = 1.0, max_score: float = 1.0, title: str | None = None) -> Question:
    return Question(
        id=qid,
        assess_ts=ts,
        max_score=max_score,
        score=score,
        type="mcq",
        title=title,
        description=None,
        duration=0.0,
        resvalues=(),
        params=(),
    )


# --- golden example (SPEC §3.6) ---------------------------------------------------------------------------


def test_golden_attempt_scores_1_33_of_2() -> None:
    result = score_attempt(parse_assessment_event(golden_event()).questions)
    assert isinstance(result, AttemptScore)
    assert result.total_score == 1.33
    assert result.total_max_score == 2.0
    assert result.grand_total == "1.33/2.0"
    assert [question.to_json() for question in result.questions] == [
        {
            "id": MTF_ID,
            "assess_ts": 1568891772964,
            "max_score": 1.0,
            "score": 0.33,
            "type": "mtf",
            "title": "MTF 3\n",
            "description": "",
            "duration": 24.0,
            "resvalues": MTF_RESVALUES,
            "params": MTF_PARAMS,
        },
        {
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
        },
    ]


# --- A5 de-duplication --------------------------------------------------------------------------------------


def test_a5_latest_ets_wins_per_id() -> None:
    kept = deduplicate([q("a", 5, score=0.0), q("a", 9, score=1.0), q("a", 7, score=0.5)])
    assert kept == [q("a", 9, score=1.0)]


def test_a5_tie_on_ets_keeps_first_in_array() -> None:
    kept = deduplicate([q("a", 5, title="first"), q("a", 5, title="second"), q("a", 4, title="older")])
    assert [k.title for k in kept] == ["first"]


def test_a5_none_ids_form_one_group_sorted_first() -> None:
    kept = deduplicate([q("b", 1), q(None, 3, title="old"), q("a", 1), q(None, 8, title="new"), q(None, 8)])
    assert [(k.id, k.title) for k in kept] == [(None, "new"), ("a", None), ("b", None)]


def test_a5_sort_is_by_code_point() -> None:
    ids = ["b", "B", "a", "é", "Z", "10", "9", "\U0001f600", "\uffff", ""]
    kept = deduplicate([q(i, 1) for i in ids])
    assert [k.id for k in kept] == ["", "10", "9", "B", "Z", "a", "b", "é", "\uffff", "\U0001f600"]
    assert [k.id.encode() for k in kept] == sorted(i.encode() for i in ids)  # type: ignore[union-attr]


def test_a5_empty_input() -> None:
    assert deduplicate([]) == []


# --- A6 question-count guard --------------------------------------------------------------------------------


def test_a6_known_total_questions() -> None:
    assert known_total_questions(2) == 2
    assert known_total_questions(2.9) == 2
    assert known_total_questions(1.0) == 1
    assert known_total_questions("3") == 3
    assert known_total_questions(" 4.7 ") == 4
    assert known_total_questions("1e2") == 100
    assert known_total_questions("+5") == 5


def test_a6_unknown_total_questions() -> None:
    for value in (
        None,
        0,
        0.0,
        0.9,
        "0.5",
        -1,
        -2.5,
        "-3",
        "",
        "  ",
        "abc",
        "2 questions",
        True,
        False,
        [2],
        {"n": 2},
    ):
        assert known_total_questions(value) is None, value
    for value in (float("nan"), float("inf"), "1e999999999", 10**30):
        assert known_total_questions(value) is None, value


def test_a6_question_count_error_message() -> None:
    assert question_count_error(3, 2, "do_1") == "question count 3 exceeds totalQuestions 2 for content do_1"
    assert question_count_error(2, 2, "do_1") is None
    assert question_count_error(1, 2, "do_1") is None
    assert question_count_error(99, None, "do_1") is None


def test_a6_golden_guard_passes_when_total_is_2_or_unknown() -> None:
    kept = len(score_attempt(parse_assessment_event(golden_event()).questions).questions)
    content = "do_212686723743318016173"
    assert question_count_error(kept, known_total_questions(2), content) is None
    assert question_count_error(kept, known_total_questions(None), content) is None
    assert question_count_error(kept, known_total_questions("1"), content) == (
        f"question count 2 exceeds totalQuestions 1 for content {content}"
    )


# --- A7 totals ---------------------------------------------------------------------------------------------


def test_a7_totals_start_at_zero_and_add_in_id_order() -> None:
    # (0.1 + 0.2) + 0.3 differs from 0.1 + (0.2 + 0.3) in binary; id order fixes which one is produced.
    result = score_attempt([q("c", 1, score=0.3), q("a", 1, score=0.1), q("b", 1, score=0.2)])
    assert result.total_score == (0.0 + 0.1) + 0.2 + 0.3
    assert result.total_score == 0.6000000000000001
    assert result.total_max_score == 3.0
    assert result.grand_total == "0.6/3.0"
    assert [k.id for k in result.questions] == ["a", "b", "c"]


def test_a7_empty_attempt_is_zero() -> None:
    result = score_attempt([])
    assert (result.questions, result.total_score, result.total_max_score, result.grand_total) == (
        (),
        0.0,
        0.0,
        "0.0/0.0",
    )


def test_a7_grand_total_uses_fmt2() -> None:
    assert score_attempt([q("a", 1, score=0.125, max_score=10.0)]).grand_total == "0.12/10.0"
    assert score_attempt([q("a", 1, score=-0.001, max_score=0.335)]).grand_total == "-0.0/0.34"


_scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    groups=st.dictionaries(
        keys=st.one_of(st.none(), st.text(max_size=3)),
        values=st.lists(st.tuples(_scores, _scores), min_size=1, max_size=4),
        max_size=6,
    ),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_a5_a7_score_is_independent_of_answer_order(groups: dict, seed: int) -> None:
    answers = [
        q(qid, ts, score=score, max_score=max_score)
        for qid, values in groups.items()
        for ts, (score, max_score) in enumerate(values)
    ]
    shuffled = list(answers)
    random.Random(seed).shuffle(shuffled)
    assert score_attempt(shuffled) == score_attempt(answers)
