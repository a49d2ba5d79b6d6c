"""Group aggregate rules: member entries, activity metrics, best scores and score statistics
(docs/api.md#group-aggregates)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from learnagg.domain.attempt_metrics import merged_view
from learnagg.domain.numbers import round2

SCORE_PREFIX = "score:"
MAX_SCORE_PREFIX = "max_score:"
CONTEXT_PREFIX = "cb:"
_EMPTY: Mapping[str, Any] = {}
_FLOAT_ONLY = {float}
_INT_ONLY = {int}

Metric = dict[str, Any]  # one {"metric", "value", "lastUpdatedOn"} entry


class MemberRow(NamedTuple):
    """One active member joined with their name and one `user_activity_agg` row of the activity.

    ``context_id`` is None (and the three maps are None) for a member without a row: the LEFT JOIN's null side.
    """

    user_id: str
    role: str | None
    status: str | None
    created_by: str | None
    first_name: str | None
    last_name: str | None
    context_id: str | None
    agg: Any
    aggregates: Any
    agg_last_updated: Any


class AggRow(NamedTuple):
    """One `user_activity_agg` row of an active member (the rows R of docs/api.md#group-aggregates)."""

    user_id: str
    context_id: str
    agg: Any
    aggregates: Any
    agg_last_updated: Any


@dataclass(slots=True)
class BestScore:
    """A member's highest merged ``score:c`` over their rows, and what the same row says next to it
    (docs/api.md#group-aggregates)."""

    score: float
    max_score: float | None
    context_id: str
    last_updated: int | None


# -- values -------------------------------------------------------------------------------------------------


def display_name(first_name: object, last_name: object) -> str:
    """``trim(first_name + " " + last_name)``; null and the literal ``"null"`` count as empty
    (docs/reference/data-model.md#users-and-groups)."""
    first = first_name if isinstance(first_name, str) and first_name != "null" else ""
    last = last_name if isinstance(last_name, str) and last_name != "null" else ""
    return f"{first} {last}".strip()


def batch_id(context_id: str) -> str:
    """The batch id of an aggregate row: its context_id without ``cb:`` (docs/api.md#group-aggregates)."""
    return context_id[3:] if context_id.startswith(CONTEXT_PREFIX) else context_id


def as_map(value: object) -> Mapping[str, Any]:
    """A stored JSON map; null, and anything that is not a JSON object, counts as empty
    (docs/reference/compatibility.md#7)."""
    return value if isinstance(value, dict) else _EMPTY


def timestamp(value: object) -> int | None:
    """An ``agg_last_updated`` value as epoch ms, or None when it is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def merged_metrics(agg: object, aggregates: object) -> Mapping[str, float]:
    """``merged(row)``: legacy ``agg`` widened to doubles, ``aggregates`` overlaid
    (docs/reference/data-model.md#user-activity-agg).

    Same result as :func:`learnagg.domain.attempt_metrics.merged_view`, but maps of plain JSON numbers (every row the
    jobs write) take a fast path; anything else (numeric text, booleans, huge integers) goes through it. The result
    may be ``aggregates`` itself: treat it as read-only.
    """
    old = as_map(agg)
    new = as_map(aggregates)
    if not old and (not new or set(map(type, new.values())) == _FLOAT_ONLY):
        return new  # the common row: no legacy map, every value already a double
    out: dict[str, float] = {}
    try:
        for key, value in old.items():
            kind = type(value)
            if kind is int or kind is float:
                out[key] = float(value)
            else:
                return merged_view(old, new)
        for key, value in new.items():
            kind = type(value)
            if kind is float:
                out[key] = value
            elif kind is int:
                out[key] = float(value)
            else:
                return merged_view(old, new)
    except OverflowError:
        return merged_view(old, new)
    return out


def stamps_map(last_updated: object) -> Mapping[str, int | None]:
    """A row's ``agg_last_updated`` with every value an epoch-ms integer or None (see :func:`timestamp`)."""
    stamps = as_map(last_updated)
    if not stamps or set(map(type, stamps.values())) == _INT_ONLY:
        return stamps
    return {key: timestamp(value) for key, value in stamps.items()}


def latest_stamp(merged: Mapping[str, float], stamps: Mapping[str, int | None]) -> int | None:
    """The greatest non-null time of a key of the merged view (docs/api.md#group-aggregates); times of other keys do not
    count."""
    if not stamps:
        return None
    if stamps.keys() <= merged.keys():
        try:
            return max(stamps.values())  # type: ignore[type-var]  # the common row: every time an integer
        except TypeError:  # an int compared with None: leave the Nones out
            present = [v for v in stamps.values() if v is not None]
    else:
        present = [v for k, v in stamps.items() if v is not None and k in merged]
    return max(present) if present else None


def keep_metric(metric: str, fields: Sequence[str] | None) -> bool:
    """The ``fields`` filter: absent keeps everything, else ``m == f`` or m starts with ``f + ":"``
    (docs/api.md#group-aggregates)."""
    if fields is None:
        return True
    return any(metric == f or metric.startswith(f + ":") for f in fields)


# -- /v1/group/activity/agg ---------------------------------------------------------------------------------


def metric_entries(merged: Mapping[str, float], stamps: Mapping[str, int | None]) -> list[Metric]:
    """One ``{"metric", "value", "lastUpdatedOn"}`` entry per merged key, sorted by key (docs/api.md#group-aggregates).

    Args:
        merged: ``merged(row)``.
        stamps: the row's :func:`stamps_map`.
    """
    get = stamps.get
    # A comprehension with literal dicts: this runs once per metric of every member (about 0.15 µs each).
    return [{"metric": key, "value": merged[key], "lastUpdatedOn": get(key)} for key in sorted(merged)]


class Member(Protocol):
    """What a member entry reads of a member's row (a :class:`MemberRow`, or a row with its maps still as text)."""

    @property
    def user_id(self) -> str: ...
    @property
    def role(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def created_by(self) -> str | None: ...


def member_entry(row: Member, name: str, batch: str | None, agg: object) -> dict[str, Any]:
    """One member's entry of an activity in `/v1/group/activity/agg` (docs/api.md#group-aggregates)."""
    return {
        "userId": row.user_id,
        "name": name,
        "role": row.role,
        "status": row.status,
        "createdBy": row.created_by,
        "batchId": batch,
        "agg": agg,
    }


def activity_agg(
    group_id: str,
    activity_id: str,
    activity_type: str,
    rows: Iterable[MemberRow],
    *,
    include_all_members: bool,
    now: int,
) -> dict[str, Any]:
    """The ``/v1/group/activity/agg`` result from the active members joined with their rows
    (docs/api.md#group-aggregates).

    Args:
        group_id: echoed as ``groupId``.
        activity_id: the activity id (``activity.id``).
        activity_type: the requested type (``activity.type``); rows are read as ``Course`` whatever it says.
        rows: every active member, once per aggregate row of the activity, or once with ``context_id`` None.
        include_all_members: add members without rows with ``"batchId": null`` and ``"agg": []``.
        now: the request time, the enrolmentCount lastUpdatedOn when no metric has a time.

    Returns:
        ``{"groupId", "activity": {"id", "type", "agg": [enrolmentCount]}, "members": [...]}``, members sorted by
        (userId, batchId) with a null batchId first.
    """
    keyed: list[tuple[str, str, dict[str, Any]]] = []
    enrolled: set[str] = set()
    latest: int | None = None
    names: dict[str, str] = {}
    for row in rows:
        user = row.user_id
        name = names.get(user)
        if name is None:
            name = names[user] = display_name(row.first_name, row.last_name)
        ctx = row.context_id
        if ctx is None:
            if include_all_members:
                # "" sorts before every batch id: a member without rows has this one entry only.
                keyed.append((user, "", member_entry(row, name, None, [])))
            continue
        enrolled.add(user)
        merged = merged_metrics(row.agg, row.aggregates)
        stamps = stamps_map(row.agg_last_updated)
        entries = metric_entries(merged, stamps)
        row_latest = latest_stamp(merged, stamps)
        if row_latest is not None and (latest is None or row_latest > latest):
            latest = row_latest
        batch = batch_id(ctx)
        # The prefix "\x00" keeps a real batch id "" after the null batch of a member without rows
        # (docs/reference/data-model.md#c6).
        keyed.append((user, "\x00" + batch, member_entry(row, name, batch, entries)))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return {
        "groupId": group_id,
        "activity": {
            "id": activity_id,
            "type": activity_type,
            "agg": [
                {"metric": "enrolmentCount", "lastUpdatedOn": now if latest is None else latest, "value": len(enrolled)}
            ],
        },
        "members": [entry for _, _, entry in keyed],
    }


# -- /v1/group/agg ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ActivitySummary:
    """What `/v1/group/agg` needs from the rows R of one activity (docs/api.md#group-aggregates).

    Attributes:
        enrolled: the distinct users with a row (enrolmentCount).
        last_updated: the greatest non-null metric lastUpdatedOn in R, or None.
        best: for each content c seen as ``score:c`` in a merged row, each member's best score.
    """

    enrolled: int
    last_updated: int | None
    best: dict[str, dict[str, BestScore]]


def summarise(rows: Iterable[AggRow]) -> ActivitySummary:
    """One pass over the rows of one activity: enrolment, latest metric time and per-member best scores.

    A member's best ``score:c`` is the highest over their rows; a tie goes to the lowest context_id, and
    ``max_score:c`` and ``agg_last_updated["score:c"]`` come from the same row (docs/api.md#group-aggregates).
    """
    users: set[str] = set()
    latest: int | None = None
    best: dict[str, dict[str, BestScore]] = {}
    for row in rows:
        user = row.user_id
        ctx = row.context_id
        users.add(user)
        merged = merged_metrics(row.agg, row.aggregates)
        stamps = stamps_map(row.agg_last_updated)
        row_latest = latest_stamp(merged, stamps)
        if row_latest is not None and (latest is None or row_latest > latest):
            latest = row_latest
        for key, value in merged.items():
            if not key.startswith(SCORE_PREFIX):
                continue
            content_id = key[6:]
            per_user = best.get(content_id)
            if per_user is None:
                per_user = best[content_id] = {}
            held = per_user.get(user)
            if held is None or value > held.score or (value == held.score and ctx < held.context_id):
                per_user[user] = BestScore(value, merged.get(MAX_SCORE_PREFIX + content_id), ctx, stamps.get(key))
    return ActivitySummary(len(users), latest, best)


def content_order(contents: Iterable[str], positions: Mapping[str, int]) -> list[str]:
    """Contents in the activity's hierarchy order; those not in the hierarchy last, sorted by id
    (docs/api.md#group-aggregates)."""
    wanted = set(contents)
    placed = sorted((c for c in wanted if c in positions), key=lambda c: (positions[c], c))
    return placed + sorted(c for c in wanted if c not in positions)


def score_stats(content_id: str, best: Mapping[str, BestScore]) -> list[Metric]:
    """``score:<c>:count|min|max|avg|avgPercentage`` over the members' best scores (docs/api.md#group-aggregates).

    Sums run in user-id order; avgPercentage is left out when no member's ``max_score:c`` is above 0. The
    lastUpdatedOn of every statistic is the latest ``agg_last_updated["score:c"]`` of the contributing rows.
    """
    count = 0
    total = 0.0
    percent_total = 0.0
    percent_count = 0
    low = math.inf
    high = -math.inf
    latest: int | None = None
    for user in sorted(best):
        held = best[user]
        score = held.score
        count += 1
        total += score
        low = min(low, score)
        high = max(high, score)
        if held.max_score is not None and held.max_score > 0:
            percent_total += score * 100 / held.max_score
            percent_count += 1
        if held.last_updated is not None and (latest is None or held.last_updated > latest):
            latest = held.last_updated
    name = SCORE_PREFIX + content_id
    stats: list[Metric] = [
        {"metric": f"{name}:count", "value": count, "lastUpdatedOn": latest},
        {"metric": f"{name}:min", "value": low, "lastUpdatedOn": latest},
        {"metric": f"{name}:max", "value": high, "lastUpdatedOn": latest},
        {"metric": f"{name}:avg", "value": round2(total / count), "lastUpdatedOn": latest},
    ]
    if percent_count:
        stats.append(
            {"metric": f"{name}:avgPercentage", "value": round2(percent_total / percent_count), "lastUpdatedOn": latest}
        )
    return stats


def activity_metrics(
    summary: ActivitySummary,
    *,
    completed_count: int,
    positions: Mapping[str, int],
    fields: Sequence[str] | None,
    now: int,
) -> list[Metric]:
    """The metrics of one activity in the documented order, filtered by ``fields`` (docs/api.md#group-aggregates).

    Args:
        summary: :func:`summarise` of the activity's rows.
        completed_count: the active members with a status-2 enrolment in the activity, in any batch.
        positions: ``course_node.position`` of contents in the activity's course.
        fields: the request's ``fields`` (None when absent).
        now: the request time, used when no metric of the rows has a time.

    Returns:
        enrolmentCount, completedCount, completionPercentage, then each content's score statistics.
    """
    enrolled = summary.enrolled
    stamp = now if summary.last_updated is None else summary.last_updated
    percentage = round2(completed_count * 100.0 / enrolled) if enrolled else 0.0
    metrics: list[Metric] = [
        {"metric": "enrolmentCount", "value": enrolled, "lastUpdatedOn": stamp},
        {"metric": "completedCount", "value": completed_count, "lastUpdatedOn": stamp},
        {"metric": "completionPercentage", "value": percentage, "lastUpdatedOn": stamp},
    ]
    for content_id in content_order(summary.best, positions):
        metrics.extend(score_stats(content_id, summary.best[content_id]))
    if fields is None:
        return metrics
    return [m for m in metrics if keep_metric(m["metric"], fields)]
