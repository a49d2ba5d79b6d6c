"""Request models of the minimal platform endpoints (SPEC §5.9), shared with `learnagg load …` lines."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, ClassVar

from learnagg.domain.dates import parse_date
from learnagg.domain.platform import (
    BATCH_STATUSES,
    ENROLLMENT_TYPES,
    ENROLMENT_STATUSES,
    MEMBER_ROLES,
    MEMBER_STATUSES,
    USER_STATUSES,
    EnrolmentRecord,
    GroupChanges,
    NewBatch,
    NewGroup,
    NewMember,
    unique_activities,
)
from learnagg.entrypoints.api.checks_platform import (
    day,
    int_range,
    map_of_maps,
    not_blank_if_given,
    one_of,
    text_or_text_list,
)
from learnagg.entrypoints.api.validation import Check, RequestModel, each, list_of, required, typed

_INT32_MAX = 2**31 - 1
_MS_MAX = 253_402_300_799_999  # 9999-12-31 23:59:59.999 UTC: beyond it no date can be formatted


def _parsed(text: str | None) -> date | None:
    return None if text is None else parse_date(text)


# --- users --------------------------------------------------------------------------------------------------------

_USER_TEXT = (
    "firstName",
    "lastName",
    "rootOrgId",
    "orgName",
    "state",
    "district",
    "block",
    "cluster",
    "schoolId",
    "schoolName",
    "userType",
    "userSubType",
)
_USER_CHECKS: tuple[Check, ...] = (
    *(typed(n, str) for n in _USER_TEXT),
    text_or_text_list("board"),
    list_of("roles", str),
    typed("status", int),
    one_of("status", USER_STATUSES),
    typed("managedBy", str),
)


class UserFields(RequestModel):
    """The user fields of `POST /v1/user/load` (SPEC §5.9), every one optional."""

    firstName: str | None = None
    lastName: str | None = None
    rootOrgId: str | None = None
    orgName: str | None = None
    state: str | None = None
    district: str | None = None
    block: str | None = None
    cluster: str | None = None
    schoolId: str | None = None
    schoolName: str | None = None
    userType: str | None = None
    userSubType: str | None = None
    board: str | list[str] | None = None
    roles: list[str] | None = None
    status: int | None = None
    managedBy: str | None = None

    def given(self) -> dict[str, Any]:
        """The fields the request named (null included), by API name."""
        return self.model_dump(exclude_unset=True, exclude={"id", "userId"})


class UserIn(UserFields):
    """One user of `POST /v1/user/load` (or one line of `learnagg load users`)."""

    CHECKS: ClassVar[tuple[Check, ...]] = (required("id"), *_USER_CHECKS)
    id: str

    def record(self) -> dict[str, Any]:
        """The user as the service takes it: ``id`` and the given fields."""
        return {"id": self.id, **self.given()}


class UsersLoad(RequestModel):
    """`POST /v1/user/load` ``{users: [...]}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (required("users", kind=list), each("users", UserIn.CHECKS))
    users: list[UserIn]


class UserUpdate(UserFields):
    """`PATCH /v1/user/update` ``{userId, <fields to set>}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (required("userId", "USERID_MISSING"), *_USER_CHECKS)
    userId: str


# --- courses and batches ------------------------------------------------------------------------------------------


class HierarchyLoad(RequestModel):
    """`POST /v1/course/hierarchy/load` ``{hierarchy: {...}}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (required("hierarchy", kind=dict),)
    hierarchy: dict[str, Any]


_BATCH_FIELD_CHECKS: tuple[Check, ...] = (
    typed("description", str),
    typed("status", int),
    one_of("status", BATCH_STATUSES),
    day("endDate"),
    day("enrollmentEndDate"),
    map_of_maps("certTemplates"),
)


