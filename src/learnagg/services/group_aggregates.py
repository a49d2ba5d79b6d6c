"""Group aggregate use cases: `/v1/group/activity/agg` and `/v1/group/agg` (docs/api.md#group-aggregates)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, bindparam, distinct, func, null, select
from sqlalchemy.exc import SQLAlchemyError

from learnagg.adapters.cache import GroupCache, NoCache
from learnagg.adapters.store.scores import COURSE
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import (
    course,
    course_node,
    group_member,
    groups,
    user_activity_agg,
    user_enrolments,
)
from learnagg.domain import group_metrics
from learnagg.domain.cache_keys import activity_agg_key, group_agg_key
from learnagg.domain.group_metrics import AggRow
from learnagg.domain.identity import Caller
from learnagg.domain.platform import ACTIVE  # M: active members only; invited ones have not consented
from learnagg.errors import api_error, first_line, unauthorized
from learnagg.services import agg_fragments
from learnagg.services import group_activity_rows as activity_rows
from learnagg.services.group_metadata import metadata
from learnagg.services.identity import is_platform_admin

log = logging.getLogger("learnagg.api")

COMPLETED = 2  # enrolment status (docs/reference/data-model.md)
NO_CACHE = NoCache()

# A result: the dict, or on a cache hit the JSON bytes as stored, spliced into the envelope without decoding.
Result = dict[str, Any] | orjson.Fragment


@dataclass(frozen=True, slots=True)
class Activity:
    """An activity a group follows: ``{id, type}``."""

    id: str
    type: str | None


@dataclass(frozen=True, slots=True)
class ActivityAggQuery:
    """A validated ``/v1/group/activity/agg`` request (hashable: a cache key can be derived from it)."""

    group_id: str
    activity_id: str
    activity_type: str
    include_all_members: bool = False
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class GroupAggQuery:
    """A validated ``/v1/group/agg`` request; ``activities`` None or empty means the group's stored activities."""

    group_id: str
    activities: tuple[Activity, ...] | None = None
    fields: tuple[str, ...] | None = None


# -- statements (built once, parameters bound per request) -------------------------------------------------


@cache
def _group_statement(with_activities: bool) -> Select[Any]:
    """The group and the subject's membership row, in one query."""
    g, m = groups.c, group_member.c
    membership = and_(m.group_id == g.id, m.user_id == bindparam("subject"))
    activities = g.activities if with_activities else null()
    return (
        select(g.id, m.status, activities)
        .select_from(groups.outerjoin(group_member, membership))
        .where(g.id == bindparam("group_id"))
    )


# The two statements below start from the group's members and probe the other table by its primary key: a LEFT JOIN
# keeps SQLite from starting at the activity's rows instead (every learner of a course, for a group of a few).


@cache
def _rows_statement() -> Select[Any]:
    """The rows R of several activities: `Course` rows of the active members (docs/api.md#group-aggregates); a member
    without any row comes back once with nulls."""
    m, a = group_member.c, user_activity_agg.c
    rows = and_(
        a.activity_type == COURSE,
        a.activity_id.in_(bindparam("activity_ids", expanding=True)),
        a.user_id == m.user_id,
    )
    return (
        select(a.activity_id, a.user_id, a.context_id, a.agg, a.aggregates, a.agg_last_updated)
        .select_from(group_member.outerjoin(user_activity_agg, rows))
        .where(m.group_id == bindparam("group_id"), m.status == ACTIVE)
    )


@cache
def _completed_statement() -> Select[Any]:
    """Per activity, the active members holding a completed enrolment in any batch (docs/api.md#group-aggregates metric
    2); the members without one are counted under a null activity."""
    m, e = group_member.c, user_enrolments.c
    completed = and_(
        e.userid == m.user_id,
        e.courseid.in_(bindparam("activity_ids", expanding=True)),
        e.status == COMPLETED,
    )
    return (
        select(e.courseid, func.count(distinct(e.userid)))
        .select_from(group_member.outerjoin(user_enrolments, completed))
        .where(m.group_id == bindparam("group_id"), m.status == ACTIVE)
        .group_by(e.courseid)
    )


@cache
def _names_statement() -> Select[Any]:
    c = course.c
    return select(c.course_id, c.name).where(c.course_id.in_(bindparam("activity_ids", expanding=True)))


@cache
def _positions_statement() -> Select[Any]:
    n = course_node.c
    return select(n.course_id, n.node_id, n.position).where(
        n.course_id.in_(bindparam("activity_ids", expanding=True)),
        n.node_id.in_(bindparam("content_ids", expanding=True)),
    )


# -- shared steps -------------------------------------------------------------------------------------------


