"""Groups: create, read, update, list, activities and member consent (docs/reference/data-model.md#users-and-groups,
docs/api.md#platform-data; docs/threat-model.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import group_member, groups, users
from learnagg.app import App
from learnagg.domain.identity import Caller
from learnagg.domain.platform import (
    ACTIVE,
    HELD,
    INACTIVE,
    ROLE_ADMIN,
    GroupChanges,
    NewGroup,
    NewMember,
    acts_as,
    apply_member_changes,
    consent_status,
    default_user,
    display_name,
    group_members,
    joining_status,
    patch_activities,
    unique_activities,
)
from learnagg.errors import api_error
from learnagg.services.identity import is_platform_admin

gm = group_member

_GROUP_COLUMNS = ["name", "description", "status", "created_by", "updated_on", "activities"]
_MEMBER_COLUMNS = ["role", "status", "updated_by", "updated_on", "removed_by", "removed_on"]


def on_membership_changed(app: App, group_id: str) -> None:
    """Called after a group's members or activities change (committed): drop its cached aggregates
    (docs/api.md#group-aggregates)."""
    app.cache.invalidate_groups([group_id])


def insert_groups(
    conn: Connection, dialect: Dialect, new: Sequence[NewGroup], now: int, *, replace: bool = False
) -> int:
    """Write groups and their members (the creator an active admin) with one executemany per table.

    Args:
        conn: a write transaction.
        dialect: the store dialect.
        new: the groups.
        now: epoch ms of creation.
        replace: upsert (`learnagg load groups`): group fields and listed members are overwritten, others kept.

    Returns:
        The number of distinct groups written.
    """
    group_rows: dict[str, dict[str, Any]] = {}
    member_rows: dict[tuple[str, str], dict[str, Any]] = {}
    for g in new:
        group_rows[g.group_id] = {
            "id": g.group_id,
            "name": g.name,
            "description": g.description,
            "status": ACTIVE,
            "created_by": g.created_by,
            "created_on": now,
            "updated_on": now,
            "activities": g.activities,
        }
        for m in group_members(g):
            member_rows[(g.group_id, m.user_id)] = {
                "group_id": g.group_id,
                "user_id": m.user_id,
                "role": m.role,
                "status": m.status,
                "created_by": g.created_by,
                "created_on": now,
                "updated_by": None,
                "updated_on": now,
                "removed_by": None,
                "removed_on": None,
            }
    if not group_rows:
        return 0
    if replace:
        conn.execute(dialect.upsert(groups, replace=_GROUP_COLUMNS, keep=["created_on"]), list(group_rows.values()))
    else:
        conn.execute(groups.insert(), list(group_rows.values()))
    if member_rows:
        keep = ["created_by", "created_on"]
        stmt = dialect.upsert(gm, replace=_MEMBER_COLUMNS, keep=keep) if replace else gm.insert()
        conn.execute(stmt, list(member_rows.values()))
    return len(group_rows)


def create_group(
    app: App,
    caller: Caller,
    *,
    name: str,
    description: str | None,
    activities: Sequence[Mapping[str, Any]],
    members: Sequence[NewMember],
    now: int,
) -> dict[str, Any]:
    """``POST /v1/group/create``: an active group (new uuid4) with the caller as an active admin
    (docs/api.md#platform-data).

    With `groups.member_consent`, the other members start ``invited`` unless a platform admin creates the group.
    """
    with app.store.write() as conn:
        invite = bool(members) and _invites(conn, app, caller)
        group = NewGroup(
            group_id=str(uuid.uuid4()),
            name=name,
            created_by=caller.subject,
            description=description,
            activities=unique_activities(activities),
            # The creator is an active admin whatever role the request gives them.
            members=[
                NewMember(m.user_id, m.role, joining_status(None, invite=invite and not acts_as(caller, m.user_id)))
                for m in members
                if m.user_id != caller.subject
            ],
        )
        insert_groups(conn, app.store.dialect, [group], now)
    return {"groupId": group.group_id}


def _invites(conn: Connection, app: App, caller: Caller) -> bool:
    """Whether the members this caller adds must consent: consent is on and the caller is not a platform admin."""
    return app.settings.groups.member_consent and not is_platform_admin(conn, caller)


def _group(conn: Connection, group_id: str, *, lock: Dialect | None = None) -> Any:
    stmt = select(groups).where(groups.c.id == group_id)
    row = conn.execute(lock.lock_for_update(stmt) if lock else stmt).mappings().first()
    if row is None:
        raise api_error("GROUP_NOT_FOUND")
    return row


def _require_member(conn: Connection, caller: Caller, group_id: str, *, admin: bool = False) -> None:
    """403 unless the caller is an active member (``admin``: an active group admin) or a platform admin."""
    stmt = select(gm.c.role).where(
        gm.c.group_id == group_id, gm.c.user_id.in_({caller.user_id, caller.subject}), gm.c.status == ACTIVE
    )
    roles = set(conn.execute(stmt).scalars())
    if (ROLE_ADMIN in roles if admin else bool(roles)) or is_platform_admin(conn, caller):
        return
    raise api_error("UNAUTHORIZED_USER")


def read_group(app: App, caller: Caller, group_id: str, parts: frozenset[str]) -> dict[str, Any]:
    """``GET /v1/group/read/{groupId}``: active members and platform admins; only active members are listed,
    and to group admins and platform admins the invited ones too (status ``invited``).

    Args:
        app: the application.
        caller: the caller.
        group_id: the group.
        parts: which of ``members`` and ``activities`` to include.
    """
    stmt = (
        select(gm, users.c.first_name, users.c.last_name)
        .select_from(gm.outerjoin(users, users.c.id == gm.c.user_id))
        .where(gm.c.group_id == group_id, gm.c.status.in_(HELD))
        .order_by(gm.c.user_id)
    )
    with app.store.read() as conn:
        group = _group(conn, group_id)
        held = conn.execute(stmt).mappings().all()
        roles = {m["role"] for m in held if m["status"] == ACTIVE and acts_as(caller, m["user_id"])}
        # Platform admins are checked only when membership does not settle it (one query fewer for members).
        platform_admin = ROLE_ADMIN not in roles and is_platform_admin(conn, caller)
        if not roles and not platform_admin:
            raise api_error("UNAUTHORIZED_USER")
    sees_invited = platform_admin or ROLE_ADMIN in roles
    members = [m for m in held if m["status"] == ACTIVE or sees_invited]
    result: dict[str, Any] = {
        "id": group["id"],
        "name": group["name"],
        "description": group["description"],
        "status": group["status"],
        "createdBy": group["created_by"],
        "createdOn": group["created_on"],
        "updatedOn": group["updated_on"],
    }
    if "activities" in parts:
        result["activities"] = group["activities"] or []
    if "members" in parts:
        result["members"] = [
            {
                "userId": m["user_id"],
                # The displayName rule: "" for a user unknown to `users` or without names, never null
                # (docs/reference/data-model.md#users-and-groups).
                "name": display_name(m["first_name"], m["last_name"]),
                "role": m["role"],
                "status": m["status"],
                "createdBy": m["created_by"],
                "createdOn": m["created_on"],
                "updatedOn": m["updated_on"],
            }
            for m in members
        ]
    return result


def update_group(app: App, caller: Caller, group_id: str, changes: GroupChanges, now: int) -> dict[str, Any]:
    """``PATCH /v1/group/update``: active group admins and platform admins; members, activities, name, description.

    Member changes are applied in the order add, edit, remove and written with one upsert; with
    `groups.member_consent`, members added by a group admin start ``invited``. The group cache hook runs after the
    commit.
    """
    actor = caller.subject
    named = {m.user_id for m in changes.add} | {m.user_id for m in changes.edit} | set(changes.remove)
    with app.store.write() as conn:
        group = _group(conn, group_id, lock=app.store.dialect)
        _require_member(conn, caller, group_id, admin=True)
        stmt = select(gm.c.user_id, gm.c.role, gm.c.status).where(gm.c.group_id == group_id, gm.c.user_id.in_(named))
        current = {r.user_id: (r.role, r.status) for r in conn.execute(stmt)} if named else {}
        invite = bool(changes.add) and _invites(conn, app, caller)
        touched = apply_member_changes(current, changes, invite=invite, present={caller.user_id, caller.subject})
        if touched:
            rows = [
                {
                    "group_id": group_id,
                    "user_id": user_id,
                    "role": role,
                    "status": status,
                    "created_by": actor,
                    "created_on": now,
                    "updated_by": actor,
                    "updated_on": now,
                    # Removal is recorded; reactivation clears it.
                    "removed_by": actor if status == INACTIVE else None,
                    "removed_on": now if status == INACTIVE else None,
                }
                for user_id, (role, status) in sorted(touched.items())
            ]
            upsert = app.store.dialect.upsert(gm, replace=_MEMBER_COLUMNS, keep=["created_by", "created_on"])
            conn.execute(upsert, rows)
        values: dict[str, Any] = {"updated_on": now}
        if changes.name is not None:
            values["name"] = changes.name
        if changes.description is not None:
            values["description"] = changes.description
        if changes.activities_changed:
            values["activities"] = patch_activities(
                group["activities"], changes.add_activities, changes.remove_activities
            )
        conn.execute(groups.update().where(groups.c.id == group_id).values(values))
    if changes.members_changed or changes.activities_changed:
        on_membership_changed(app, group_id)
    return {"response": "SUCCESS"}


def update_membership(app: App, caller: Caller, group_id: str, status: str, now: int) -> dict[str, Any]:
    """``PATCH /v1/group/membership/update``: the caller accepts an invitation (``active``) or leaves (``inactive``).

    Only the caller's own membership (the user they act for, with ``x-authenticated-for``) is changed. A change
    drops the group's cached aggregates after the commit, as a membership change does.

    Raises:
        ApiError: 404 GROUP_NOT_FOUND; 403 UNAUTHORIZED_USER without a membership row, or when a removed member
            (or one who left) tries to accept: they need a new invitation.
    """
    user_id = caller.subject
    stmt = select(gm.c.status).where(gm.c.group_id == group_id, gm.c.user_id == user_id)
    with app.store.write() as conn:
        _group(conn, group_id, lock=app.store.dialect)
        row = conn.execute(stmt).first()
        current = (row.status or "") if row is not None else None  # a row without a status is not held
        new = consent_status(current, status)
        if new is None:
            raise api_error("UNAUTHORIZED_USER")
        changed = new != current
        if changed:
            left = new == INACTIVE
            values = {
                "status": new,
                "updated_by": user_id,
                "updated_on": now,
                "removed_by": user_id if left else None,
                "removed_on": now if left else None,
            }
            conn.execute(gm.update().where(gm.c.group_id == group_id, gm.c.user_id == user_id).values(values))
    if changed:
        on_membership_changed(app, group_id)
    return {"response": "SUCCESS"}


def list_groups(app: App, caller: Caller, user_id: str | None, status: str = ACTIVE) -> dict[str, Any]:
    """``POST /v1/group/list``: the groups where the user is an active member (``status`` ``invited``: the groups
    that invited them), sorted by id (own or admin)."""
    user_id = default_user(caller, user_id)
    stmt = (
        select(groups, gm.c.role)
        .select_from(groups.join(gm, gm.c.group_id == groups.c.id))
        .where(gm.c.user_id == user_id, gm.c.status == status)
        .order_by(groups.c.id)
    )
    with app.store.read() as conn:
        if not acts_as(caller, user_id) and not is_platform_admin(conn, caller):
            raise api_error("UNAUTHORIZED_USER")
        rows = conn.execute(stmt).mappings().all()
    return {
        "group": [
            {
                "id": r["id"],
                "name": r["name"],
                "description": r["description"],
                "status": r["status"],
                "memberRole": r["role"],
                "createdBy": r["created_by"],
                "createdOn": r["created_on"],
                "updatedOn": r["updated_on"],
                "activities": r["activities"] or [],
            }
            for r in rows
        ]
    }


def group_activities(app: App, caller: Caller, group_id: str) -> dict[str, Any]:
    """``GET /v1/group/activities/{groupId}``: active members and platform admins; the ordered activities."""
    with app.store.read() as conn:
        group = _group(conn, group_id)
        _require_member(conn, caller, group_id)
    return {"groupId": group_id, "activities": group["activities"] or []}
