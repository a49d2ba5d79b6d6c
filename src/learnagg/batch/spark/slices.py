"""Batch slices of the spark engine's reports (docs/spark.md): a batch's learners cut into ranges of User UUIDs in
code-point order, one Spark task per range, so that the tasks' outputs concatenated in range order are the report in
the python engine's order."""

from __future__ import annotations

import bisect
import itertools
from typing import Any

from sqlalchemy import Connection, column, func, select

from learnagg.adapters.store.tables import user_enrolments as enrolments
from learnagg.adapters.store.tables import users
from learnagg.batch.progress_exhaust import BatchInfo, eligible_filters
from learnagg.batch.spark.session import sql_text


def slice_bounds(conn: Connection, info: BatchInfo, channel: str | None, size: int) -> list[str]:
    """The first User UUID of every slice but the first: every ``size``-th reported learner, in code-point order."""
    e, u = enrolments.c, users.c
    ranked = (
        select(e.userid, func.row_number().over(order_by=e.userid.collate("C")).label("r"))
        .select_from(enrolments.join(users, u.id == e.userid))
        .where(*eligible_filters(info, channel))
        .subquery()
    )
    stmt = select(ranked.c.userid).where(ranked.c.r > 1, (ranked.c.r - 1) % size == 0).order_by(ranked.c.r)
    return list(conn.execute(stmt).scalars())


def slice_predicates(name: str, bounds: list[str]) -> list[str]:
    """One WHERE clause per slice over the user-id column ``name`` of a JDBC query: ``[b_i, b_i+1)``."""
    col = column(name).collate("C")
    if not bounds:
        return ["1 = 1"]
    clauses = [sql_text(col < bounds[0])]
    clauses += [sql_text((col >= lo) & (col < hi)) for lo, hi in itertools.pairwise(bounds)]
    clauses.append(sql_text(col >= bounds[-1]))
    return clauses


class SliceOf:
    """The slice of a user id (a Spark partition function): Python compares strings by code point, as the
    predicates do with ``COLLATE "C"``."""

    def __init__(self, bounds: list[str]) -> None:
        """Slices cut at ``bounds`` (sorted)."""
        self.bounds = bounds

    def __call__(self, key: Any) -> int:
        """The index of the slice holding ``key``."""
        return bisect.bisect_right(self.bounds, key)
