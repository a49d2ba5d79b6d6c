"""Resolving the caller from request headers (docs/api.md#identity)."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select

from learnagg.adapters.store.tables import users
from learnagg.adapters.tokens import TokenKeys
from learnagg.app import App
from learnagg.domain.identity import Caller, user_from_sub
from learnagg.errors import unauthorized


def _token(request: Request) -> str | None:
    token = request.headers.get("x-authenticated-user-token")
    if token:
        return token.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def resolve_caller(request: Request, app: App, keys: TokenKeys) -> Caller:
    """The caller of a request; 401 ``UNAUTHORIZED_USER`` without a valid identity.

    ``x-authenticated-for`` names a managed user: accepted only when that user's ``managed_by`` is the caller
    (403 otherwise), and it becomes ``requestedFor``.
    """
    roles: frozenset[str] = frozenset()
    if app.settings.auth.mode == "trusted-header":
        user = (request.headers.get("x-authenticated-userid") or "").strip() or None
    else:
        token = _token(request)
        claims = keys.verify(token, app.clock()) if token else None
        user = user_from_sub(claims.get("sub")) if claims else None
        # Roles in the token are trusted only when this service signed it (embedded mode); an identity
        # server's users get their roles from the `users` table.
        if claims and keys.embedded and isinstance(claims.get("roles"), list):
            roles = frozenset(r for r in claims["roles"] if isinstance(r, str))
    if not user:
        raise unauthorized(401)
    managed = (request.headers.get("x-authenticated-for") or "").strip()
    if not managed or managed == user:
        return Caller(user, None, roles)
    with app.store.read() as conn:
        parent = conn.execute(select(users.c.managed_by).where(users.c.id == managed)).scalar_one_or_none()
    if parent != user:
        raise unauthorized(403)
    return Caller(user, managed, roles)
