"""A small, realistic and deterministic data set for `learnagg demo`: a course, learners and assessment attempts.

Pure: no database and no clock. The same arguments always give the same course and the same events (seeded
random), so a demo run is repeatable and tests can use the data directly. `assess_telemetry` builds one ASSESS
event shaped like the reference platform's content player output (docs/jobs/assessment.md#example); the ingest benchmark
reuses it.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE

ECML_MIME_TYPE = "application/vnd.ekstep.ecml-archive"

COURSE_ID = "do_foundations_of_data"
COURSE_NAME = "Foundations of Data"
BATCH_ID = "batch_fod_2024_spring"
CHANNEL = "org.learnagg.demo"
DEFAULT_SEED = 2024
FIRST_ATTEMPT_TS = 1_709_542_800_000  # 2024-03-04 09:00 UTC, when the first learner opens the first assessment
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000

_FIRST_NAMES = ("Asha", "Ben", "Chiara", "Deepa", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luis")
_LAST_NAMES = ("Rao", "Okafor", "Rossi", "Patel", "Yilmaz", "Haddad", "Kim", "Tanaka", "Silva", "Berg", "Adeyemi")


@dataclass(frozen=True, slots=True)
class DemoQuestion:
    """One question of an assessment: an item of ASSESS telemetry (`edata.item`)."""

    question_id: str
    title: str
    qtype: str  # "mcq" or "mtf"
    max_score: int
    options: tuple[str, ...]
    answer: int  # 1-based index of the correct option


@dataclass(frozen=True, slots=True)
class DemoAssessment:
    """A SelfAssess leaf of the demo course with its question bank (`totalQuestions` = number of questions)."""

    content_id: str
    name: str
    unit_id: str
    questions: tuple[DemoQuestion, ...]

    @property
    def total_questions(self) -> int:
        """The content's `totalQuestions` metadata."""
        return len(self.questions)


@dataclass(frozen=True, slots=True)
class DemoLearner:
    """A learner with a readable id and name."""

    user_id: str
    name: str


@dataclass(frozen=True, slots=True)
class DemoData:
    """Everything the demo loads and publishes."""

    course_id: str
    batch_id: str
    hierarchy: dict[str, Any]
    assessments: tuple[DemoAssessment, ...]
    learners: tuple[DemoLearner, ...]
    # assessment batch events (docs/reference/events.md#e1), in publish order
    attempt_events: tuple[dict[str, Any], ...]


def _q(question_id: str, title: str, options: Sequence[str], answer: int, max_score: int = 1) -> DemoQuestion:
    return DemoQuestion(question_id, title, "mcq", max_score, tuple(options), answer)


# The demo course: two units, six leaves, three of them SelfAssess assessments (hierarchy order).
ASSESSMENTS: tuple[DemoAssessment, ...] = (
    DemoAssessment(
        "do_fod_check_data_types",
        "Quick check: data types",
        "do_fod_unit_working_with_data",
        (
            _q("q-types-categorical", "Which of these is categorical data?", ("Eye colour", "Height", "Age"), 1),
            _q("q-types-float", "What type of value is 3.75?", ("Integer", "Decimal", "Text", "Boolean"), 2),
        ),
    ),
    DemoAssessment(
        "do_fod_quiz_averages",
        "Quiz: averages",
        "do_fod_unit_describing_data",
        (
            _q("q-avg-mean", "The mean of 2, 4 and 9 is…", ("4", "5", "6", "15"), 2),
            _q("q-avg-median", "The median of 7, 1 and 3 is…", ("1", "3", "7"), 2),
            _q("q-avg-outliers", "Which average resists outliers best?", ("Mean", "Median", "Sum"), 2),
        ),
    ),
    DemoAssessment(
        "do_fod_unit_test_describing",
        "Unit test: describing data",
        "do_fod_unit_describing_data",
        (
            _q("q-test-mode", "The mode of 1, 2, 2 and 3 is…", ("1", "2", "3"), 2),
            _q("q-test-range", "The range of 4, 9 and 1 is…", ("5", "8", "9"), 2),
            DemoQuestion(
                "q-test-match",
                "Match each measure to its value for 1, 3, 3, 5",
                "mtf",
                2,
                ("mean=3", "median=3", "range=4"),
                1,
            ),
            _q("q-test-boxplot", "A box plot mainly shows…", ("the spread of the data", "a trend", "a total"), 1),
        ),
    ),
)


def _leaf(identifier: str, name: str, mime_type: str, content_type: str, category: str) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": name,
        "mimeType": mime_type,
        "contentType": content_type,
        "objectType": "Content",
        "primaryCategory": category,
    }


