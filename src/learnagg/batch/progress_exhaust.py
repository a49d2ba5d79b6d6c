"""Progress exhaust (docs/batch.md#exhaust-reports): one CSV row per enrolled learner of a batch, streamed in User UUID
order."""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from learnagg.adapters.store.tables import content, course, course_batch, course_node, user_activity_agg, users
from learnagg.adapters.store.tables import user_enrolments as enrolments
from learnagg.app import App
from learnagg.domain import reports
from learnagg.errors import NotFound

CHUNK_USERS = 2000  # learners per wide read: bounds memory whatever the batch size
# Chunks read ahead of the one being written, by backend: only a database server works in parallel with us; with
# SQLite a reader thread would only contend for the GIL (measured: 8 % slower).
READ_AHEAD = {"postgresql": 2}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch and its course, as the exhaust reports need them (docs/reference/data-model.md#enrolment,
    docs/reference/data-model.md#hierarchy)."""

    batch_id: str
    batch_name: str | None
    course_id: str
    course_name: str | None
    course_channel: str | None
    leaf_nodes_count: int | None

    @property
    def context_id(self) -> str:
        """``cb:<batchId>``: the context of the batch's aggregate rows."""
        return f"cb:{self.batch_id}"


def read_batch(conn: Connection, batch_id: str) -> BatchInfo:
    """The batch and its course; an unknown course gives null names, no channel and no leaves.

    Raises:
        NotFound: when no `course_batch` row has this batch id.
    """
    b, c = course_batch.c, course.c
    stmt = (
        select(b.batchid, b.name, b.courseid, c.name.label("course_name"), c.channel, c.leaf_nodes_count)
        .select_from(course_batch.outerjoin(course, c.course_id == b.courseid))
        .where(b.batchid == batch_id)
    )
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"batch {batch_id!r} does not exist")
    return BatchInfo(*row)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a report runs, then restore it.

    A report allocates millions of short-lived, acyclic containers (parsed JSON, rows): reference counting frees
    them, but each chunk that survives a few collections is promoted and triggers full collections that rescan
    every object of the process (measured: 40 % of the response exhaust's time). Cycles made meanwhile are freed
    when the collector resumes.

    Only on the main thread (`learnagg report`, `learnagg exhaust run`): the exhaust runner inside `serve` runs
    on a thread of its own, and pausing there would pause the collector for every request of the API too.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_ahead(produce: Callable[[], Iterator[T]], depth: int) -> Iterator[T]:
    """Iterate ``produce()`` in a background thread, at most ``depth`` items ahead of the consumer (0: no thread).

    The database work for the next chunk (the PostgreSQL server encoding JSONB, the driver decoding it) overlaps
    with the writing of the current one (measured: the progress exhaust on PostgreSQL 14.1 s → 8.9 s). An exception
    in the thread is raised here; closing this iterator early stops the thread. ``produce`` opens its own connection.
    """
    if depth <= 0:
        yield from produce()
        return
    items: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            source = produce()
            try:
                for item in source:
                    if not put((True, item)):
                        return
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
            put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((False, exc))

    thread = threading.Thread(target=run, name="learnagg-report-reader", daemon=True)
    thread.start()
    try:
        while True:
            more, item = items.get()
            if more:
                yield item
            elif item is None:
                return
            else:
                raise item
    finally:
        stop.set()
        thread.join()


def codepoint_order(column: ColumnElement[Any], backend: str) -> ColumnElement[Any]:
    """``column`` ordered by Unicode code point (docs/reference/data-model.md#c6) whatever the PostgreSQL database's
    collation.

    SQLite's default BINARY collation already compares UTF-8 bytes, which is code-point order.
    """
    return column.collate("C") if backend == "postgresql" else column


def eligible_filters(info: BatchInfo, channel: str | None) -> list[ColumnElement[bool]]:
    """docs/batch.md#exhaust-reports: active enrolments of the batch with an enrolment date (users are inner-joined by
    the caller); when the requesting channel is not the course channel, only users of that root org."""
    e, u = enrolments.c, users.c
    where = [
        e.courseid == info.course_id,
        e.batchid == info.batch_id,
        e.active.is_(True),
        # enrolled_date, or else a non-blank legacy enrolleddate (docs/reference/data-model.md#c8).
        or_(e.enrolled_date.is_not(None), func.trim(func.coalesce(e.enrolleddate, "")) != ""),
    ]
    if channel is not None and channel != info.course_channel:
        where.append(u.root_org_id == channel)
    return where


def enrolled_user_chunks(
    conn: Connection, backend: str, info: BatchInfo, channel: str | None, size: int
) -> Iterator[list[str]]:
    """The report's users (docs/batch.md#exhaust-reports), in code-point order, ``size`` ids at a time.

    One query streamed from the database (a server-side cursor on PostgreSQL): only the narrow id column is
    sorted, and each chunk's wide columns are read by the caller with one keyed query.
    """
    e, u = enrolments.c, users.c
    stmt = (
        select(e.userid)
        .select_from(enrolments.join(users, u.id == e.userid))
        .where(*eligible_filters(info, channel))
        .order_by(codepoint_order(e.userid, backend))
    )
    result = conn.execute(stmt, execution_options={"stream_results": True, "yield_per": size})
    try:
        for part in result.partitions(size):
            yield [row[0] for row in part]
    finally:
        result.close()


def _leaves(conn: Connection, app: App, course_id: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The course's assessments in hierarchy order and ``optionalNodes(course)``
    (docs/reference/data-model.md#hierarchy, docs/batch.md#exhaust-reports)."""
    n, c = course_node.c, content.c
    stmt = (
        select(n.node_id, n.optional, c.content_type, c.object_type, c.primary_category)
        .select_from(course_node.outerjoin(content, c.content_id == n.node_id))
        .where(n.course_id == course_id, n.is_leaf.is_(True))
        .order_by(n.position)
    )
    a = app.settings.assessment
    assessments: list[str] = []
    optional: set[str] = set()
    for node_id, is_optional, content_type, object_type, primary_category in conn.execute(stmt):
        if is_optional:
            optional.add(node_id)
        if reports.is_report_assessment(
            content_type,
            object_type,
            primary_category,
            content_types=a.supported_content_types,
            object_types=a.supported_object_types,
            primary_categories=a.supported_primary_categories,
        ):
            assessments.append(node_id)
    return tuple(assessments), frozenset(optional)


def course_row_join(info: BatchInfo) -> Any:
    e, g = enrolments.c, user_activity_agg.c
    return and_(
        g.activity_type == "Course",
        g.activity_id == info.course_id,
        g.context_id == info.context_id,
        g.user_id == e.userid,
    )


def _shown_assessments(
    conn: Connection, info: BatchInfo, channel: str | None, assessments: tuple[str, ...], size: int
) -> tuple[str, ...]:
    """The assessments some reported learner has a score for, in hierarchy order (first pass).

    Streams the course rows of the reported learners in any order, keeping only the set of assessments found;
    it stops as soon as every assessment has been found (the usual case ends after a few rows).
    """
    if not assessments:
        return ()
    g, u = user_activity_agg.c, users.c
    stmt = (
        select(g.agg, g.aggregates)
        .select_from(enrolments.join(users, u.id == enrolments.c.userid).join(user_activity_agg, course_row_join(info)))
        .where(*eligible_filters(info, channel))
    )
    missing = set(assessments)
    result = conn.execute(stmt, execution_options={"stream_results": True, "yield_per": size})
    try:
        for agg, aggregates in result:
            missing -= reports.scored_assessments(agg, aggregates, missing)
            if not missing:
                break
    finally:
        result.close()
    return tuple(c for c in assessments if c not in missing)


def _learners(conn: Connection, info: BatchInfo, channel: str | None, user_ids: list[str]) -> dict[str, Any]:
    """The wide columns of one chunk of learners: enrolment, user and course row (absent → null maps)."""
    e, u, g = enrolments.c, users.c, user_activity_agg.c
    stmt = (
        select(
            e.userid,
            e.enrolled_date,
            e.enrolleddate,
            e.completedon,
            e.contentstatus,
            e.certificates,
            e.issued_certificates,
            *(u[f] for f in reports.PROGRESS_USER_FIELDS),
            u.board,
            g.agg,
            g.aggregates,
        )
        .select_from(enrolments.join(users, u.id == e.userid).outerjoin(user_activity_agg, course_row_join(info)))
        # The eligibility test again: on PostgreSQL each statement reads its own snapshot. The id list is given for
        # both joined tables so that PostgreSQL probes the users key instead of hashing the whole table per chunk.
        .where(*eligible_filters(info, channel), e.userid.in_(user_ids), u.id.in_(user_ids))
    )
    return {row["userid"]: row for row in conn.execute(stmt).mappings()}


def progress_context(
    conn: Connection, app: App, info: BatchInfo, channel: str | None, size: int
) -> reports.ProgressContext:
    """The shared values of the batch's report rows, the shown assessment columns included."""
    assessments, optional = _leaves(conn, app, info.course_id)
    return reports.ProgressContext(
        course_id=info.course_id,
        course_name=info.course_name,
        batch_id=info.batch_id,
        batch_name=info.batch_name,
        zone=app.settings.report.timezone,
        leaf_nodes_count=info.leaf_nodes_count,
        optional=optional,
        assessments=assessments,
        shown=_shown_assessments(conn, info, channel, assessments, size),
    )


def write_progress_report(
    app: App, batch_id: str, out: TextIO, *, channel: str | None = None, chunk_users: int = CHUNK_USERS
) -> int:
    """Write the progress report CSV (docs/batch.md#exhaust-reports) of one batch to ``out``.

    Memory stays flat whatever the batch size: a first streamed pass finds which assessment columns appear, then
    the learners' ids are streamed in code-point order and their wide columns read ``chunk_users`` at a time.

    Args:
        app: The application (store and settings: ``report.timezone``, ``assessment.*``).
        batch_id: The batch to report on.
        out: A text stream; the caller owns it (file, zip entry, …).
        channel: The requesting channel (docs/batch.md#exhaust-reports); None keeps every learner.
        chunk_users: Learners per wide read.

    Returns:
        The number of data rows written (the header is not counted).

    Raises:
        NotFound: when the batch does not exist.
    """
    with paused_gc():
        with app.store.read() as conn:
            info = read_batch(conn, batch_id)
            ctx = progress_context(conn, app, info, channel, chunk_users)
        writer = reports.CsvWriter(out)
        writer.write(ctx.header())

        def chunks() -> Iterator[tuple[list[str], dict[str, Any]]]:
            with app.store.read() as conn:
                for chunk in enrolled_user_chunks(conn, app.store.backend, info, channel, chunk_users):
                    yield chunk, _learners(conn, info, channel, chunk)

        for chunk, learners in read_ahead(chunks, READ_AHEAD.get(app.store.backend, 0)):
            for user_id in chunk:
                learner = learners.get(user_id)
                if learner is not None:
                    writer.write_line(reports.progress_line(ctx, learner))
        writer.flush()
    return writer.rows - 1
