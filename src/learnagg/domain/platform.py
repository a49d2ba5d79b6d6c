"""Pure rules of the minimal platform endpoints: users, batches, enrolments and groups
(docs/reference/data-model.md#enrolment, docs/reference/data-model.md#users-and-groups, docs/api.md#platform-data)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from learnagg.domain.identity import Caller

# --- users (docs/reference/data-model.md#users-and-groups) ------------------------------------------------------------

# API field → `users` column, in the order of the `POST /v1/user/load` request (docs/api.md#platform-data).
USER_FIELDS: dict[str, str] = {
    "firstName": "first_name",
    "lastName": "last_name",
    "rootOrgId": "root_org_id",
    "orgName": "org_name",
    "state": "state",
    "district": "district",
    "block": "block",
    "cluster": "cluster",
    "schoolId": "school_id",
    "schoolName": "school_name",
    "userType": "user_type",
    "userSubType": "user_subtype",
    "board": "board",
    "roles": "roles",
    "status": "status",
    "managedBy": "managed_by",
}
USER_STATUSES = (0, 1, 2)  # inactive, active, deleted


def display_name(first_name: object, last_name: object) -> str:
    """``trim(first_name + " " + last_name)``; null values and the literal ``"null"`` count as empty
    (docs/reference/data-model.md#users-and-groups)."""

    def part(value: object) -> str:
        return value if isinstance(value, str) and value != "null" else ""

    return f"{part(first_name)} {part(last_name)}".strip()


def board_text(board: object) -> str | None:
    """The `users.board` text: a list is kept as a JSON-array string (docs/reference/data-model.md#users-and-groups),
    text as it is."""
    if board is None or isinstance(board, str):
        return board
    return json.dumps(board, ensure_ascii=False)


def user_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`users` column values for the API fields given (unknown keys are ignored)."""
    out = {USER_FIELDS[k]: v for k, v in fields.items() if k in USER_FIELDS}
    if "board" in out:
        out["board"] = board_text(out["board"])
    return out


def user_fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A `users` row as the API shows it: ``id``, the load-request fields, then ``displayName``."""
    out: dict[str, Any] = {"id": row["id"]}
    out.update({api: row[column] for api, column in USER_FIELDS.items()})
    out["displayName"] = display_name(row["first_name"], row["last_name"])
    return out


def acts_as(caller: Caller, user_id: str) -> bool:
    """Whether ``user_id`` is the caller or the managed user the caller acts for (no admin right needed)."""
    return user_id in (caller.user_id, caller.subject)


def default_user(caller: Caller, user_id: str | None) -> str:
    """The user a request is about: ``user_id``, or the caller's subject when it is blank
    (docs/reference/data-model.md#c8, docs/api.md#platform-data)."""
    return user_id if user_id is not None and user_id.strip() else caller.subject


# --- batches (docs/reference/data-model.md#enrolment) -----------------------------------------------------------------

BATCH_UPCOMING, BATCH_ONGOING, BATCH_ENDED = 0, 1, 2
BATCH_STATUSES = (BATCH_UPCOMING, BATCH_ONGOING, BATCH_ENDED)
ENROLLMENT_TYPES = ("open", "invite-only")


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A batch to create (`POST /v1/course/batch/create`); dates are calendar days in setting `timezone`."""

    course_id: str
    batch_id: str | None  # None: a new uuid4
    name: str
    start_date: date
    end_date: date | None = None
    enrollment_end_date: date | None = None
    enrollment_type: str = "open"
    status: int | None = None
    description: str | None = None
    cert_templates: dict[str, dict[str, str]] | None = None
    created_for: list[str] | None = None
    mentors: list[str] | None = None


def default_batch_status(start: date, end: date | None, today: date) -> int:
    """docs/api.md#platform-data: 0 if the start is after today, 2 if the end is before today, otherwise 1."""
    if start > today:
        return BATCH_UPCOMING
    if end is not None and end < today:
        return BATCH_ENDED
    return BATCH_ONGOING


def batch_dates_refusal(start: date | None, end: date | None, enrollment_end: date | None) -> tuple[str, str] | None:
    """``(parameter, value)`` of a date out of order, or None: the end is not before the start, and the
    enrolment ends between the start and the end (the reference's batch date rules)."""
    if start is not None and end is not None and end < start:
        return "endDate", end.isoformat()
    if enrollment_end is not None and (
        (start is not None and enrollment_end < start) or (end is not None and enrollment_end > end)
    ):
        return "enrollmentEndDate", enrollment_end.isoformat()
    return None


def template_text(value: object) -> str:
    """A certificate-template field as text (docs/reference/data-model.md#enrolment: every field is text; objects and
    arrays become JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def cert_templates(templates: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, str]] | None:
    """``cert_templates`` keyed by template identifier, every field text (docs/reference/data-model.md#enrolment)."""
    if templates is None:
        return None
    return {key: {k: template_text(v) for k, v in fields.items()} for key, fields in templates.items()}


# --- enrolments (docs/api.md#platform-data) ---------------------------------------------------------------------------

ENROLMENT_COMPLETED = 2
ENROLMENT_STATUSES = (0, 1, 2)


@dataclass(frozen=True, slots=True)
class EnrolmentRecord:
    """An enrolment as `learnagg load enrolments` writes it (existing data: no enrolment rules apply)."""

    user_id: str
    course_id: str
    batch_id: str
    status: int = 0
    progress: int = 0
    enrolled_date: int | None = None
    completed_on: int | None = None


def batch_has_ended(status: int | None, end_date: date | None, today: date) -> bool:
    """Status 2, or an end date before today (the end day itself still counts, as in the reference)."""
    return status == BATCH_ENDED or (end_date is not None and end_date < today)


def enrol_refusal(
    *,
    status: int | None,
    end_date: date | None,
    enrollment_end_date: date | None,
    enrolment_active: bool | None,
    today: date,
) -> str | None:
    """The error code refusing an enrolment, checked in the reference's order, or None (docs/api.md#platform-data).

    Args:
        status: the batch status.
        end_date: the batch end day.
        enrollment_end_date: the last day of enrolment.
        enrolment_active: the existing row's `active` (None when there is no row).
        today: today in setting `timezone`.
    """
    if batch_has_ended(status, end_date, today):
        return "BATCH_ENDED"
    if enrollment_end_date is not None and enrollment_end_date < today:
        return "ENROLLMENT_ENDED"
    if enrolment_active:
        return "USER_ALREADY_ENROLLED_COURSE"
    return None


def unenrol_refusal(
    *,
    status: int | None,
    end_date: date | None,
    enrolment_active: bool | None,
    enrolment_status: int | None,
    today: date,
) -> str | None:
    """The error code refusing an unenrolment, or None; the reference checks the batch before the row
    (docs/api.md#platform-data)."""
    if batch_has_ended(status, end_date, today):
        return "BATCH_ENDED"
    if not enrolment_active:
        return "USER_NOT_ENROLLED_COURSE"
    if enrolment_status == ENROLMENT_COMPLETED:
        return "USER_ALREADY_COMPLETED_COURSE"
    return None


# --- groups (docs/reference/data-model.md#users-and-groups) -----------------------------------------------------------

ROLE_ADMIN, ROLE_MEMBER = "admin", "member"
MEMBER_ROLES = (ROLE_ADMIN, ROLE_MEMBER)
# `invited`: added by someone else, waiting for the member's consent (docs/threat-model.md); not an active member.
ACTIVE, INACTIVE, INVITED = "active", "inactive", "invited"
MEMBER_STATUSES = (ACTIVE, INACTIVE, INVITED)
HELD = (ACTIVE, INVITED)  # a membership that edits and removals apply to
CONSENT_STATUSES = (ACTIVE, INACTIVE)  # what members may set on their own membership: accept, or leave
READ_FIELDS = ("members", "activities")


@dataclass(frozen=True, slots=True)
class NewMember:
    """A member of a group being created or loaded."""

    user_id: str
    role: str = ROLE_MEMBER
    status: str = ACTIVE


@dataclass(frozen=True, slots=True)
class NewGroup:
    """A group to create (`POST /v1/group/create`, or a line of `learnagg load groups`)."""

    group_id: str
    name: str
    created_by: str | None
    description: str | None = None
    activities: list[dict[str, str]] = field(default_factory=list)
    members: list[NewMember] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GroupChanges:
    """What `PATCH /v1/group/update` changes; None and empty lists change nothing."""

    name: str | None = None
    description: str | None = None
    add: list[NewMember] = field(default_factory=list)
    edit: list[NewMember] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    add_activities: list[dict[str, str]] = field(default_factory=list)
    remove_activities: list[str] = field(default_factory=list)

    @property
    def members_changed(self) -> bool:
        """Whether any member is added, edited or removed."""
        return bool(self.add or self.edit or self.remove)

    @property
    def activities_changed(self) -> bool:
        """Whether any activity is added or removed."""
        return bool(self.add_activities or self.remove_activities)


def joining_status(current: str | None, *, invite: bool) -> str:
    """The status of a membership that an ``add`` creates or renews (group member consent).

    Args:
        current: the stored status, None for a new member.
        invite: whether the member must consent: the adder is neither the member nor a platform admin, and
            setting `groups.member_consent` is on.

    Returns:
        ``active`` when no consent is needed or the member is already active, otherwise ``invited`` (a removed
        member added again is invited again).
    """
    return ACTIVE if not invite or current == ACTIVE else INVITED


def apply_member_changes(
    current: Mapping[str, tuple[str, str]],
    changes: GroupChanges,
    *,
    invite: bool = False,
    present: Collection[str] = (),
) -> dict[str, tuple[str, str]]:
    """The (role, status) of every member the changes touch, after ``add``, then ``edit``, then ``remove``.

    ``add`` inserts or reactivates with the new role (see :func:`joining_status`); ``edit`` changes the role of an
    active or invited member and keeps its status; ``remove`` makes an active or invited member inactive. Edits and
    removals of users who hold no membership change nothing.

    Args:
        current: (role, status) of the stored members the request names.
        changes: the requested changes.
        invite: members added by this request must consent (the caller is not a platform admin, consent is on).
        present: users whose consent the request itself carries (the caller and the user they act for).
    """
    state = dict(current)
    touched: dict[str, tuple[str, str]] = {}
    for m in changes.add:
        status = joining_status(state.get(m.user_id, ("", INACTIVE))[1], invite=invite and m.user_id not in present)
        state[m.user_id] = touched[m.user_id] = (m.role, status)
    for m in changes.edit:
        status = state.get(m.user_id, ("", INACTIVE))[1]
        if status in HELD:
            state[m.user_id] = touched[m.user_id] = (m.role, status)
    for user_id in changes.remove:
        role, status = state.get(user_id, ("", INACTIVE))
        if status in HELD:
            state[user_id] = touched[user_id] = (role, INACTIVE)
    return touched


def consent_status(current: str | None, wanted: str) -> str | None:
    """The status after members set their own membership to ``wanted`` (accept or leave), or None when refused.

    An invitation is accepted (``active``) or declined (``inactive``); an active member may leave. A member who was
    removed, or who left, needs a new invitation: accepting is refused, as it is without a membership. Setting the
    status a membership already has changes nothing.

    Args:
        current: the stored status, None without a membership row.
        wanted: ``active`` or ``inactive``.
    """
    if current is None or (wanted == ACTIVE and current not in HELD):
        return None
    return wanted if current in HELD else current


def group_members(group: NewGroup) -> list[NewMember]:
    """The members to store, sorted by user: one per user (the later entry wins), and the creator, unless listed,
    an active admin."""
    by_user = {m.user_id: m for m in group.members}
    if group.created_by is not None:
        by_user.setdefault(group.created_by, NewMember(group.created_by, ROLE_ADMIN, ACTIVE))
    return [by_user[u] for u in sorted(by_user)]


def activity(item: Mapping[str, Any]) -> dict[str, str]:
    """An activity as stored: ``{id, type}`` (docs/reference/data-model.md)."""
    return {"id": item["id"], "type": item["type"]}


def unique_activities(items: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Activities in the order given, one per id (the first occurrence wins)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        out.setdefault(item["id"], activity(item))
    return list(out.values())


def patch_activities(
    current: Iterable[Mapping[str, Any]] | None, add: Iterable[Mapping[str, Any]], remove: Iterable[str]
) -> list[dict[str, Any]]:
    """The ordered activity list after ``add`` (appended, or re-typed in place when present) and ``remove``."""
    out: dict[str, dict[str, Any]] = {}
    for item in current or ():
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            out[item["id"]] = {"id": item["id"], "type": item.get("type")}
    for item in add:
        out[item["id"]] = activity(item)
    for activity_id in remove:
        out.pop(activity_id, None)
    return list(out.values())


def read_parts(fields: str | None) -> frozenset[str]:
    """The optional parts of a group read: both when ``fields`` is absent, else those it names (comma list)."""
    if fields is None:
        return frozenset(READ_FIELDS)
    return frozenset(f.strip() for f in fields.split(",")) & frozenset(READ_FIELDS)
