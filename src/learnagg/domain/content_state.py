"""Content-state rules (docs/api.md#content-state-and-assessments): merging progress into a consumption row, batch
checks, read orderings."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from learnagg.domain.bounds import timestamp_ok
from learnagg.domain.dates import format_api_ts, parse_api_ts

COMPLETED = 2  # content and enrolment status "completed" (docs/reference/data-model.md)
ONGOING_BATCH = 1  # only status-1 batches accept progress and assessments (docs/reference/data-model.md)
BATCH_NOT_EXISTS = "BATCH_NOT_EXISTS"
NOT_A_ON_GOING_BATCH = "NOT_A_ON_GOING_BATCH"
SUCCESS = "SUCCESS"


@dataclass(frozen=True, slots=True)
class ContentUpdate:
    """One validated content item of a content-state update (docs/api.md#content-state-and-assessments); times are epoch
    ms."""

    course_id: str
    batch_id: str
    content_id: str
    status: int
    user_id: str | None = None
    progress: int | None = None
    last_access_time: int | None = None
    last_completed_time: int | None = None
    progress_details: str | None = None  # JSON text, None when not sent


@dataclass(frozen=True, slots=True)
class ContentState:
    """The columns of one `user_content_consumption` row that a content-state update merges
    (docs/api.md#content-state-and-assessments)."""

    status: int | None
    progress: int | None
    last_access_time: int | None
    last_completed_time: int | None
    last_updated_time: int | None
    progress_details: str | None


def first_given(item: Mapping[str, Any], names: Sequence[str]) -> tuple[str, Any]:
    """The first of ``names`` whose value is not blank (docs/reference/data-model.md#c8), else the first name and None
    (an alias chain)."""
    for name in names:
        value = item.get(name)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return name, value
    return names[0], None


def json_text(value: object) -> str:
    """Compact JSON text, as `progressdetails` is stored (docs/api.md#content-state-and-assessments)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def bounded_api_time(text: object) -> int | None:
    """Epoch ms of a ``yyyy-MM-dd HH:mm:ss:SSSZ`` text (docs/api.md#content-state-and-assessments); None when the text
    is not in that format.

    Raises:
        ValueError: if the text is in the format but its instant is outside the timestamp bounds (before
            1970 or after 9999 in UTC, ``0001-01-01 00:00:00:000+1400`` included).
    """
    try:
        ms = parse_api_ts(text)
    except OverflowError:  # the instant falls before year 1 or after year 9999
        ms = -1
    if ms is not None and not timestamp_ok(ms):
        raise ValueError(f"timestamp out of bounds: {text!r}")
    return ms


def stored_api_time(text: object) -> int | None:
    """Epoch ms of a stored legacy date text (docs/reference/data-model.md#enrolment); None when it is not a date
    datetime can hold."""
    try:
        return parse_api_ts(text)
    except OverflowError:
        return None


def api_time_text(ms: int, zone_name: str) -> str | None:
    """``yyyy-MM-dd HH:mm:ss:SSSZ`` of epoch ms in the zone; None when the zone's calendar cannot show it.

    A bounded timestamp near the end of year 9999 UTC is already in year 10000 east of UTC.
    """
    try:
        return format_api_ts(ms, zone_name)
    except (OverflowError, ValueError, OSError):
        return None


def content_update(item: Mapping[str, Any]) -> ContentUpdate:
    """A validated content item as a :class:`ContentUpdate`; ``courseId`` falls back to ``collectionId``.

    A blank ``userId`` counts as absent: the item belongs to the request's subject
    (docs/api.md#content-state-and-assessments).

    Raises:
        ValueError: if a date is outside the timestamp bounds (the request checks refuse such items first).
    """
    _, course_id = first_given(item, ("courseId", "collectionId"))
    _, user_id = first_given(item, ("userId",))
    details = item.get("progressdetails")
    return ContentUpdate(
        course_id=course_id,
        batch_id=item["batchId"],
        content_id=item["contentId"],
        status=item["status"],
        user_id=user_id,
        progress=item.get("progress"),
        last_access_time=bounded_api_time(item.get("lastAccessTime")),
        last_completed_time=bounded_api_time(item.get("lastCompletedTime")),
        progress_details=None if details is None else json_text(details),
    )


def _later(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def merge_content(stored: ContentState | None, update: ContentUpdate, now: int) -> ContentState:
    """Merge one content item into the stored row, or build a new row (docs/api.md#content-state-and-assessments).

    Status never decreases: a stored null status counts as 0. Any status ≥ 2 means completed: status 2,
    progress 100 and a completion time. ``lastUpdatedTime`` is always now; ``progressdetails`` is replaced
    only when the item carries one.

    Args:
        stored: the row as stored (or as merged by an earlier item of the same request), None when missing.
        update: the content item.
        now: epoch ms of the request.

    Returns:
        The row to write.
    """
    completed: int | None
    progress: int | None
    if stored is None:
        if update.status >= COMPLETED:
            status, progress = COMPLETED, 100
            completed = update.last_completed_time if update.last_completed_time is not None else now
        else:
            # A new incomplete row starts at progress 0; a completion time would be meaningless on it.
            status, progress, completed = update.status, 0, None
        access = update.last_access_time if update.last_access_time is not None else now
        return ContentState(status, progress, access, completed, now, update.progress_details)

    stored_status = stored.status or 0
    progress = stored.progress if update.progress is None else max(update.progress, stored.progress or 0)
    completed = stored.last_completed_time
    if update.status >= stored_status:
        status = update.status
        if update.status >= COMPLETED:
            status, progress = COMPLETED, 100
            completed = _later(update.last_completed_time, stored.last_completed_time)
            completed = now if completed is None else completed
    else:
        status = stored_status
    details = stored.progress_details if update.progress_details is None else update.progress_details
    return ContentState(
        status, progress, _later(update.last_access_time, stored.last_access_time), completed, now, details
    )


def batch_refusal(known: bool, status: object) -> str | None:
    """docs/api.md#content-state-and-assessments: ``BATCH_NOT_EXISTS`` for an unknown batch, ``NOT_A_ON_GOING_BATCH``
    unless status is 1."""
    if not known:
        return BATCH_NOT_EXISTS
    return None if status == ONGOING_BATCH else NOT_A_ON_GOING_BATCH


def most_recently_accessed(states: Iterable[tuple[str, ContentState]]) -> tuple[str, ContentState] | None:
    """The (contentId, row) with the latest ``lastAccessTime``; on a tie (or none known) the last one given.

    It feeds the enrolment's ``lastreadcontentid`` (docs/api.md#content-state-and-assessments).
    """
    best: tuple[str, ContentState] | None = None
    for content_id, state in states:
        if best is None or (state.last_access_time or -1) >= (best[1].last_access_time or -1):
            best = (content_id, state)
    return best


def newest_first_key(last_attempted_on: int | None, attempt_id: str) -> tuple[bool, int, str]:
    """Sort key for attempts: newest ``last_attempted_on`` first, null oldest, tie → lowest attempt_id
    (docs/api.md#content-state-and-assessments)."""
    return (last_attempted_on is None, -(last_attempted_on or 0), attempt_id)


def _epoch_ms(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, float) and math.isfinite(value) else None


def best_score(
    merged: Mapping[str, float], last_updated: Mapping[str, object] | None, content_id: str
) -> dict[str, Any] | None:
    """``bestScore`` of one content (docs/api.md#content-state-and-assessments): None when the merged row has no
    ``score:<contentId>``.

    Args:
        merged: ``merged(row)`` of the learner's course row (`attempt_metrics.merged_view`).
        last_updated: the row's ``agg_last_updated`` map (None counts as empty).
        content_id: the assessment.

    Returns:
        ``{"score","maxScore","attemptsCount","lastUpdatedOn"}`` with absent parts null.
    """
    key = f"score:{content_id}"
    if key not in merged:
        return None
    return {
        "score": merged[key],
        "maxScore": merged.get(f"max_score:{content_id}"),
        "attemptsCount": merged.get(f"attempts_count:{content_id}"),
        "lastUpdatedOn": _epoch_ms((last_updated or {}).get(key)),
    }


def scored_contents(merged: Mapping[str, float]) -> set[str]:
    """The content ids that have a ``score:<contentId>`` metric."""
    return {key[len("score:") :] for key in merged if key.startswith("score:")}


def _with_actor(event: object, user_id: str) -> object:
    if not isinstance(event, dict):
        return event  # left for the aggregator's (or the assessment API's) A1 check to refuse
    actor = event.get("actor")
    return {**event, "actor": {**actor, "id": user_id} if isinstance(actor, dict) else {"id": user_id}}


def assessment_event(item: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    """A validated assessment item as the docs/reference/events.md#e1 event to publish
    (docs/api.md#content-state-and-assessments).

    ``courseId`` and ``batchId`` are resolved from their aliases (``collectionId``, ``contextId``); the
    subject overwrites ``userId`` and every ``events[].actor.id``. Other fields are kept as sent.
    """
    event = dict(item)
    event["courseId"] = first_given(item, ("courseId", "collectionId"))[1]
    event["batchId"] = first_given(item, ("batchId", "contextId"))[1]
    event["userId"] = user_id
    events = item.get("events")
    if isinstance(events, list):
        event["events"] = [_with_actor(e, user_id) for e in events]
    return event
