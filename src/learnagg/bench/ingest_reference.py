"""The references the ingest benchmark compares the assessment aggregator with: bare write, and parse + write.

Both write into a fresh database with the same schema, one transaction per B attempts (in stream order), with plain
``INSERT … executemany``: no log, no history read, no scoring, no upsert, no certificate request, no offset.
- **bare write**: the rows the aggregator wrote, read back from its database.
- **parse + write**: the same events decoded (``orjson.loads`` of each payload) and validated and normalised
  (docs/jobs/assessment.md#a1, docs/jobs/assessment.md#a2) into `assessment_aggregator` rows, which are then written
  with the `user_activity_agg` rows the aggregator wrote. The rows carry the answers in input order and their plain
  sums: the de-duplication and scoring of docs/jobs/assessment.md#a5 are the aggregator's work, not the reference's.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select

from learnagg.adapters.store import schema
from learnagg.adapters.store.scores import context_id
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import assessment_aggregator, user_activity_agg
from learnagg.domain.assess_event import AssessmentBatchEvent, InvalidEvent
from learnagg.domain.numbers import fmt2
from learnagg.errors import LearnaggError

LearnerKey = tuple[str, str, str]  # (activity_id, context_id, user_id) of a course aggregate row


@dataclass(frozen=True, slots=True)
class ParseWriteTimes:
    """Seconds of the parse + write reference, per step (their sum is the reference's time)."""

    decode: float
    parse: float
    write: float

    @property
    def total(self) -> float:
        """The reference's time: decode + parse + write."""
        return self.decode + self.parse + self.write


class _FirstSeen:
    """The course aggregate rows of the learners first seen in each transaction, as the aggregator first wrote them."""

    def __init__(self, activity_rows: Sequence[Mapping[str, Any]]) -> None:
        self.by_learner: dict[LearnerKey, Mapping[str, Any]] = {
            (r["activity_id"], r["context_id"], r["user_id"]): r for r in activity_rows
        }
        self.seen: set[LearnerKey] = set()

    def fresh(self, attempts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        out = []
        for row in attempts:
            key = (row["course_id"], context_id(row["batch_id"]), row["user_id"])
            if key not in self.seen and key in self.by_learner:
                self.seen.add(key)
                out.append(self.by_learner[key])
        return out

    def leftover(self) -> list[Mapping[str, Any]]:
        return [r for k, r in self.by_learner.items() if k not in self.seen]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic collector off, as the worker has it while it handles a batch (the references build no cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_transactions(
    attempt_rows: Sequence[Mapping[str, Any]], activity_rows: Sequence[Mapping[str, Any]], batch_size: int
) -> list[tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]]:
    """Group rows as the aggregator's transactions first wrote them: B attempts (in stream order) per transaction,
    with the course aggregate rows of the learners first seen among them."""
    first_seen = _FirstSeen(activity_rows)
    out = []
    for start in range(0, len(attempt_rows), batch_size):
        chunk = list(attempt_rows[start : start + batch_size])
        out.append((chunk, first_seen.fresh(chunk)))
    leftover = first_seen.leftover()
    if leftover:
        out.append(([], leftover))
    return out


def _write(conn: Connection, attempts: Sequence[Mapping[str, Any]], activities: Sequence[Mapping[str, Any]]) -> None:
    if attempts:
        conn.execute(insert(assessment_aggregator), attempts)
    if activities:
        conn.execute(insert(user_activity_agg), activities)


def _check_count(store: Store, expected: int, what: str) -> None:
    with store.read() as conn:
        written = conn.execute(select(func.count()).select_from(assessment_aggregator)).scalar_one()
    if written != expected:
        raise LearnaggError(f"benchmark invalid: {what} stored {written} of {expected} rows")


def bare_write(url: str, attempt_rows: list[dict[str, Any]], activity_rows: list[dict[str, Any]], b: int) -> float:
    """Insert the rows into a fresh database with plain INSERT executemany; returns the elapsed seconds."""
    store = Store(url)
    try:
        schema.upgrade(store)
        transactions = write_transactions(attempt_rows, activity_rows, b)
        with _gc_paused():
            started = time.perf_counter()
            for attempts, activities in transactions:
                with store.write() as conn:
                    _write(conn, attempts, activities)
            elapsed = time.perf_counter() - started
        _check_count(store, len(attempt_rows), "bare write")
        return elapsed
    finally:
        store.dispose()


def attempt_row(event: AssessmentBatchEvent, now: int) -> dict[str, Any]:
    """The `assessment_aggregator` row of a parsed event: its answers in input order and their plain sums."""
    total_score = 0.0
    total_max_score = 0.0
    for question in event.questions:
        total_score += question.score
        total_max_score += question.max_score
    return {
        "user_id": event.user_id,
        "course_id": event.course_id,
        "batch_id": event.batch_id,
        "content_id": event.content_id,
        "attempt_id": event.attempt_id or "",
        "created_on": now,
        "updated_on": now,
        "last_attempted_on": event.assessment_ts,
        "total_score": total_score,
        "total_max_score": total_max_score,
        "grand_total": f"{fmt2(total_score)}/{fmt2(total_max_score)}",
        "question": [q.to_json() for q in event.questions],
    }


def parse_write(
    url: str,
    payload_chunks: Iterable[Sequence[str]],
    activity_rows: list[dict[str, Any]],
    parse: Callable[[object], AssessmentBatchEvent],
    now: int,
) -> tuple[ParseWriteTimes, int]:
    """Decode, parse and write each chunk of payloads (one transaction each) into a fresh database, timed per step.

    Args:
        url: The fresh database.
        payload_chunks: The event texts, B per chunk, in stream order (producing them is not timed).
        activity_rows: The `user_activity_agg` rows the aggregator wrote, each written with the first chunk that
            holds an attempt of its learner.
        parse: The aggregator's event parser (its answer limit bound).
        now: The ``created_on``/``updated_on`` of every row.

    Returns:
        The seconds per step and the number of attempts written.

    Raises:
        LearnaggError: when an event does not parse or the database does not hold every row afterwards.
    """
    store = Store(url)
    try:
        schema.upgrade(store)
        first_seen = _FirstSeen(activity_rows)
        with _gc_paused():
            decode = parse_s = write = 0.0
            count = 0
            for chunk in payload_chunks:
                started = time.perf_counter()
                raws = [orjson.loads(p) for p in chunk]
                decoded = time.perf_counter()
                try:
                    rows = [attempt_row(parse(raw), now) for raw in raws]
                except InvalidEvent as exc:
                    raise LearnaggError(f"benchmark invalid: an event does not parse: {exc.reason}") from exc
                parsed = time.perf_counter()
                with store.write() as conn:
                    _write(conn, rows, first_seen.fresh(rows))
                written = time.perf_counter()
                decode += decoded - started
                parse_s += parsed - decoded
                write += written - parsed
                count += len(rows)
            leftover = first_seen.leftover()
            if leftover:
                started = time.perf_counter()
                with store.write() as conn:
                    _write(conn, [], leftover)
                write += time.perf_counter() - started
        _check_count(store, count, "parse + write")
        return ParseWriteTimes(decode, parse_s, write), count
    finally:
        store.dispose()
