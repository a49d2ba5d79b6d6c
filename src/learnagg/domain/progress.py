"""Progress events and course completion (docs/reference/events.md#e2, docs/jobs/progress.md): pure rules of the
activity aggregate updater."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from learnagg.domain.assess_event import InvalidEvent
from learnagg.domain.numbers import is_number

BATCH_ENROLMENT_UPDATE = "batch-enrolment-update"
COMPLETED = 2  # content and enrolment status "completed" (docs/reference/data-model.md)
IN_PROGRESS = 1
RETIRED = "Retired"
_MANDATORY_FIELDS = ("courseId", "batchId", "userId")  # docs/jobs/progress.md#p2, checked in this order

SKIP_ACTION = "action"  # P1
SKIP_NO_CONTENTS = "no-contents"  # P3


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A validated progress event (docs/reference/events.md#e2) reduced to what the job uses.

    ``content_ids`` are the completed contents (docs/jobs/progress.md#p3), distinct, in input order. ``skip`` is set
    when the event
    is skipped before any lookup (P1: another action; P3: no completed content); the ids may then be empty.
    """

    course_id: str
    batch_id: str
    user_id: str
    content_ids: tuple[str, ...]
    skip: str | None = None

    @property
    def learner(self) -> tuple[str, str, str]:
        """The (course_id, batch_id, user_id) key of the learner lock (docs/reference/data-model.md#d3) and of the
        learner's state."""
        return (self.course_id, self.batch_id, self.user_id)