class BatchCreate(RequestModel):
    """`POST /v1/course/batch/create` (or one line of `learnagg load batches`); dates are ``yyyy-MM-dd``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("courseId", "COURSE_ID_REQUIRED_ERROR"),
        typed("batchId", str),
        required("name"),
        required("startDate"),
        day("startDate"),
        *_BATCH_FIELD_CHECKS,
        typed("enrollmentType", str),
        one_of("enrollmentType", ENROLLMENT_TYPES),
        list_of("createdFor", str),
        list_of("mentors", str),
    )
    courseId: str
    batchId: str | None = None
    name: str
    description: str | None = None
    startDate: str
    endDate: str | None = None
    enrollmentEndDate: str | None = None
    enrollmentType: str | None = None
    status: int | None = None
    certTemplates: dict[str, dict[str, Any]] | None = None
    createdFor: list[str] | None = None
    mentors: list[str] | None = None

    def to_batch(self) -> NewBatch:
        """The batch as the service takes it (a blank batchId means a new uuid4)."""
        start = parse_date(self.startDate)
        assert start is not None  # checked by `day("startDate")`
        return NewBatch(
            course_id=self.courseId,
            batch_id=self.batchId if self.batchId and self.batchId.strip() else None,
            name=self.name,
            start_date=start,
            end_date=_parsed(self.endDate),
            enrollment_end_date=_parsed(self.enrollmentEndDate),
            enrollment_type=self.enrollmentType or "open",
            status=self.status,
            description=self.description,
            cert_templates=self.certTemplates,
            created_for=self.createdFor,
            mentors=self.mentors,
        )


class BatchUpdate(RequestModel):
    """`PATCH /v1/course/batch/update` ``{courseId, batchId, name?, description?, status?, endDate?, …}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("courseId", "COURSE_ID_REQUIRED_ERROR"),
        required("batchId", "COURSE_BATCH_ID_MISSING"),
        typed("name", str),
        not_blank_if_given("name"),
        *_BATCH_FIELD_CHECKS,
    )
    courseId: str
    batchId: str
    name: str | None = None
    description: str | None = None
    status: int | None = None
    endDate: str | None = None
    enrollmentEndDate: str | None = None
    certTemplates: dict[str, dict[str, Any]] | None = None

    def changes(self) -> dict[str, Any]:
        """The given fields by API name; dates parsed; a null name or status changes nothing."""
        out = self.model_dump(exclude_unset=True, exclude={"courseId", "batchId"})
        for name in ("name", "status"):
            if out.get(name, 0) is None:
                del out[name]
        for name in ("endDate", "enrollmentEndDate"):
            if name in out:
                out[name] = _parsed(out[name])
        return out


# --- enrolments ---------------------------------------------------------------------------------------------------


class EnrolRequest(RequestModel):
    """`POST /v1/course/enrol` and `/unenrol` ``{courseId, batchId, userId?}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("courseId", "COURSE_ID_REQUIRED_ERROR"),
        required("batchId", "COURSE_BATCH_ID_MISSING"),
        typed("userId", str),
    )
    courseId: str
    batchId: str
    userId: str | None = None


class EnrolmentList(RequestModel):
    """`POST /v1/course/enrolment/list` ``{userId?}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (typed("userId", str),)
    userId: str | None = None


class EnrolmentLoad(RequestModel):
    """One line of `learnagg load enrolments` (existing data: timestamps are epoch ms)."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("userId", "USERID_MISSING"),
        required("courseId", "COURSE_ID_REQUIRED_ERROR"),
        required("batchId", "COURSE_BATCH_ID_MISSING"),
        int_range("status", min(ENROLMENT_STATUSES), max(ENROLMENT_STATUSES)),
        int_range("progress", 0, _INT32_MAX),
        int_range("enrolledDate", 0, _MS_MAX),
        int_range("completedOn", 0, _MS_MAX),
    )
    userId: str
    courseId: str
    batchId: str
    status: int | None = None
    progress: int | None = None
    enrolledDate: int | None = None
    completedOn: int | None = None

    def record(self) -> EnrolmentRecord:
        """The enrolment as the service takes it."""
        return EnrolmentRecord(
            user_id=self.userId,
            course_id=self.courseId,
            batch_id=self.batchId,
            status=self.status or 0,
            progress=self.progress or 0,
            enrolled_date=self.enrolledDate,
            completed_on=self.completedOn,
        )


# --- groups -------------------------------------------------------------------------------------------------------


class MemberIn(RequestModel):
    """A member ``{userId, role}``; role ``admin`` or ``member`` (default ``member``)."""

    CHECKS: ClassVar[tuple[Check, ...]] = (required("userId"), typed("role", str), one_of("role", MEMBER_ROLES))
    userId: str
    role: str | None = None

    def member(self) -> NewMember:
        """The member as the service takes it."""
        return NewMember(self.userId, self.role or "member")


class MemberLoad(MemberIn):
    """A member of a `learnagg load groups` line: also ``status`` (``active`` or ``inactive``)."""

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

    def lists(self) -> dict[str, list[Any]]:
        """Every list of the request by name, for the list-length limit."""
        m = self.members or MemberChanges()
        a = self.activities or ActivityChanges()
        return {
            "members.add": m.add or [],
            "members.edit": m.edit or [],
            "members.remove": m.remove or [],
            "activities.add": a.add or [],
            "activities.remove": a.remove or [],
        }


class GroupFilters(RequestModel):
    """``filters`` of a group list: ``{userId?}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (typed("userId", str),)
    userId: str | None = None


class GroupList(RequestModel):
    """`POST /v1/group/list` ``{filters: {userId}}``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (typed("filters", dict),)
    filters: GroupFilters | None = None
