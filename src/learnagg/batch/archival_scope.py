"""Which batches an archival run covers (docs/batch.md#assessment-archival parameters), shared by archive and delete
mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from learnagg.adapters.store.tables import archival_metadata, assessment_aggregator, course_batch
from learnagg.errors import InputError

_m = archival_metadata.c
_a = assessment_aggregator.c


@dataclass(frozen=True, slots=True)
class ArchivalScope:
    """Which batches a run covers (docs/batch.md#assessment-archival parameters): ``batchId + collectionId``, a batch
    list, or all."""

    batch_id: str | None = None
    collection_id: str | None = None
    batch_ids: tuple[str, ...] = ()

    def validate(self) -> None:
        """Refuse a half-given or doubly-given scope.

        Raises:
            InputError: with the reason.
        """
        if (self.batch_id is None) != (self.collection_id is None):
            raise InputError("--batch-id and --collection-id go together (or use --batch-ids)")
        if self.batch_id is not None and self.batch_ids:
            raise InputError("give either --batch-id with --collection-id, or --batch-ids, not both")
        if any(not b.strip() for b in (*self.batch_ids, self.batch_id or "x", self.collection_id or "x")):
            raise InputError("batch and collection ids must not be blank")


def resolve_scope(conn: Connection, scope: ArchivalScope) -> list[tuple[str, str]] | None:
    """The (collection_id, batch_id) pairs of a scope; None means every batch.

    A batch is known if `course_batch`, `archival_metadata` or `assessment_aggregator` has it.

    Raises:
        InputError: naming the first unknown batch; nothing has been done.
    """
    scope.validate()
    if scope.batch_id is not None and scope.collection_id is not None:
        pair = (scope.collection_id, scope.batch_id)
        known = (
            conn.execute(
                select(course_batch.c.batchid).where(
                    course_batch.c.courseid == pair[0], course_batch.c.batchid == pair[1]
                )
            ).first()
            or conn.execute(select(_m.request_id).where(_m.collection_id == pair[0], _m.batch_id == pair[1])).first()
            or conn.execute(select(_a.user_id).where(_a.course_id == pair[0], _a.batch_id == pair[1]).limit(1)).first()
        )
        if not known:
            raise InputError(f"unknown batch {pair[1]!r} of collection {pair[0]!r}")
        return [pair]
    if not scope.batch_ids:
        return None
    pairs: set[tuple[str, str]] = set()
    for batch_id in dict.fromkeys(scope.batch_ids):
        found = {
            (c, batch_id)
            for c in conn.execute(select(course_batch.c.courseid).where(course_batch.c.batchid == batch_id)).scalars()
        }
        found |= {
            (c, batch_id)
            for c in conn.execute(select(_m.collection_id).where(_m.batch_id == batch_id).distinct()).scalars()
            if c
        }
        if not found:  # not in course_batch: a scan, only for data imported without its batch
            stmt = select(_a.course_id).where(_a.batch_id == batch_id).distinct()
            found = {(c, batch_id) for c in conn.execute(stmt).scalars()}
        if not found:
            raise InputError(f"unknown batch {batch_id!r}")
        pairs |= found
    return sorted(pairs)


def scope_filter(pairs: list[tuple[str, str]] | None, course_col: Any, batch_col: Any) -> Any:
    """A WHERE clause for (collection, batch) pairs; None (every batch) gives no filter."""
    if pairs is None:
        return None
    return or_(*(and_(course_col == c, batch_col == b) for c, b in pairs))
