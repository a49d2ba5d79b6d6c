"""Content state use cases (docs/api.md#content-state-and-assessments): read a learner's consumption and scores, apply
progress updates."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Row, bindparam, select, update

from learnagg.adapters.store.tables import user_content_consumption, user_enrolments
from learnagg.app import App
from learnagg.domain.assess_event import InvalidEvent, parse_assessment_event
from learnagg.domain.bounds import invalid_value_text
from learnagg.domain.content_state import (
    BATCH_NOT_EXISTS,
    COMPLETED,
    NOT_A_ON_GOING_BATCH,
    SUCCESS,
    ContentState,
    ContentUpdate,
    api_time_text,
    assessment_event,
    batch_refusal,
    content_update,
    merge_content,
    most_recently_accessed,
    stored_api_time,
)
from learnagg.domain.messages import progress_event
from learnagg.errors import ApiError, api_error
from learnagg.services import learner_reads, publishing

ContentKey = tuple[str, str, str]  # (course_id, batch_id, content_id)


def payload_json(value: Any) -> str:
    """An event payload as JSON text: orjson, or the standard library for integers beyond 64 bits (sent as is)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- docs/api.md#content-state-and-assessments read ---


def _date(ms: int | None, legacy: str | None, zone: str) -> str | None:
    """The timestamp column formatted in ``timezone``; the legacy text column when it is null."""
    text = None if ms is None else api_time_text(ms, zone)
    if text is not None:
        return text
    return legacy if legacy and legacy.strip() else None


