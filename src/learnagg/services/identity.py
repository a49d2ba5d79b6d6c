"""Authorisation questions answered from the store: platform admins (docs/api.md#identity)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from learnagg.adapters.store.tables import users
from learnagg.domain.identity import Caller, is_admin
from learnagg.errors import unauthorized


def is_platform_admin(conn: Connection, caller: Caller) -> bool:
    """True when the caller holds ``PLATFORM_ADMIN``: in a token this service signed, or in `users.roles`."""
    if is_admin(caller.token_roles):
        return True
    roles = conn.execute(select(users.c.roles).where(users.c.id == caller.user_id)).scalar_one_or_none()
    return isinstance(roles, list) and is_admin(roles)


def require_admin(conn: Connection, caller: Caller) -> None:
    """403 ``UNAUTHORIZED_USER`` unless the caller is a platform admin."""
    if not is_platform_admin(conn, caller):
        raise unauthorized(403)
