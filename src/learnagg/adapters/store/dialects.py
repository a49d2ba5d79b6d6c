"""The two database dialects: every SQL difference between SQLite and PostgreSQL lives here (ARCHITECTURE)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, case, func, literal, select, text
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB


def _lock_id(*parts: str) -> int:
    """A stable signed 64-bit id for an advisory lock, derived from the given strings."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Dialect:
    """Base: upserts and JSON map patches; subclasses supply the dialect's insert and merge."""

    name = "base"

    def insert(self, table: Table) -> Any:
        """An INSERT that supports ``on_conflict_do_update``."""
        raise NotImplementedError

    def map_merge(self, current: ColumnElement[Any], patch: ColumnElement[Any]) -> ColumnElement[Any]:
        """``current + patch`` for JSON maps, a null current counting as ``{}`` (docs/reference/data-model.md#d2)."""
        raise NotImplementedError

    def upsert(
        self,
        table: Table,
        *,
        replace: Sequence[str] = (),
        patch_maps: Sequence[str] = (),
        keep: Sequence[str] = (),
    ) -> Any:
        """An INSERT … ON CONFLICT DO UPDATE for executemany.

        Args:
            table: the target table; its primary key is the conflict target.
            replace: columns overwritten with the new value.
            patch_maps: JSON map columns merged key by key (docs/reference/data-model.md#d2); other keys survive.
            keep: columns listed only to document that an existing value is kept (e.g. created_on).
        """
        del keep
        stmt = self.insert(table)
        updates: dict[str, Any] = {c: stmt.excluded[c] for c in replace}
        for c in patch_maps:
            updates[c] = self.map_merge(table.c[c], stmt.excluded[c])
        keys = [c.name for c in table.primary_key.columns]
        if not updates:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        return stmt.on_conflict_do_update(index_elements=keys, set_=updates)

    def lock_topic(self, conn: Connection, topic: str) -> None:
        """Serialise producers of one topic until commit, so append order equals commit order."""

    def lock_learners(self, conn: Connection, learners: Iterable[tuple[str, str, str]]) -> None:
        """The learner lock of docs/reference/data-model.md#d3 for (course_id, batch_id, user_id) keys, held until the
        transaction ends."""

    def lock_for_update(self, stmt: Any) -> Any:
        """Add a row lock to a SELECT where the database has one."""
        return stmt


class SqliteDialect(Dialect):
    """SQLite: one writer at a time (BEGIN IMMEDIATE), so locks are implicit; maps merged with json_patch."""

    name = "sqlite"

    def insert(self, table: Table) -> Any:
        """SQLite INSERT with ON CONFLICT support."""
        return sqlite.insert(table)

    def map_merge(self, current: ColumnElement[Any], patch: ColumnElement[Any]) -> ColumnElement[Any]:
        """json_patch keeps number text as written, so doubles round-trip (docs/reference/data-model.md#d1)."""
        return func.json_patch(func.coalesce(current, literal("{}")), patch)


class PostgresDialect(Dialect):
    """PostgreSQL: JSONB concatenation in one upsert; advisory transaction locks for ordering and D3."""

    name = "postgresql"

    def insert(self, table: Table) -> Any:
        """PostgreSQL INSERT with ON CONFLICT support."""
        return pg.insert(table)

    def map_merge(self, current: ColumnElement[Any], patch: ColumnElement[Any]) -> ColumnElement[Any]:
        """``current || patch`` under the row lock the upsert takes (atomic); anything but an object counts as ``{}``.

        A SQL NULL and a stored JSON ``null`` (or any non-object) both count as empty: ``'null' || patch`` would
        make an array, not a map.
        """
        base = case((func.jsonb_typeof(current) == "object", current), else_=text("'{}'::jsonb"))
        return base.op("||", return_type=JSONB)(patch)

    def lock_topic(self, conn: Connection, topic: str) -> None:
        """Sequence values are handed out at insert, not commit: without this lock a consumer could read
        seq 11 before seq 10 commits and skip 10 forever (ARCHITECTURE "Known pitfalls")."""
        conn.execute(select(func.pg_advisory_xact_lock(_lock_id("event_log", topic))))

    def lock_learners(self, conn: Connection, learners: Iterable[tuple[str, str, str]]) -> None:
        """docs/reference/data-model.md#d3 across processes: jobs and batch migrations writing one learner's scores
        queue here.

        All locks of a batch are taken in one statement, in ascending id order so two batches never deadlock.
        """
        ids = sorted({_lock_id("learner", *learner) for learner in learners})
        if ids:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ids AS bigint[])) AS k ORDER BY k"),
                {"ids": ids},
            )

    def lock_for_update(self, stmt: Any) -> Any:
        """SELECT … FOR UPDATE."""
        return stmt.with_for_update()


def dialect_for(backend: str) -> Dialect:
    """The dialect class for a SQLAlchemy backend name."""
    if backend == "sqlite":
        return SqliteDialect()
    if backend == "postgresql":
        return PostgresDialect()
    raise ValueError(f"unsupported database backend {backend!r}")
