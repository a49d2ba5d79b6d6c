"""The progress and response exhausts on Spark (docs/spark.md, docs/batch.md#exhaust-reports): the same CSV bytes as
the python engine's (`learnagg.batch.progress_exhaust`, `learnagg.batch.response_exhaust`).

A batch is cut into slices of learners (`spark.slice_learners`, by User UUID in code-point order); each Spark task
reads its slice over JDBC, formats its lines with the domain's report functions and writes them to a part object in
the object store. All slices run at once; the driver then writes the header and copies the parts in slice order
(streamed, a MiB at a time), so the file is the same stream the python engine writes. The response report also
reads the batch's archives, one task per file; archived and live attempts meet by learner in one shuffle into the
same slices.
"""

from __future__ import annotations

import codecs
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

import orjson
from sqlalchemy import Text, cast, select

from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.store.tables import assessment_aggregator, content, course_node, user_activity_agg, users
from learnagg.adapters.store.tables import user_enrolments as enrolments
from learnagg.app import App
from learnagg.batch.exhaust_files import ArchiveUnreadable, BatchError, archive_pattern
from learnagg.batch.progress_exhaust import (
    CHUNK_USERS,
    BatchInfo,
    course_row_join,
    eligible_filters,
    progress_context,
    read_batch,
)
from learnagg.batch.response_exhaust import question_dumps
from learnagg.batch.spark.archival import blob_location
from learnagg.batch.spark.session import Jdbc, jdbc_for, spark_session, sql_text
from learnagg.batch.spark.slices import SliceOf, slice_bounds, slice_predicates
from learnagg.domain import archive_read as ar
from learnagg.domain import exhaust as dx
from learnagg.domain import reports
from learnagg.domain.numbers import truncated_int
from learnagg.errors import NotFound, first_line

BLOCK_LINES = 2000  # lines per block a task writes
PART_READ = 1 << 20  # bytes per read while the driver copies the parts
_JSON_COLUMNS = ("contentstatus", "certificates", "issued_certificates", "agg", "aggregates")
ELIGIBLE, LIVE, ARCHIVED, ERROR = 0, 1, 2, 3  # kinds of the response job's records


def write_report_spark(
    app: App, blobs: ObjectStore, job_id: str, batch_id: str, course_id: str, out: TextIO, channel: str | None
) -> int:
    """`learnagg.batch.exhaust_files.write_report` on Spark: one batch's report CSV to ``out``; returns the rows.

    Raises:
        BatchError: the batch does not exist, or one of its archived files cannot be read.
        ConfigurationError: the store is not PostgreSQL, or Spark cannot start.
    """
    jdbc = jdbc_for(app.settings.database_url)
    try:
        if dx.REPORT_KEYS[job_id] == "progress":
            return write_progress_spark(app, jdbc, blobs, batch_id, out, channel=channel)
        return write_response_spark(app, jdbc, blobs, batch_id, course_id, out, channel=channel)
    except NotFound:
        raise BatchError(f"Batch {batch_id} does not exist") from None


def _gather(app: App, blobs: ObjectStore, out: TextIO, blocks: Any) -> int:
    """Run the job (every slice at once), each task writing its slice's text to a part object; then copy the parts
    to ``out`` in slice order and remove them. Returns the rows.

    Raises:
        ArchiveUnreadable: a task met an unreadable archive (the first such file in key order is named).
    """
    prefix = f"tmp/spark-report-{uuid.uuid4().hex}/"
    try:
        results = sorted(blocks.mapPartitionsWithIndex(_part_task(blob_location(blobs), prefix)).collect())
        errors = [error for _, _, error in results if error is not None]
        if errors:
            raise ArchiveUnreadable(max(errors)[1])
        decoder = codecs.getincrementaldecoder("utf-8")()
        for index, _, _ in results:
            with blobs.open_read(_part(prefix, index)) as f:
                while data := f.read(PART_READ):
                    out.write(decoder.decode(data))
            blobs.delete(_part(prefix, index))
        out.write(decoder.decode(b"", final=True))
        return sum(rows for _, rows, _ in results)
    finally:
        for key in blobs.list_keys(prefix):
            blobs.delete(key)


def _part(prefix: str, index: int) -> str:
    return f"{prefix}part-{index:05d}"


def _part_task(blob_url: str, prefix: str) -> Callable[[int, Iterable[tuple[int, str]]], Iterator[Any]]:
    """A slice's blocks into its part object; an error block (a negative count) is handed back instead."""

    def run(index: int, blocks: Iterable[tuple[int, str]]) -> Iterator[tuple[int, int, tuple[int, str] | None]]:
        blobs = ObjectStore(blob_url)
        rows = 0
        error = None
        with blobs.open_write(_part(prefix, index)) as out:
            for count, text in blocks:
                if count < 0:
                    error = (count, text)
                    continue
                out.write(text.encode("utf-8"))
                rows += count
        yield index, rows, error

    return run