def _assessment_leaf(assessment: DemoAssessment) -> dict[str, Any]:
    leaf = _leaf(assessment.content_id, assessment.name, ECML_MIME_TYPE, "SelfAssess", "Course Assessment")
    leaf["totalQuestions"] = assessment.total_questions
    return leaf


def course_hierarchy() -> dict[str, Any]:
    """The demo course as a hierarchy object (docs/api.md#platform-data) (collection → 2 units → 6 leaves)."""
    check, averages, unit_test = (_assessment_leaf(a) for a in ASSESSMENTS)
    return {
        "identifier": COURSE_ID,
        "name": COURSE_NAME,
        "mimeType": COLLECTION_MIME_TYPE,
        "contentType": "Course",
        "objectType": "Collection",
        "primaryCategory": "Course",
        "status": "Live",
        "channel": CHANNEL,
        "children": [
            {
                "identifier": "do_fod_unit_working_with_data",
                "name": "Unit 1: Working with data",
                "mimeType": COLLECTION_MIME_TYPE,
                "contentType": "CourseUnit",
                "primaryCategory": "Course Unit",
                "children": [
                    _leaf("do_fod_video_what_is_data", "What is data?", "video/mp4", "Resource", "Explanation Content"),
                    _leaf(
                        "do_fod_reading_messy_tables",
                        "Cleaning a messy table",
                        "application/pdf",
                        "Resource",
                        "Learning Resource",
                    ),
                    check,
                ],
            },
            {
                "identifier": "do_fod_unit_describing_data",
                "name": "Unit 2: Describing data",
                "mimeType": COLLECTION_MIME_TYPE,
                "contentType": "CourseUnit",
                "primaryCategory": "Course Unit",
                "children": [
                    _leaf(
                        "do_fod_video_averages",
                        "Mean, median and mode",
                        "video/mp4",
                        "Resource",
                        "Explanation Content",
                    ),
                    averages,
                    unit_test,
                ],
            },
        ],
    }


