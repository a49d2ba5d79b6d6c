"""Who is calling (docs/api.md#identity): the authenticated user, the managed user acted for, and token roles."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

PLATFORM_ADMIN = "PLATFORM_ADMIN"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller.

    Attributes:
        user_id: the part of the token's ``sub`` after the last ``:`` (or the trusted header).
        requested_for: the managed user named by ``x-authenticated-for``, once accepted.
        token_roles: roles carried by a token this service signed itself (``learnagg token --role admin``).
    """

    user_id: str
    requested_for: str | None = None
    token_roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def subject(self) -> str:
        """The user whose data the request is about: ``requestedFor``, otherwise the caller."""
        return self.requested_for or self.user_id


def user_from_sub(sub: object) -> str | None:
    """The user id in a token subject: the part after the last ``:`` (``f:realm:u-1`` → ``u-1``)."""
    if not isinstance(sub, str):
        return None
    user = sub.rsplit(":", 1)[-1].strip()
    return user or None


def is_admin(roles: Iterable[object] | None) -> bool:
    """Whether a role list holds the platform-admin role."""
    return PLATFORM_ADMIN in set(roles or ())
