"""Request models of the minimal platform endpoints (docs/api.md#platform-data), shared with `learnagg load …` lines."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from learnagg.domain.dates import parse_date
from learnagg.domain.platform import (
    BATCH_STATUSES,
    ENROLLMENT_TYPES,
    ENROLMENT_STATUSES,
    USER_STATUSES,
    EnrolmentRecord,
    NewBatch,
)
from learnagg.entrypoints.api.schemas.checks import (
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
    """The user fields of `POST /v1/user/load` (docs/api.md#platform-data), every one optional."""

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