def _details(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # not JSON (written by another client): shown as stored rather than hidden


def _read_item(row: Row[Any], course_id: str, batch_id: str, zone: str) -> dict[str, Any]:
    item = {
        "contentId": row.contentid,
        "courseId": course_id,
        "collectionId": course_id,
        "batchId": batch_id,
        "status": row.status,
        "progress": row.progress,
        "viewCount": row.viewcount,
        "completedCount": row.completedcount,
        "lastAccessTime": _date(row.last_access_time, row.lastaccesstime, zone),
        "lastCompletedTime": _date(row.last_completed_time, row.lastcompletedtime, zone),
        "lastUpdatedTime": _date(row.last_updated_time, row.lastupdatedtime, zone),
        "completionPercentage": row.completionpercentage,
        "progressdetails": _details(row.progressdetails),
    }
    return {key: value for key, value in item.items() if value is not None}


def read_content_state(
    app: App,
    *,
    user_id: str,
    course_id: str,
    batch_id: str,
    content_ids: Sequence[str] | None,
    fields: Sequence[str],
) -> dict[str, Any]:
    """``POST /v1/content/state/read`` (docs/api.md#content-state-and-assessments): one learner's consumption rows,
    optionally with scores.

    Args:
        app: the application.
        user_id: the subject (requestedFor, otherwise the caller); only their own data is read.
        course_id: the resolved course id.
        batch_id: the batch.
        content_ids: restricts the rows when non-empty.
        fields: ``"score"`` adds ``score`` (attempts, newest first) and ``bestScore`` to each item.

    Returns:
        ``{"contentList": [...]}`` sorted by contentId; one query per table.
    """
    c = user_content_consumption.c
    stmt = select(user_content_consumption).where(c.userid == user_id, c.courseid == course_id, c.batchid == batch_id)
    if content_ids:
        stmt = stmt.where(c.contentid.in_(sorted(set(content_ids))))
    with_scores = "score" in fields
    zone = app.settings.timezone
    attempts: dict[str, list[learner_reads.AttemptView]] = {}
    metrics = learner_reads.CourseMetrics()
    with app.store.read() as conn:
        rows = conn.execute(stmt).all()
        if with_scores and rows:
            ids = [row.contentid for row in rows]
            limit = app.settings.assessment.attempts.limit
            attempts = learner_reads.attempts(conn, user_id, course_id, batch_id, ids, limit)
            metrics = learner_reads.course_metrics(conn, user_id, course_id, batch_id)
    items = []
    for row in sorted(rows, key=lambda r: r.contentid):  # code-point order whatever the database collation
        item = _read_item(row, course_id, batch_id, zone)
        if with_scores:
            item["score"] = [
                {
                    "attemptId": a.attempt_id,
                    "lastAttemptedOn": a.last_attempted_on,
                    "totalMaxScore": a.total_max_score,
                    "totalScore": a.total_score,
                }
                for a in attempts.get(row.contentid, [])
            ]
            item["bestScore"] = metrics.best_score(row.contentid)
        items.append(item)
    return {"contentList": items}


# --- docs/api.md#content-state-and-assessments update ---


def refusal_of(batches: Mapping[str, tuple[str, int | None]], course_id: str, batch_id: str) -> str | None:
    """The batch check for one item; a batch of another course counts as unknown (batches are read by course)."""
    found = batches.get(batch_id)
    known = found is not None and found[0] == course_id
    return batch_refusal(known, found[1] if found else None)


def _stored_states(conn: Connection, app: App, user_id: str, keys: set[ContentKey]) -> dict[ContentKey, ContentState]:
    """The stored rows the updates merge into, locked until commit (a concurrent update waits, then re-reads)."""
    c = user_content_consumption.c
    stmt = (
        select(
            c.courseid,
            c.batchid,
            c.contentid,
            c.status,
            c.progress,
            c.last_access_time,
            c.lastaccesstime,
            c.last_completed_time,
            c.lastcompletedtime,
            c.last_updated_time,
            c.lastupdatedtime,
            c.progressdetails,
        )
        .where(
            c.userid == user_id,
            c.courseid.in_(sorted({k[0] for k in keys})),
            c.batchid.in_(sorted({k[1] for k in keys})),
            c.contentid.in_(sorted({k[2] for k in keys})),
        )
        # One lock order for every request, so two updates of the same learner never deadlock.
        .order_by(c.courseid, c.batchid, c.contentid)
    )
    states: dict[ContentKey, ContentState] = {}
    for row in conn.execute(app.store.dialect.lock_for_update(stmt)):
        key = (row.courseid, row.batchid, row.contentid)
        if key in keys:
            # A row written by the reference may only have the legacy text columns
            # (docs/reference/data-model.md#enrolment).
            states[key] = ContentState(
                row.status,
                row.progress,
                row.last_access_time if row.last_access_time is not None else stored_api_time(row.lastaccesstime),
                _or_else(row.last_completed_time, row.lastcompletedtime),
                _or_else(row.last_updated_time, row.lastupdatedtime),
                row.progressdetails,
            )
    return states


def _or_else(ms: int | None, legacy: str | None) -> int | None:
    return ms if ms is not None else stored_api_time(legacy)


def _consumption_row(user_id: str, key: ContentKey, state: ContentState, zone: str) -> dict[str, Any]:
    def legacy(ms: int | None) -> str | None:
        return None if ms is None else api_time_text(ms, zone)

    course_id, batch_id, content_id = key
    return {
        "userid": user_id,
        "courseid": course_id,
        "batchid": batch_id,
        "contentid": content_id,
        "status": state.status,
        "progress": state.progress,
        "last_access_time": state.last_access_time,
        "last_completed_time": state.last_completed_time,
        "last_updated_time": state.last_updated_time,
        # The legacy text columns are kept in step for readers built for the reference
        # (docs/reference/data-model.md#enrolment).
        "lastaccesstime": legacy(state.last_access_time),
        "lastcompletedtime": legacy(state.last_completed_time),
        "lastupdatedtime": legacy(state.last_updated_time),
        "progressdetails": state.progress_details,
    }


def _update_enrolments(
    conn: Connection, user_id: str, groups: Mapping[tuple[str, str], Mapping[str, ContentState]]
) -> None:
    """An existing enrolment records the most recently accessed content (one read, one write)."""
    e = user_enrolments.c
    query = select(e.courseid, e.batchid).where(
        e.userid == user_id,
        e.courseid.in_(sorted({course for course, _ in groups})),
        e.batchid.in_(sorted({batch for _, batch in groups})),
    )
    existing = {(row.courseid, row.batchid) for row in conn.execute(query)}
    params = []
    for (course_id, batch_id), contents in groups.items():
        last = most_recently_accessed(contents.items())
        if (course_id, batch_id) in existing and last is not None:
            content_id, state = last
            params.append(
                {
                    "k_user": user_id,
                    "k_course": course_id,
                    "k_batch": batch_id,
                    "v_content": content_id,
                    "v_status": state.status,
                    "v_access": state.last_access_time,
                }
            )
    if params:
        stmt = (
            update(user_enrolments)
            .where(
                e.userid == bindparam("k_user"), e.courseid == bindparam("k_course"), e.batchid == bindparam("k_batch")
            )
            .values(
                lastreadcontentid=bindparam("v_content"),
                lastreadcontentstatus=bindparam("v_status"),
                lastcontentaccesstime=bindparam("v_access"),
            )
        )
        conn.execute(stmt, params)


def apply_content_updates(
    conn: Connection, app: App, user_id: str, updates: Sequence[ContentUpdate], now: int
) -> list[ContentKey]:
    """Merge and write one learner's content items; the assessment submit completes through here.

    Items apply in order, each merging into the result of the previous one for the same content. Per
    (user, batch) the writes are: (a) the progress event with the merged statuses, (b) the consumption rows,
    (c) the enrolment's last-read fields when an enrolment exists; batched over all groups.

    Args:
        conn: the request's write transaction.
        app: the application (dialect, log, topics, timezone).
        user_id: the learner every item belongs to.
        updates: items that passed the batch and user checks.
        now: epoch ms of the request.

    Returns:
        The written (course, batch, content) keys, in first-written order.
    """
    if not updates:
        return []
    states = _stored_states(conn, app, user_id, {(u.course_id, u.batch_id, u.content_id) for u in updates})
    groups: dict[tuple[str, str], dict[str, ContentState]] = {}
    for u in updates:
        key = (u.course_id, u.batch_id, u.content_id)
        states[key] = merge_content(states.get(key), u, now)
        groups.setdefault((u.course_id, u.batch_id), {})[u.content_id] = states[key]
    events = [
        (
            user_id,
            payload_json(
                progress_event(
                    user_id=user_id,
                    batch_id=batch_id,
                    course_id=course_id,
                    contents=[(content_id, state.status) for content_id, state in contents.items()],
                    now=now,
                )
            ),
        )
        for (course_id, batch_id), contents in groups.items()
    ]
    publishing.append(conn, app, app.topics.progress, events, now)
    zone = app.settings.timezone
    written = [(course, batch, content) for (course, batch), contents in groups.items() for content in contents]
    rows = [_consumption_row(user_id, key, states[key], zone) for key in written]
    replace = [name for name in rows[0] if name not in ("userid", "courseid", "batchid", "contentid")]
    conn.execute(app.store.dialect.upsert(user_content_consumption, replace=replace), rows)
    _update_enrolments(conn, user_id, groups)
    return written


def refused_assessment(exc: InvalidEvent) -> ApiError:
    """A content-state assessment that fails docs/jobs/assessment.md#a1 or an input bound: 400 INVALID_PARAMETER_VALUE
    naming the field (``events[0].edata.score``) with the rule (docs/threat-model.md)."""
    name = exc.field or "assessments"
    rule = exc.reason[len(name) + 1 :] if exc.reason.startswith(name + " ") else exc.reason
    return api_error("INVALID_PARAMETER_VALUE", name=name, value=invalid_value_text(exc.value, rule))


def check_assessments(events: Sequence[Mapping[str, Any]], max_questions: int) -> None:
    """docs/jobs/assessment.md#a1 and the input bounds for every assessment of a content-state update, before anything
    is written.

    Raises:
        ApiError: 400 INVALID_PARAMETER_VALUE for the first assessment that fails.
    """
    for event in events:
        try:
            parse_assessment_event(event, max_questions=max_questions, every_field=True)
        except InvalidEvent as exc:
            raise refused_assessment(exc) from None


def update_content_state(
    app: App,
    *,
    user_id: str,
    contents: Sequence[Mapping[str, Any]],
    assessments: Sequence[Mapping[str, Any]],
    now: int,
) -> dict[str, Any]:
    """``PATCH /v1/content/state/update``: all writes and publishes in one write transaction.

    Args:
        app: the application.
        user_id: the subject (requestedFor, otherwise the caller).
        contents: validated content items, as sent.
        assessments: validated assessment items, as sent.
        now: epoch ms of the request.

    Returns:
        ``{contentId: "SUCCESS", batchId: "SUCCESS", "BATCH_NOT_EXISTS": [...], "NOT_A_ON_GOING_BATCH": [...]}``.

    Raises:
        ApiError: 400 when an assessment fails docs/jobs/assessment.md#a1 or an input bound; nothing is written then.
    """
    events = [assessment_event(a, user_id) for a in assessments]
    check_assessments(events, app.settings.assessment.max_questions)
    # Step 1: every assessment also completes its content, for the subject.
    items: list[tuple[Mapping[str, Any] | None, ContentUpdate]] = [(raw, content_update(raw)) for raw in contents]
    items += [(None, ContentUpdate(e["courseId"], e["batchId"], e["contentId"], COMPLETED)) for e in events]
    refused: dict[str, set[str]] = {BATCH_NOT_EXISTS: set(), NOT_A_ON_GOING_BATCH: set()}
    with publishing.transaction(app) as conn:
        batches = learner_reads.batch_courses(conn, {u.batch_id for _, u in items})
        valid: list[ContentUpdate] = []
        invalid: list[Mapping[str, Any]] = []
        for raw, u in items:
            refusal = refusal_of(batches, u.course_id, u.batch_id)
            if refusal is not None:
                refused[refusal].add(u.batch_id)
            elif u.user_id is not None and u.user_id != user_id and raw is not None:
                invalid.append(raw)  # step 3: another user's item is never written
            else:
                valid.append(u)
        published = []
        for e in events:
            refusal = refusal_of(batches, e["courseId"], e["batchId"])
            if refusal is not None:
                refused[refusal].add(e["batchId"])
            else:
                published.append(e)
        written = apply_content_updates(conn, app, user_id, valid, now)
        publishing.append(conn, app, app.topics.assess, [(None, payload_json(e)) for e in published], now)
        if invalid:
            payload = {"validUserIds": [user_id], "invalidContents": invalid, "ets": now}
            publishing.append(conn, app, app.topics.contentstate_invalid, [(user_id, payload_json(payload))], now)
    result: dict[str, Any] = {}
    for _, _, content_id in written:
        result[content_id] = SUCCESS
    for e in published:
        result[e["batchId"]] = SUCCESS
    for code, batch_ids in refused.items():
        if batch_ids:
            result[code] = sorted(batch_ids)
    return result