def demo_learners(count: int) -> tuple[DemoLearner, ...]:
    """``count`` learners with ids ``learner-01``… and distinct readable names."""
    out = []
    firsts, lasts = len(_FIRST_NAMES), len(_LAST_NAMES)
    for i in range(count):
        first = _FIRST_NAMES[i % firsts]
        last = _LAST_NAMES[(i + i // firsts) % lasts]
        lap = i // (firsts * lasts)
        name = f"{first} {last}" + (f" {lap + 1}" if lap else "")
        out.append(DemoLearner(f"learner-{i + 1:02d}", name))
    return tuple(out)


def hex_id(*parts: object) -> str:
    """A stable 32-hex-digit id (the shape of the platform's attempt ids and message ids)."""
    return hashlib.md5(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def _option_text(text: str) -> str:
    # The content player stores each option as JSON text inside a map (see docs/jobs/assessment.md#example).
    return json.dumps({"text": text})


def assess_telemetry(
    *,
    user_id: str,
    course_id: str,
    batch_id: str,
    content_id: str,
    unit_id: str,
    attempt_id: str,
    question: DemoQuestion,
    index: int,
    chosen: int,
    score: float,
    ets: int,
    duration: int,
) -> dict[str, Any]:
    """One ASSESS telemetry event as the content player sends it (only `ets` and `edata` are read,
    docs/reference/events.md#e1).

    Args:
        user_id: the learner (actor).
        course_id: the course (cdata, rollup).
        batch_id: the batch (cdata).
        content_id: the assessment (object).
        unit_id: the unit holding the assessment (rollup).
        attempt_id: the attempt (cdata and the message id seed).
        question: the item answered.
        index: 1-based position of the question in the assessment.
        chosen: 1-based option the learner picked.
        score: the score the player gave the answer.
        ets: epoch ms of the answer.
        duration: seconds spent on the answer.
    """
    params = [{str(i): _option_text(text)} for i, text in enumerate(question.options, start=1)]
    params.append({"answer": json.dumps({"correct": [str(question.answer)]})})
    return {
        "eid": "ASSESS",
        "ets": ets,
        "ver": "3.1",
        "mid": "ASSESS:" + hex_id(attempt_id, question.question_id, ets),
        "actor": {"id": user_id, "type": "User"},
        "context": {
            "channel": CHANNEL,
            "pdata": {"id": "demo.learnagg.portal", "ver": "1.0.0", "pid": "learnagg-portal.contentplayer"},
            "env": "contentplayer",
            "sid": hex_id("session", attempt_id),
            "cdata": [
                {"id": course_id, "type": "course"},
                {"type": "batch", "id": batch_id},
                {"id": attempt_id, "type": "AttemptId"},
            ],
            "rollup": {"l1": CHANNEL},
        },
        "object": {"id": content_id, "type": "Content", "ver": "1", "rollup": {"l1": course_id, "l2": unit_id}},
        "edata": {
            "item": {
                "id": question.question_id,
                "maxscore": question.max_score,
                "type": question.qtype,
                "exlength": 0,
                "params": params,
                "uri": "",
                "title": question.title,
                "mmc": [],
                "mc": [],
                "desc": "",
            },
            "index": index,
            "pass": "Yes" if score >= question.max_score else "No",
            "score": score,
            "resvalues": [{str(chosen): _option_text(question.options[chosen - 1])}],
            "duration": duration,
        },
    }


def batch_event(
    *, course_id: str, batch_id: str, user_id: str, content_id: str, attempt_id: str, ts: int, events: list[Any]
) -> dict[str, Any]:
    """An assessment batch event (docs/reference/events.md#e1): one attempt and its ASSESS events; no events makes a
    recompute."""
    return {
        "assessmentTs": ts,
        "batchId": batch_id,
        "courseId": course_id,
        "userId": user_id,
        "attemptId": attempt_id,
        "contentId": content_id,
        "events": events,
    }


def _answer(rng: random.Random, question: DemoQuestion, skill: float) -> tuple[int, float]:
    """The option a learner picks and its score; a matching question can earn half marks."""
    if rng.random() < skill:
        return question.answer, float(question.max_score)
    wrong = [i for i in range(1, len(question.options) + 1) if i != question.answer]
    partial = question.qtype == "mtf" and rng.random() < 0.5
    return rng.choice(wrong), question.max_score / 2 if partial else 0.0


def _attempt_event(
    rng: random.Random, learner: DemoLearner, assessment: DemoAssessment, number: int, skill: float, start: int
) -> dict[str, Any]:
    """One attempt: every question answered once, then one question revisited (de-duplication keeps the last)."""
    attempt_id = hex_id(COURSE_ID, BATCH_ID, learner.user_id, assessment.content_id, number)
    answers: list[tuple[int, DemoQuestion]] = list(enumerate(assessment.questions, start=1))
    answers.append(answers[rng.randrange(len(answers))])
    events = []
    ets = start
    for index, question in answers:
        duration = rng.randint(6, 45)
        ets += duration * 1000
        chosen, score = _answer(rng, question, skill)
        events.append(
            assess_telemetry(
                user_id=learner.user_id,
                course_id=COURSE_ID,
                batch_id=BATCH_ID,
                content_id=assessment.content_id,
                unit_id=assessment.unit_id,
                attempt_id=attempt_id,
                question=question,
                index=index,
                chosen=chosen,
                score=score,
                ets=ets,
                duration=duration,
            )
        )
    return batch_event(
        course_id=COURSE_ID,
        batch_id=BATCH_ID,
        user_id=learner.user_id,
        content_id=assessment.content_id,
        attempt_id=attempt_id,
        ts=start,
        events=events,
    )


def generate_demo(learners: int = 5, seed: int = DEFAULT_SEED) -> DemoData:
    """The demo data set: the course, ``learners`` learners and 1–3 attempts each per assessment.

    Each attempt has 3–5 ASSESS events (one per question plus one revisited answer). Learners improve a little
    with each attempt. Events are in publish order: assessment by assessment, then learner by learner.

    Args:
        learners: how many learners (at least 1).
        seed: the random seed; the same seed always gives the same data.

    Raises:
        ValueError: if ``learners`` is less than 1.
    """
    if learners < 1:
        raise ValueError("learners must be at least 1")
    people = demo_learners(learners)
    # One generator per learner: a learner's attempts do not depend on how many other learners there are.
    rngs = {p.user_id: random.Random(f"{seed}:{p.user_id}") for p in people}
    skills = {p.user_id: rngs[p.user_id].uniform(0.35, 0.9) for p in people}
    events: list[dict[str, Any]] = []
    for week, assessment in enumerate(ASSESSMENTS):
        for offset, learner in enumerate(people):
            rng = rngs[learner.user_id]
            start = FIRST_ATTEMPT_TS + week * 7 * _DAY_MS + offset * 10 * 60_000
            for number in range(1, rng.randint(1, 3) + 1):
                skill = min(0.97, skills[learner.user_id] + 0.12 * (number - 1))
                events.append(_attempt_event(rng, learner, assessment, number, skill, start))
                start += rng.randint(2, 48) * _HOUR_MS
    return DemoData(
        course_id=COURSE_ID,
        batch_id=BATCH_ID,
        hierarchy=course_hierarchy(),
        assessments=ASSESSMENTS,
        learners=people,
        attempt_events=tuple(events),
    )