def _blocks(lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    while block := list(itertools.islice(lines, BLOCK_LINES)):
        yield len(block), "".join(block)


# -- progress ------------------------------------------------------------------------------------------------


def write_progress_spark(
    app: App, jdbc: Jdbc, blobs: ObjectStore, batch_id: str, out: TextIO, *, channel: str | None = None
) -> int:
    """The progress report (`learnagg.batch.progress_exhaust.write_progress_report`) with one task per slice.

    Raises:
        NotFound: when the batch does not exist.
    """
    with app.store.read() as conn:
        info = read_batch(conn, batch_id)
        ctx = progress_context(conn, app, info, channel, CHUNK_USERS)
        bounds = slice_bounds(conn, info, channel, app.settings.spark.slice_learners)
    out.write(reports.csv_line(ctx.header()))
    spark = spark_session(app.settings)
    frame = jdbc.read(spark, sql_text(_learners_query(info, channel)), slice_predicates("userid", bounds))
    return _gather(app, blobs, out, frame.sortWithinPartitions("userid").rdd.mapPartitions(_progress_task(ctx)))


def _learners_query(info: BatchInfo, channel: str | None) -> Any:
    """The wide columns of every reported learner (the python engine reads them a chunk of ids at a time)."""
    e, u, g = enrolments.c, users.c, user_activity_agg.c
    return (
        select(
            e.userid,
            e.enrolled_date,
            e.enrolleddate,
            e.completedon,
            cast(e.contentstatus, Text).label("contentstatus"),
            cast(e.certificates, Text).label("certificates"),
            cast(e.issued_certificates, Text).label("issued_certificates"),
            *(u[f] for f in reports.PROGRESS_USER_FIELDS),
            u.board,
            cast(g.agg, Text).label("agg"),
            cast(g.aggregates, Text).label("aggregates"),
        )
        .select_from(enrolments.join(users, u.id == e.userid).outerjoin(user_activity_agg, course_row_join(info)))
        .where(*eligible_filters(info, channel))
    )


def _progress_task(ctx: reports.ProgressContext) -> Callable[[Iterable[Any]], Iterator[tuple[int, str]]]:
    def run(rows: Iterable[Any]) -> Iterator[tuple[int, str]]:
        def lines() -> Iterator[str]:
            for row in rows:
                learner = row.asDict()
                for name in _JSON_COLUMNS:  # parsed as the store parses JSON columns
                    text = learner[name]
                    learner[name] = None if text is None else orjson.loads(text)
                yield reports.progress_line(ctx, learner)

        yield from _blocks(lines())

    return run


# -- response ------------------------------------------------------------------------------------------------


def write_response_spark(
    app: App, jdbc: Jdbc, blobs: ObjectStore, batch_id: str, course_id: str, out: TextIO, *, channel: str | None = None
) -> int:
    """The response report (`learnagg.batch.response_exhaust.write_response_report`, archived attempts included).

    Raises:
        NotFound: when the batch does not exist.
        ArchiveUnreadable: naming the first archived file (in key order) that cannot be read.
    """
    s = app.settings
    with app.store.read() as conn:
        info = read_batch(conn, batch_id)
        bounds = slice_bounds(conn, info, channel, s.spark.slice_learners)
        titles = _titles(conn, info)
    keys = blobs.glob(archive_pattern(s.archival.prefix, batch_id, course_id))
    ctx = reports.ResponseContext(info.course_id, info.course_name, info.batch_id, info.batch_name, s.report.timezone)
    out.write(reports.csv_line(reports.RESPONSE_COLUMNS))
    spark = spark_session(s)
    eligible_sql = sql_text(
        select(enrolments.c.userid).select_from(_reported(info)).where(*eligible_filters(info, channel))
    )
    a = assessment_aggregator.c
    live_sql = sql_text(
        select(a.user_id, a.content_id, a.attempt_id, a.last_attempted_on, a.updated_on, cast(a.question, Text)).where(
            a.course_id == info.course_id, a.batch_id == info.batch_id
        )
    )
    eligible = jdbc.read(spark, eligible_sql, slice_predicates("userid", bounds)).rdd.map(_eligible_record)
    live = jdbc.read(spark, live_sql, slice_predicates("user_id", bounds)).rdd.map(_live_record)
    records = eligible.union(live)
    if keys:
        files = spark.sparkContext.parallelize(list(enumerate(keys)), len(keys))
        records = records.union(files.flatMap(_archive_task(blob_location(blobs), info.course_id, info.batch_id)))
    sliced = records.repartitionAndSortWithinPartitions(len(bounds) + 1, SliceOf(bounds), keyfunc=lambda k: k)
    return _gather(app, blobs, out, sliced.mapPartitions(_response_task(ctx, titles, s.database_url)))


def _reported(info: BatchInfo) -> Any:
    return enrolments.join(users, users.c.id == enrolments.c.userid)


def _titles(conn: Any, info: BatchInfo) -> dict[str, str | None]:
    """QuestionSet Title of the course's contents and of every content the batch's live attempts name."""
    n, c, a = course_node.c, content.c, assessment_aggregator.c
    names: dict[str, str | None] = {}
    course = (
        select(c.content_id, c.name).join(course_node, n.node_id == c.content_id).where(n.course_id == info.course_id)
    )
    names.update((cid, name) for cid, name in conn.execute(course))
    live = select(a.content_id).where(a.course_id == info.course_id, a.batch_id == info.batch_id).distinct().subquery()
    stmt = select(live.c.content_id, c.name).select_from(live.outerjoin(content, c.content_id == live.c.content_id))
    names.update((cid, name) for cid, name in conn.execute(stmt))
    return names


def _eligible_record(row: Any) -> tuple[str, tuple[int, Any, Any]]:
    return row[0], (ELIGIBLE, None, None)


def _live_record(row: Any) -> tuple[str, tuple[int, Any, Any]]:
    return row[0], (LIVE, None, tuple(row[1:]))


def _archive_task(blob_url: str, course_id: str, batch_id: str) -> Callable[[tuple[int, str]], Iterator[Any]]:
    """Read one archived file (a task): its rows of the batch, or one error record naming it."""

    def run(item: tuple[int, str]) -> Iterator[tuple[str, tuple[int, Any, Any]]]:
        index, key = item
        blobs = ObjectStore(blob_url)
        try:
            with blobs.open_read(key) as f:
                for n, row in enumerate(ar.ArchiveReader(f)):
                    question = orjson.loads(row.question) if row.question else None
                    if question is not None and not isinstance(question, list):
                        raise ValueError("question is not a JSON array")
                    if row.course_id != course_id or row.batch_id != batch_id:
                        continue
                    last, updated = truncated_int(row.last_attempted_on), truncated_int(row.updated_on)
                    values = (row.content_id, row.attempt_id, last, updated, question_dumps(question))
                    yield row.user_id, (ARCHIVED, (index, n), values)
        except (ValueError, ObjectStoreError, OSError, EOFError) as exc:  # ArchiveFormatError is a ValueError
            yield "", (ERROR, index, f"Archived file {key} cannot be read: {first_line(exc)}")

    return run


class _TaskTitles:
    """Titles known on the driver; any other content (archived attempts only) read from the store on first use."""

    def __init__(self, names: dict[str, str | None], database_url: str) -> None:
        self.names = dict(names)
        self.database_url = database_url
        self.store: Any = None

    def __call__(self, content_id: str) -> str | None:
        if content_id not in self.names:
            if self.store is None:
                from learnagg.adapters.store.store import Store

                self.store = Store(self.database_url)
            with self.store.read() as conn:
                stmt = select(content.c.name).where(content.c.content_id == content_id)
                self.names[content_id] = conn.execute(stmt).scalar()
        return self.names[content_id]

    def close(self) -> None:
        if self.store is not None:
            self.store.dispose()


def _response_task(
    ctx: reports.ResponseContext, names: dict[str, str | None], database_url: str
) -> Callable[[Iterable[Any]], Iterator[tuple[int, str]]]:
    def run(records: Iterable[tuple[str, tuple[int, Any, Any]]]) -> Iterator[tuple[int, str]]:
        titles = _TaskTitles(names, database_url)
        failed: list[tuple[int, str]] = []

        def lines() -> Iterator[str]:
            for user_id, group in itertools.groupby(records, key=lambda r: r[0]):
                eligible = False
                live: list[reports.AttemptRows] = []
                archived: list[tuple[Any, reports.AttemptRows]] = []
                for _, (kind, order, values) in group:
                    if kind == ELIGIBLE:
                        eligible = True
                    elif kind == ERROR:
                        failed.append((order, values))
                    else:
                        cid, aid, last, updated, question = values
                        parsed = None if question is None else orjson.loads(question)
                        attempt = reports.AttemptRows(cid, aid, last, updated, parsed, live=kind == LIVE)
                        if kind == LIVE:
                            live.append(attempt)
                        else:
                            archived.append((order, attempt))
                if failed:
                    return
                if eligible:
                    # Live rows first, then archived ones in file and line order, as the python engine meets them.
                    attempts = live + [a for _, a in sorted(archived, key=lambda x: x[0])]
                    yield from reports.learner_response_lines(ctx, user_id, attempts, titles, question_dumps)

        try:
            yield from _blocks(lines())
            if failed:
                index, message = min(failed)
                yield -1 - index, message  # the first file in key order has the largest count
        finally:
            titles.close()

    return run
