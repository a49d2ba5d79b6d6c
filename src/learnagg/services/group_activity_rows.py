"""The reads behind `/v1/group/activity/agg` (docs/api.md#group-aggregates): active members joined with their names and
their `user_activity_agg` rows of one activity, the maps undecoded.

On SQLite the maps come back as their stored JSON text, which is what recognises a row the memo of rendered entries
(:mod:`learnagg.services.agg_fragments`) holds. On PostgreSQL, rendering JSONB as text is the database's largest cost,
so the members query returns the row's ``xmin`` instead (the id of the transaction that wrote this version of the
row: any write gives the row a new one), and the text is read only for the rows the memo does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, Text, and_, bindparam, cast, literal_column, select

from learnagg.adapters.store.scores import COURSE
from learnagg.adapters.store.tables import group_member, user_activity_agg, users
from learnagg.domain.platform import ACTIVE
from learnagg.services.agg_fragments import Fetch

POSTGRESQL = "postgresql"


def _texts() -> tuple[Any, ...]:
    a = user_activity_agg.c
    return cast(a.agg, Text), cast(a.aggregates, Text), cast(a.agg_last_updated, Text)


def _version() -> Any:
    return literal_column(f"{user_activity_agg.name}.xmin::text", Text)


@cache
def members_statement(versions: bool) -> Select[Any]:
    """Active members with their names and their rows of one activity; members without rows come back once.

    Columns: user_id, role, status, created_by, first_name, last_name, context_id, then the three maps' text, or
    with ``versions`` (PostgreSQL only) the row's version.
    """
    m, u, a = group_member.c, users.c, user_activity_agg.c
    rows = and_(a.activity_type == COURSE, a.activity_id == bindparam("activity_id"), a.user_id == m.user_id)
    return (
        select(m.user_id, m.role, m.status, m.created_by, u.first_name, u.last_name)
        .add_columns(a.context_id, *((_version(),) if versions else _texts()))
        .select_from(group_member.outerjoin(users, u.id == m.user_id).outerjoin(user_activity_agg, rows))
        .where(m.group_id == bindparam("group_id"), m.status == ACTIVE)
    )


@cache
def texts_statement() -> Select[Any]:
    """The rows of one activity of some users, with their version and the maps' text (PostgreSQL only)."""
    a = user_activity_agg.c
    return select(a.user_id, a.context_id, _version(), *_texts()).where(
        a.activity_type == COURSE,
        a.activity_id == bindparam("activity_id"),
        a.user_id.in_(bindparam("user_ids", expanding=True)),
    )


def uses_versions(conn: Connection, fields: object) -> bool:
    """Whether the members query returns versions: on PostgreSQL, for answers built from memoised entries."""
    return fields is None and conn.dialect.name == POSTGRESQL


def fetcher(conn: Connection, activity_id: str) -> Fetch:
    """What reads the maps' text of the rows the memo misses, in the request's transaction."""

    def fetch(user_ids: Sequence[str]) -> list[Any]:
        return list(conn.execute(texts_statement(), {"activity_id": activity_id, "user_ids": list(user_ids)}))

    return fetch
