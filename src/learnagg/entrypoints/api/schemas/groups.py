"""Request models of the group endpoints (docs/api.md#platform-data), shared with `learnagg load groups` lines."""

from __future__ import annotations

import uuid
from typing import ClassVar

from learnagg.domain.platform import (
    ACTIVE,
    CONSENT_STATUSES,
    INVITED,
    MEMBER_ROLES,
    MEMBER_STATUSES,
    GroupChanges,
    NewGroup,
    NewMember,
    unique_activities,
)
from learnagg.entrypoints.api.schemas.checks import (
    not_blank_if_given,
    one_of,
)
from learnagg.entrypoints.api.validation import Check, RequestModel, each, list_of, required, typed

LIST_STATUSES = (ACTIVE, INVITED)


class MemberIn(RequestModel):
    """A member ``{userId, role}``; role ``admin`` or ``member`` (default ``member``)."""

    CHECKS: ClassVar[tuple[Check, ...]] = (required("userId"), typed("role", str), one_of("role", MEMBER_ROLES))
    userId: str
    role: str | None = None

    def member(self) -> NewMember:
        """The member as the service takes it."""
        return NewMember(self.userId, self.role or "member")


class MemberLoad(MemberIn):
    """A member of a `learnagg load groups` line: also ``status`` (``active``, ``inactive`` or ``invited``), kept
    as given: the operator's file is trusted, no consent applies."""

    CHECKS: ClassVar[tuple[Check, ...]] = (*MemberIn.CHECKS, typed("status", str), one_of("status", MEMBER_STATUSES))
    status: str | None = None

    def member(self) -> NewMember:
        """The member as the service takes it."""
        return NewMember(self.userId, self.role or "member", self.status or "active")


class ActivityIn(RequestModel):
    """An activity ``{id, type}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("id", "ACTIVITY_ID_MISSING"),
        required("type", "ACTIVITY_TYPE_MISSING"),
    )
    id: str
    type: str

    def activity(self) -> dict[str, str]:
        """The activity as stored."""
        return {"id": self.id, "type": self.type}


_GROUP_CHECKS: tuple[Check, ...] = (required("name"), typed("description", str), each("activities", ActivityIn.CHECKS))


class GroupCreate(RequestModel):
    """`POST /v1/group/create` ``{name, description?, activities?, members?}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (*_GROUP_CHECKS, each("members", MemberIn.CHECKS))
    name: str
    description: str | None = None
    activities: list[ActivityIn] | None = None
    members: list[MemberIn] | None = None


class GroupLoad(GroupCreate):
    """One line of `learnagg load groups`: a group-create request plus ``id``, ``createdBy`` and member status."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        *_GROUP_CHECKS,
        each("members", MemberLoad.CHECKS),
        typed("id", str),
        typed("createdBy", str),
    )
    members: list[MemberLoad] | None = None  # type: ignore[assignment]
    id: str | None = None
    createdBy: str | None = None

    def to_group(self) -> NewGroup:
        """The group as the service takes it: a new uuid4 without ``id``, no creator member without ``createdBy``."""
        return NewGroup(
            group_id=self.id if self.id and self.id.strip() else str(uuid.uuid4()),
            name=self.name,
            created_by=self.createdBy,
            description=self.description,
            activities=unique_activities(a.activity() for a in self.activities or ()),
            members=[m.member() for m in self.members or ()],
        )


class MemberChanges(RequestModel):
    """``members`` of a group update: ``{add: [{userId, role}], edit: [{userId, role}], remove: [userId]}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        each("add", MemberIn.CHECKS),
        each("edit", MemberIn.CHECKS),
        list_of("remove", str),
    )
    add: list[MemberIn] | None = None
    edit: list[MemberIn] | None = None
    remove: list[str] | None = None


class ActivityChanges(RequestModel):
    """``activities`` of a group update: ``{add: [{id, type}], remove: [id]}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (each("add", ActivityIn.CHECKS), list_of("remove", str))
    add: list[ActivityIn] | None = None
    remove: list[str] | None = None


class GroupUpdate(RequestModel):
    """`PATCH /v1/group/update` ``{groupId, name?, description?, members?, activities?}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("groupId", "GROUP_ID_MISSING"),
        typed("name", str),
        not_blank_if_given("name"),
        typed("description", str),
        typed("members", dict),
        typed("activities", dict),
    )
    groupId: str
    name: str | None = None
    description: str | None = None
    members: MemberChanges | None = None
    activities: ActivityChanges | None = None

    def changes(self) -> GroupChanges:
        """The changes as the service takes them."""
        m = self.members or MemberChanges()
        a = self.activities or ActivityChanges()
        return GroupChanges(
            name=self.name,
            description=self.description,
            add=[x.member() for x in m.add or ()],
            edit=[x.member() for x in m.edit or ()],
            remove=list(m.remove or ()),
            add_activities=[x.activity() for x in a.add or ()],
            remove_activities=list(a.remove or ()),
        )


class MembershipUpdate(RequestModel):
    """`PATCH /v1/group/membership/update` ``{groupId, status}``: ``active`` accepts an invitation, ``inactive``
    leaves the group."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("groupId", "GROUP_ID_MISSING"),
        required("status"),
        one_of("status", CONSENT_STATUSES),
    )
    groupId: str
    status: str


class GroupFilters(RequestModel):
    """``filters`` of a group list: ``{userId?, status?}``; status ``active`` (default) or ``invited``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (typed("userId", str), typed("status", str), one_of("status", LIST_STATUSES))
    userId: str | None = None
    status: str | None = None


class GroupList(RequestModel):
    """`POST /v1/group/list` ``{filters: {userId}}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (typed("filters", dict),)
    filters: GroupFilters | None = None