def _non_blank(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def is_completed_status(value: object) -> bool:
    """docs/jobs/progress.md#p3: a JSON number equal to 2 (``2.0`` matches); numeric text such as ``"2"`` and booleans
    do not."""
    return is_number(value) and value == COMPLETED


def parse_progress_event(raw: object) -> ProgressEvent:
    """Validate one progress event (docs/jobs/progress.md).

    Args:
        raw: The decoded JSON message.

    Returns:
        The event; ``skip`` names the reason when P1 or P3 skips it (counted, no failed event).

    Raises:
        InvalidEvent: if the message is not an object (``event is not a JSON object``) or an identifier is not a
            non-empty string (``<field> is mandatory``, docs/jobs/progress.md#p2).
    """
    if not isinstance(raw, dict):
        raise InvalidEvent("event is not a JSON object")
    edata = raw.get("edata")
    if not isinstance(edata, dict):
        edata = {}
    action = edata.get("action")
    if not isinstance(action, str) or action.lower() != BATCH_ENROLMENT_UPDATE:
        # P1 comes first: an event of another action is skipped whatever its identifiers.
        return ProgressEvent("", "", "", (), skip=SKIP_ACTION)
    for name in _MANDATORY_FIELDS:
        if not _non_blank(edata.get(name)):
            raise InvalidEvent(f"{name} is mandatory")
    contents = edata.get("contents")
    completed: dict[str, None] = {}
    if isinstance(contents, list):
        for item in contents:
            if isinstance(item, dict) and _non_blank(item.get("contentId")) and is_completed_status(item.get("status")):
                completed.setdefault(item["contentId"], None)
    return ProgressEvent(
        edata["courseId"],
        edata["batchId"],
        edata["userId"],
        tuple(completed),
        skip=None if completed else SKIP_NO_CONTENTS,
    )


def dedup_key(course_id: str, batch_id: str, user_id: str, content_id: str) -> str:
    """docs/jobs/progress.md#p4: ``MD5U("<courseId>|<batchId>|<userId>|<contentId>|2")``
    (docs/reference/data-model.md#c7)."""
    text = f"{course_id}|{batch_id}|{user_id}|{content_id}|{COMPLETED}"
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def is_live_key(expires_on: int | None, now: int) -> bool:
    """docs/jobs/progress.md#p4: a stored dedup key counts until it expires (``expires_on`` after now)."""
    return expires_on is not None and expires_on > now


def merged_statuses(stored: Mapping[str, int | None], completed: Iterable[str]) -> dict[str, int]:
    """docs/jobs/progress.md#p6: every stored content (a null status read as 1), then every input content at max(2,
    stored).

    Args:
        stored: The learner's stored consumption statuses of the course batch, by content id.
        completed: The event's input contents (completed, after dedup).

    Returns:
        The merged status map, stored contents first in their given order.
    """
    merged = {content_id: IN_PROGRESS if status is None else status for content_id, status in stored.items()}
    for content_id in completed:
        merged[content_id] = max(COMPLETED, merged.get(content_id, COMPLETED))
    return merged


def completed_set(merged: Mapping[str, int]) -> frozenset[str]:
    """The contents whose merged status is 2 (docs/jobs/progress.md#p6)."""
    return frozenset(c for c, status in merged.items() if status == COMPLETED)


class Tree(Protocol):
    """What completion needs from a course tree (`domain.hierarchy.CourseTree`)."""

    course_id: str

    def required(self, x: str | None = None) -> frozenset[str]:
        """Leaves of ``x`` that count towards its completion."""
        ...

    def ancestors(self, leaf: str) -> frozenset[str]:
        """Every collection on a path from the root to ``leaf``, the root included."""
        ...


@dataclass(frozen=True, slots=True)
class Completion:
    """docs/jobs/progress.md#p7 and #p8 for one event: the course count, whether the course is complete, and each unit's
    count."""

    progress: int
    complete: bool
    units: dict[str, int]


def completion(tree: Tree, merged: Mapping[str, int], *, with_units: bool) -> Completion:
    """docs/jobs/progress.md#p7, docs/jobs/progress.md#p8: completed required leaves of the course and of every unit the
    merged contents sit in.

    Args:
        tree: The course tree.
        merged: The merged status map (docs/jobs/progress.md#p6).
        with_units: ``activity.module_aggs.enabled``; False leaves ``units`` empty.

    Returns:
        ``progress = |required(course) ∩ completed|``; complete when it reaches ``|required(course)|`` (at once if
        every leaf is optional); ``units`` maps each unit (ancestors of a merged content, minus the course) to its
        count, in sorted order.
    """
    done = completed_set(merged)
    required = tree.required()
    progress = len(required & done)
    units: dict[str, int] = {}
    if with_units:
        found: set[str] = set()
        for content_id in merged:
            found |= tree.ancestors(content_id)
        found.discard(tree.course_id)
        units = {unit: len(tree.required(unit) & done) for unit in sorted(found)}
    return Completion(progress, progress >= len(required), units)


@dataclass(frozen=True, slots=True)
class EnrolmentChange:
    """docs/jobs/progress.md#p9: the columns written to an enrolment that is neither missing nor completed."""

    status: int
    progress: int
    contentstatus: dict[str, int]
    datetime: int
    completedon: int | None  # set only when the course is complete

    def columns(self) -> dict[str, Any]:
        """The `user_enrolments` columns to write (completedon only on completion)."""
        out: dict[str, Any] = {
            "status": self.status,
            "progress": self.progress,
            "contentstatus": self.contentstatus,
            "datetime": self.datetime,
        }
        if self.completedon is not None:
            out["completedon"] = self.completedon
        return out


def enrolment_change(
    *, exists: bool, stored_status: int | None, done: Completion, merged: Mapping[str, int], now: int
) -> EnrolmentChange | None:
    """docs/jobs/progress.md#p9: what to write to the learner's enrolment, or None to leave it unchanged.

    A missing enrolment, or one already at status 2, is never written: a completed enrolment is neither
    downgraded nor completed again (and no second certificate request is made).
    """
    if not exists or stored_status == COMPLETED:
        return None
    if done.complete:
        return EnrolmentChange(COMPLETED, done.progress, dict(merged), now, now)
    return EnrolmentChange(IN_PROGRESS, done.progress, dict(merged), now, None)
