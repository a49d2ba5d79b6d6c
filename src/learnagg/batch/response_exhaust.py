"""Response exhaust (docs/batch.md#exhaust-reports): one CSV row per question of the batch's live and archived
attempts."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from typing import Any, TextIO

import orjson
from sqlalchemy import Connection, select

from learnagg.adapters.store.tables import assessment_aggregator, content, course_node
from learnagg.app import App
from learnagg.batch.progress_exhaust import (
    READ_AHEAD,
    BatchInfo,
    enrolled_user_chunks,
    paused_gc,
    read_ahead,
    read_batch,
)
from learnagg.domain import reports
from learnagg.domain.numbers import truncated_int
from learnagg.domain.report_cells import compact_json

CHUNK_USERS = 100  # learners per read of live attempts (each may hold many question rows)
SPILL_ROWS = 500  # archived attempts per write to, or read from, the spill file
Archived = tuple[str, reports.AttemptRows]


def question_dumps(value: Any) -> str:
    """Compact JSON without ASCII escaping, as `compact_json` writes it, ten times faster."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits, non-text keys…: the standard library
        return compact_json(value)


def _questions(value: Any) -> Any:
    # Archived rows carry the parsed list; JSON text (as stored in the archive file) is accepted too.
    if isinstance(value, (str, bytes)):
        return orjson.loads(value)
    return value


@contextmanager
def _spill(rows: Iterable[Mapping[str, Any]], info: BatchInfo) -> Iterator[Iterator[Archived]]:
    """Archived attempts of the batch, sorted by user id (code-point order), with bounded memory.

    The rows may come in any order, so they are written to a temporary SQLite file and read back with
    ``ORDER BY user_id`` (SQLite's BINARY collation compares UTF-8 bytes: code-point order; its sorter spills to
    disk). Rows of another course or batch are ignored. Nothing is created when there are no rows.
    """
    records = (
        (
            row["user_id"],
            row["content_id"],
            row["attempt_id"],
            truncated_int(row.get("last_attempted_on")),
            truncated_int(row.get("updated_on")),
            question_dumps(_questions(row.get("question"))),
        )
        for row in rows
        if row.get("course_id") == info.course_id and row.get("batch_id") == info.batch_id
    )
    chunk = list(islice(records, SPILL_ROWS))
    if not chunk:
        yield iter(())
        return
    with tempfile.TemporaryDirectory(prefix="learnagg-response-") as folder:
        db = sqlite3.connect(os.path.join(folder, "archived.db"))
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE archived (user_id TEXT, content_id TEXT, attempt_id TEXT, last_attempted_on INTEGER,"
                " updated_on INTEGER, question TEXT)"
            )
            while chunk:
                db.executemany("INSERT INTO archived VALUES (?, ?, ?, ?, ?, ?)", chunk)
                chunk = list(islice(records, SPILL_ROWS))
            db.commit()
            yield _sorted_archive(db)
        finally:
            db.close()


def _sorted_archive(db: sqlite3.Connection) -> Iterator[Archived]:
    cursor = db.execute("SELECT * FROM archived ORDER BY user_id")
    while batch := cursor.fetchmany(SPILL_ROWS):
        for user, cid, aid, last, updated, question in batch:
            yield user, reports.AttemptRows(cid, aid, last, updated, orjson.loads(question), live=False)


class _Titles:
    """QuestionSet Title by content id: the course's contents read once, any other content on first use."""

    def __init__(self, conn: Connection, course_id: str) -> None:
        n, c = course_node.c, content.c
        stmt = select(c.content_id, c.name).join(course_node, n.node_id == c.content_id).where(n.course_id == course_id)
        self._names: dict[str, str | None] = {cid: name for cid, name in conn.execute(stmt)}
        self._conn = conn

    def __call__(self, content_id: str) -> str | None:
        if content_id not in self._names:
            stmt = select(content.c.name).where(content.c.content_id == content_id)
            self._names[content_id] = self._conn.execute(stmt).scalar()
        return self._names[content_id]


def _live(conn: Connection, info: BatchInfo, user_ids: list[str]) -> dict[str, list[reports.AttemptRows]]:
    """The live attempts of one chunk of learners, by user id."""
    a = assessment_aggregator.c
    stmt = select(a.user_id, a.content_id, a.attempt_id, a.last_attempted_on, a.updated_on, a.question).where(
        a.user_id.in_(user_ids), a.course_id == info.course_id, a.batch_id == info.batch_id
    )
    out: dict[str, list[reports.AttemptRows]] = {}
    for user, cid, aid, last, updated, question in conn.execute(stmt):
        out.setdefault(user, []).append(reports.AttemptRows(cid, aid, last, updated, question, live=True))
    return out


def write_response_report(
    app: App,
    batch_id: str,
    out: TextIO,
    *,
    archived: Iterable[Mapping[str, Any]] = (),
    channel: str | None = None,
    chunk_users: int = CHUNK_USERS,
) -> int:
    """Write the response report CSV (docs/batch.md#exhaust-reports) of one batch to ``out``.

    Learners are processed one by one in code-point order of their ids (the first sort key): their live rows are
    read ``chunk_users`` learners at a time, their archived rows come from a sorted spill file, and each learner's
    rows are de-duplicated (live wins) and sorted in memory. Only active enrolled learners are kept
    (docs/batch.md#exhaust-reports).

    Args:
        app: The application (store and ``report.timezone``).
        batch_id: The batch to report on.
        out: A text stream; the caller owns it.
        archived: Archived `assessment_aggregator` rows (the 12 columns of docs/batch.md#assessment-archival,
        ``question`` parsed,
            timestamps in epoch ms), in any order; rows of other batches are ignored.
        channel: The requesting channel (docs/batch.md#exhaust-reports); None keeps every learner.
        chunk_users: Learners per read of live rows.

    Returns:
        The number of data rows written (the header is not counted).

    Raises:
        NotFound: when the batch does not exist.
    """
    zone = app.settings.report.timezone
    with paused_gc(), app.store.read() as conn:
        info = read_batch(conn, batch_id)
        ctx = reports.ResponseContext(info.course_id, info.course_name, info.batch_id, info.batch_name, zone)
        titles = _Titles(conn, info.course_id)
        writer = reports.CsvWriter(out)
        writer.write(reports.RESPONSE_COLUMNS)

        def chunks() -> Iterator[tuple[list[str], dict[str, list[reports.AttemptRows]]]]:
            with app.store.read() as reader:
                for chunk in enrolled_user_chunks(reader, app.store.backend, info, channel, chunk_users):
                    yield chunk, _live(reader, info, chunk)

        with _spill(archived, info) as archive:
            pending = next(archive, None)
            for chunk, live in read_ahead(chunks, READ_AHEAD.get(app.store.backend, 0)):
                for user_id in chunk:
                    attempts = live.get(user_id, [])
                    # Archived learners who are not in the report (< user_id) are skipped.
                    while pending is not None and pending[0] <= user_id:
                        if pending[0] == user_id:
                            attempts.append(pending[1])
                        pending = next(archive, None)
                    for line in reports.learner_response_lines(ctx, user_id, attempts, titles, question_dumps):
                        writer.write_line(line)
        writer.flush()
    return writer.rows - 1
