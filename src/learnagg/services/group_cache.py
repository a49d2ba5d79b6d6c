"""Invalidation of the group-aggregate cache (docs/api.md#group-aggregates, docs/jobs/assessment.md#s6): by member, or
by group."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from learnagg.adapters.cache import GroupCache
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import group_member


def invalidate_for_users(store: Store, cache: GroupCache, user_ids: Iterable[str]) -> None:
    """Drop the cached results of every group in which any of the users has a membership row (any status)."""
    if not cache.enabled:
        return
    users = sorted(set(user_ids))
    if not users:
        return
    stmt = select(group_member.c.group_id).where(group_member.c.user_id.in_(users)).distinct()
    with store.read() as conn:
        group_ids = list(conn.execute(stmt).scalars())
    cache.invalidate_groups(group_ids)
