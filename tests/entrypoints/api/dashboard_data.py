"""A known group for the dashboard tests, written through the services and aggregated by the real stream jobs."""

from __future__ import annotations

from datetime import date
from typing import Any

from learnagg import bootstrap
from learnagg.bench.demo_data import DemoQuestion, assess_telemetry, batch_event
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE
from learnagg.domain.platform import EnrolmentRecord, NewBatch, NewGroup, NewMember
from learnagg.services.batches import create_batches
from learnagg.services.enrolments import load_enrolments
from learnagg.services.groups import insert_groups
from learnagg.services.users import upsert_users
from tests.support import drain, load, publish

GROUP = "g-dash"
COURSE = "do_dash_course"
BATCH = "b-dash"
# Hierarchy order is the checkpoint first, although its id sorts after the final quiz's.
CHECKPOINT, FINAL = "do_z_checkpoint", "do_a_final"
TITLES = {CHECKPOINT: "Checkpoint", FINAL: "Final quiz"}
NAMES = {"u-asha": "Asha Rao", "u-lee": "Lee", "u-ravi": "Ravi Kumar", "u-zoe": "Zoë Müller", "u-out": "Omar Out"}
MEMBERS = ["u-asha", "u-lee", "u-ravi", "u-zoe"]  # u-out is not a member
T0 = 1_709_542_800_000

# Each question's (max score, score) per attempt, in attempt order: the best attempt wins.
ATTEMPTS: dict[tuple[str, str], list[list[tuple[float, float]]]] = {
    ("u-asha", CHECKPOINT): [[(1, 1), (2, 2)]],  # 3.0/3.0
    ("u-asha", FINAL): [[(2, 2), (3, 2)]],  # 4.0/5.0
    ("u-ravi", CHECKPOINT): [[(1, 0), (2, 0.75)]],  # 0.75/3.0
    ("u-zoe", CHECKPOINT): [[(1, 1), (2, 0)], [(1, 1), (2, 0.5)]],  # 1.5/3.0
    ("u-zoe", FINAL): [[(2, 2), (3, 3)]],  # 5.0/5.0
}


def _leaf(identifier: str, name: str, content_type: str) -> dict[str, Any]:
    return {"identifier": identifier, "name": name, "mimeType": "application/pdf", "contentType": content_type}


def hierarchy() -> dict[str, Any]:
    """A course of two units: an intro and the checkpoint, then the final quiz."""
    unit = {"mimeType": COLLECTION_MIME_TYPE, "contentType": "CourseUnit"}
    return {
        "identifier": COURSE,
        "name": "Data basics",
        "mimeType": COLLECTION_MIME_TYPE,
        "contentType": "Course",
        "status": "Live",
        "children": [
            {
                **unit,
                "identifier": "do_unit_1",
                "name": "Unit 1",
                "children": [_leaf("do_intro", "Intro", "Resource"), _leaf(CHECKPOINT, "Checkpoint", "SelfAssess")],
            },
            {
                **unit,
                "identifier": "do_unit_2",
                "name": "Unit 2",
                "children": [_leaf(FINAL, "Final quiz", "SelfAssess")],
            },
        ],
    }


def _attempt(user: str, content: str, number: int, answers: list[tuple[float, float]]) -> dict[str, Any]:
    attempt_id = f"{user}-{content}-{number}"
    ts = T0 + number * 3_600_000
    events = []
    for index, (max_score, score) in enumerate(answers, start=1):
        question = DemoQuestion(f"q{index}", f"Question {index}", "mcq", int(max_score), ("a", "b"), 1)
        events.append(
            assess_telemetry(
                user_id=user,
                course_id=COURSE,
                batch_id=BATCH,
                content_id=content,
                unit_id="do_unit_1",
                attempt_id=attempt_id,
                question=question,
                index=index,
                chosen=1 if score == max_score else 2,
                score=score,
                ets=ts + index * 1000,
                duration=10,
            )
        )
    return batch_event(
        course_id=COURSE, batch_id=BATCH, user_id=user, content_id=content, attempt_id=attempt_id, ts=ts, events=events
    )


def load_known_group(app: bootstrap.App) -> None:
    """The course, users, batch, enrolments (Asha and Zoë completed) and group, then the attempts, aggregated."""
    load(app, hierarchy())
    now = app.clock()
    zone = app.settings.timezone
    dialect = app.store.dialect
    with app.store.write() as conn:
        users = []
        for user_id, name in NAMES.items():
            first, _, last = name.partition(" ")
            users.append({"id": user_id, "firstName": first, "lastName": last or None})
        upsert_users(conn, dialect, users)
        batch = NewBatch(course_id=COURSE, batch_id=BATCH, name="Spring", start_date=date(2024, 3, 1), status=1)
        create_batches(conn, dialect, [batch], created_by=None, now=now, zone=zone)
        enrolments = [
            EnrolmentRecord(user_id=u, course_id=COURSE, batch_id=BATCH, status=2 if u in ("u-asha", "u-zoe") else 1)
            for u in ("u-asha", "u-ravi", "u-zoe")
        ]
        load_enrolments(conn, dialect, enrolments, now=now, zone=zone)
        members = [NewMember(u, "admin" if u == "u-asha" else "member") for u in MEMBERS]
        activities = [{"id": COURSE, "type": "Course"}]
        group = NewGroup(GROUP, "Thursday study group", "u-asha", activities=activities, members=members)
        insert_groups(conn, dialect, [group], now)
    events = [
        _attempt(user, content, number, answers)
        for (user, content), tries in ATTEMPTS.items()
        for number, answers in enumerate(tries, start=1)
    ]
    publish(app, "assess", events)
    drain(app, ["assessment-aggregator"])