def _authorise(conn: Connection, caller: Caller, group_id: str, *, with_activities: bool = False) -> Any:
    """Group lookup, then authorisation (docs/api.md#group-aggregates); returns the stored activities when asked.

    Raises:
        ApiError: 404 GROUP_NOT_FOUND for an unknown group (docs/reference/compatibility.md#14b); 403 UNAUTHORIZED_USER
        unless the
            subject is an active member or the caller a platform admin (docs/reference/compatibility.md#7).
    """
    found = conn.execute(_group_statement(with_activities), {"group_id": group_id, "subject": caller.subject}).first()
    if found is None:
        raise api_error("GROUP_NOT_FOUND")
    if found[1] != ACTIVE and not is_platform_admin(conn, caller):
        raise unauthorized(403)
    return found[2]


def _read_rows(conn: Connection, stmt: Select[Any], params: dict[str, Any]) -> Sequence[Any]:
    """Run a read of aggregate rows; a database failure is 500 ERR_CALLING_GROUOP_API (docs/api.md#group-aggregates)."""
    try:
        return conn.execute(stmt, params).all()
    except (SQLAlchemyError, ValueError) as exc:  # ValueError: a stored map that is not valid JSON
        log.error("group aggregate read failed: %s", first_line(exc))
        raise api_error("ERR_CALLING_GROUOP_API") from exc


def _read_metadata(conn: Connection, group_id: str, ids: Sequence[str], zone: str) -> dict[str, dict[str, Any]]:
    """Activity metadata; a database failure is 500 ERR_CALLING_GROUOP_API like the rows."""
    try:
        return metadata(conn, group_id, ids, zone)
    except SQLAlchemyError as exc:
        log.error("group aggregate read failed: %s", first_line(exc))
        raise api_error("ERR_CALLING_GROUOP_API") from exc


def stored_activities(value: object) -> list[Activity]:
    """A group's stored ``activities`` list: entries with a non-blank string id, duplicates removed, in order."""
    found: list[Activity] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"].strip():
                kind = item.get("type")
                found.append(Activity(item["id"], kind if isinstance(kind, str) else None))
    return unique(found)


def unique(activities: Sequence[Activity]) -> list[Activity]:
    """Activities with duplicate (id, type) pairs removed, the first occurrence kept (docs/api.md#group-aggregates)."""
    return list(dict.fromkeys(activities))


# -- use cases ----------------------------------------------------------------------------------------------


def _activity_agg_cache_key(query: ActivityAggQuery) -> str:
    """The docs/api.md#group-aggregates key, plus ``:f=<MD5U(fields sorted, comma-joined)>`` when ``fields`` is
    given."""
    key = activity_agg_key(query.group_id, query.activity_id, query.activity_type, query.include_all_members)
    if query.fields is None:
        return key
    digest = hashlib.md5(",".join(sorted(query.fields)).encode()).hexdigest().upper()
    return f"{key}:f={digest}"


def _keep(entries: list[dict[str, Any]], fields: Sequence[str] | None) -> list[dict[str, Any]]:
    return entries if fields is None else [m for m in entries if group_metrics.keep_metric(m["metric"], fields)]


def _activity_result(conn: Connection, query: ActivityAggQuery, rows: Sequence[Any], now: int) -> dict[str, Any]:
    """The result before ``metadata``: memoised member entries spliced in, or with a ``fields`` filter, the rows
    decoded and filtered entry by entry.

    Raises:
        ApiError: 500 ERR_CALLING_GROUOP_API when a stored map is not valid JSON or a read fails.
    """
    args = (query.group_id, query.activity_id, query.activity_type)
    fields = query.fields
    everyone = query.include_all_members
    try:
        if fields is None:
            fetch = activity_rows.fetcher(conn, query.activity_id) if activity_rows.uses_versions(conn, None) else None
            return agg_fragments.activity_agg(*args, rows, include_all_members=everyone, now=now, fetch=fetch)
        members = agg_fragments.decoded(rows)
    except (SQLAlchemyError, ValueError) as exc:
        log.error("group aggregate read failed: %s", first_line(exc))
        raise api_error("ERR_CALLING_GROUOP_API") from exc
    result = group_metrics.activity_agg(*args, members, include_all_members=everyone, now=now)
    result["activity"]["agg"] = _keep(result["activity"]["agg"], fields)
    for member in result["members"]:
        member["agg"] = _keep(member["agg"], fields)
    return result


