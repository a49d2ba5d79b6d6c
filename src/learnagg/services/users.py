"""Users: bulk load, partial update and read (docs/reference/data-model.md#users-and-groups,
docs/api.md#platform-data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import users
from learnagg.app import App
from learnagg.domain.identity import Caller
from learnagg.domain.platform import USER_FIELDS, acts_as, user_columns, user_fields
from learnagg.errors import api_error
from learnagg.services.identity import is_platform_admin, require_admin

_COLUMNS = list(USER_FIELDS.values())


def upsert_users(conn: Connection, dialect: Dialect, items: Sequence[Mapping[str, Any]]) -> int:
    """Full upsert per user: every column is replaced, absent fields become null (docs/api.md#platform-data).

    Args:
        conn: a write transaction.
        dialect: the store dialect.
        items: users in the API shape (``id``, ``firstName``…); a user given twice: the later one wins.

    Returns:
        The number of distinct users written.
    """
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        row = dict.fromkeys(_COLUMNS)
        row.update(user_columns(item))
        row["id"] = item["id"]
        rows[item["id"]] = row
    if rows:
        conn.execute(dialect.upsert(users, replace=_COLUMNS), list(rows.values()))
    return len(rows)


def load_users(app: App, caller: Caller, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``POST /v1/user/load``: admin only; result ``{"count": n}``."""
    with app.store.write() as conn:
        require_admin(conn, caller)
        return {"count": upsert_users(conn, app.store.dialect, items)}


def update_user(app: App, caller: Caller, user_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``PATCH /v1/user/update``: admin only; sets the given fields (null included), 404 USER_NOT_FOUND."""
    values = user_columns(fields)
    with app.store.write() as conn:
        require_admin(conn, caller)
        if values:
            found = conn.execute(users.update().where(users.c.id == user_id).values(values)).rowcount
        else:  # nothing to set: still 404 for an unknown user
            found = len(conn.execute(select(users.c.id).where(users.c.id == user_id)).all())
        if not found:
            raise api_error("USER_NOT_FOUND")
    return {"response": "SUCCESS"}


def read_user(app: App, caller: Caller, user_id: str) -> dict[str, Any]:
    """``GET /v1/user/read/{userId}``: the user themself (or their manager acting for them) or an admin."""
    with app.store.read() as conn:
        if not acts_as(caller, user_id) and not is_platform_admin(conn, caller):
            raise api_error("UNAUTHORIZED_USER")
        row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
    if row is None:
        raise api_error("USER_NOT_FOUND")
    return user_fields(row)
