"""The platform data around the demo course: its batch, the learners as users, their enrolments and a study group.

Pure and deterministic like :mod:`learnagg.bench.demo_data`: `learnagg demo` loads it so that the group dashboard
(docs/dashboard.md) has a group to show, and its teacher is the user the printed dashboard link signs in as.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from learnagg.bench.demo_data import BATCH_ID, CHANNEL, COURSE_ID, FIRST_ATTEMPT_TS, DemoData
from learnagg.domain.platform import EnrolmentRecord, NewBatch, NewGroup, NewMember

GROUP_ID = "grp_fod_study_circle"
GROUP_NAME = "Foundations of Data study circle"
TEACHER_ID = "teacher-01"
TEACHER_FIRST, TEACHER_LAST = "Tara", "Mensah"
LEAF_COUNT = 6  # leaves of the demo course
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class DemoGroup:
    """What `learnagg demo` loads besides the course and the attempts."""

    batch: NewBatch
    users: tuple[dict[str, Any], ...]  # `POST /v1/user/load` user objects
    enrolments: tuple[EnrolmentRecord, ...]
    group: NewGroup


def demo_group(data: DemoData) -> DemoGroup:
    """The batch, users, enrolments and the study group of the demo learners, led by the teacher.

    Every other learner (the 2nd, 4th, …) has completed the course; the others are half-way through it.
    """
    enrolled = FIRST_ATTEMPT_TS - 3 * _DAY_MS
    users = [{"id": TEACHER_ID, "firstName": TEACHER_FIRST, "lastName": TEACHER_LAST, "rootOrgId": CHANNEL}]
    enrolments = []
    for i, learner in enumerate(data.learners):
        first, _, last = learner.name.partition(" ")
        users.append({"id": learner.user_id, "firstName": first, "lastName": last, "rootOrgId": CHANNEL})
        done = i % 2 == 1
        enrolments.append(
            EnrolmentRecord(
                user_id=learner.user_id,
                course_id=COURSE_ID,
                batch_id=BATCH_ID,
                status=2 if done else 1,
                progress=LEAF_COUNT if done else LEAF_COUNT // 2,
                enrolled_date=enrolled,
                completed_on=FIRST_ATTEMPT_TS + 21 * _DAY_MS + i * _DAY_MS if done else None,
            )
        )
    members = [NewMember(TEACHER_ID, "admin"), *(NewMember(lr.user_id) for lr in data.learners)]
    return DemoGroup(
        batch=NewBatch(
            course_id=COURSE_ID,
            batch_id=BATCH_ID,
            name="Spring 2024",
            start_date=date(2024, 3, 1),
            status=1,
            created_for=[CHANNEL],
            mentors=[TEACHER_ID],
        ),
        users=tuple(users),
        enrolments=tuple(enrolments),
        group=NewGroup(
            group_id=GROUP_ID,
            name=GROUP_NAME,
            created_by=TEACHER_ID,
            description="Learners of the demo course and their teacher.",
            activities=[{"id": COURSE_ID, "type": "Course"}],
            members=members,
        ),
    )