def activity_agg(
    store: Store,
    caller: Caller,
    query: ActivityAggQuery,
    now: int,
    cache: GroupCache = NO_CACHE,
    zone: str = "UTC",
) -> Result:
    """The ``/v1/group/activity/agg`` result (docs/api.md#group-aggregates).

    The group with the subject's membership, then every active member joined with their name and their rows of the
    activity (:mod:`learnagg.services.group_activity_rows`), then the metadata. The result cache
    (docs/api.md#group-aggregates) sits after the first: authorisation is always checked, a hit skips the rest.

    Args:
        store: the database.
        caller: the authenticated caller.
        query: the validated request.
        now: the request time (docs/reference/data-model.md#c2).
        cache: the group-aggregate cache (no cache unless enabled).
        zone: setting `timezone`, the calendar of the batch dates in ``metadata``.

    Raises:
        ApiError: GROUP_NOT_FOUND, UNAUTHORIZED_USER or ERR_CALLING_GROUOP_API.
    """
    key = _activity_agg_cache_key(query)
    with store.read() as conn:
        _authorise(conn, caller, query.group_id)
        hit = cache.get(key) if cache.enabled else None
        if hit is not None:
            return orjson.Fragment(hit)
        params = {"group_id": query.group_id, "activity_id": query.activity_id}
        versions = activity_rows.uses_versions(conn, query.fields)
        rows = _read_rows(conn, activity_rows.members_statement(versions), params)
        result = _activity_result(conn, query, rows, now)
        found = _read_metadata(conn, query.group_id, [query.activity_id], zone)
    result["activity"]["metadata"] = found.get(query.activity_id, {})
    if cache.enabled and result["members"]:  # docs/api.md#group-aggregates: only results with members are cached
        cache.put(key, orjson.dumps(result))
    return result


def _group_agg_cache_key(query: GroupAggQuery) -> str:
    """The docs/api.md#group-aggregates key over the request as understood (unknown fields dropped), so equal requests
    share it."""
    request: dict[str, Any] = {"groupId": query.group_id}
    if query.activities is not None:
        request["activities"] = [{"id": a.id, "type": a.type} for a in query.activities]
    if query.fields is not None:
        request["fields"] = list(query.fields)
    return group_agg_key(query.group_id, request)


def group_agg(
    store: Store,
    caller: Caller,
    query: GroupAggQuery,
    now: int,
    cache: GroupCache = NO_CACHE,
    zone: str = "UTC",
) -> Result:
    """The ``/v1/group/agg`` result (docs/api.md#group-aggregates).

    A constant number of queries whatever the number of activities: the group, the rows of every activity, the
    completed enrolments per activity, the course names and the hierarchy positions of the scored contents.

    Args:
        store: the database.
        caller: the authenticated caller.
        query: the validated request.
        now: the request time (docs/reference/data-model.md#c2).
        cache: the group-aggregate cache (no cache unless enabled).
        zone: setting `timezone`, the calendar of the batch dates in ``metadata``.

    Raises:
        ApiError: GROUP_NOT_FOUND, UNAUTHORIZED_USER or ERR_CALLING_GROUOP_API.
    """
    key = _group_agg_cache_key(query) if cache.enabled else ""
    with store.read() as conn:
        stored = _authorise(conn, caller, query.group_id, with_activities=not query.activities)
        hit = cache.get(key) if cache.enabled else None
        if hit is not None:
            return orjson.Fragment(hit)
        activities = unique(query.activities) if query.activities else stored_activities(stored)
        ids = sorted({a.id for a in activities})
        if not ids:
            return {"groupId": query.group_id, "activity": []}
        params: dict[str, Any] = {"group_id": query.group_id, "activity_ids": ids}
        by_activity: dict[str, list[AggRow]] = {i: [] for i in ids}
        for activity_id, *rest in _read_rows(conn, _rows_statement(), params):
            if activity_id is not None:  # not a member without rows
                by_activity[activity_id].append(AggRow(*rest))
        completed = dict(_read_rows(conn, _completed_statement(), params))
        names = dict(_read_rows(conn, _names_statement(), {"activity_ids": ids}))
        found = _read_metadata(conn, query.group_id, ids, zone)
        summaries = {i: group_metrics.summarise(rows) for i, rows in by_activity.items()}
        contents = sorted({c for s in summaries.values() for c in s.best})
        positions: dict[str, dict[str, int]] = {i: {} for i in ids}
        if contents:
            for course_id, node_id, position in _read_rows(
                conn, _positions_statement(), {"activity_ids": ids, "content_ids": contents}
            ):
                positions[course_id][node_id] = position
    fields = list(query.fields) if query.fields is not None else None
    result = {
        "groupId": query.group_id,
        "activity": [
            {
                "id": a.id,
                "type": a.type,
                "name": names.get(a.id),
                "agg": group_metrics.activity_metrics(
                    summaries[a.id],
                    completed_count=int(completed.get(a.id, 0)),
                    positions=positions[a.id],
                    fields=fields,
                    now=now,
                ),
                "metadata": found.get(a.id, {}),
            }
            for a in activities
        ],
    }
    if cache.enabled and result["activity"]:
        cache.put(key, orjson.dumps(result))
    return result
