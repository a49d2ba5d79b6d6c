"""Result models of the platform routes (users, courses, batches, enrolments, groups) and of the exhaust API.

Like `results.py`, they describe answers in the OpenAPI document and never change one. Timestamps are epoch ms.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Success(BaseModel):
    """A write that has no other result."""

    response: str = Field(examples=["SUCCESS"])


# --- users --------------------------------------------------------------------------------------------------------


class UsersLoadResult(BaseModel):
    """``POST /v1/user/load``: the number of users written."""

    count: int


class UserResult(BaseModel):
    """``GET /v1/user/read/{userId}``: the user's fields as loaded, plus ``displayName``."""

    id: str
    firstName: str | None
    lastName: str | None
    rootOrgId: str | None
    orgName: str | None
    state: str | None
    district: str | None
    block: str | None
    cluster: str | None
    schoolId: str | None
    schoolName: str | None
    userType: str | None
    userSubType: str | None
    board: str | list[str] | None
    roles: list[str] | None
    status: int | None
    managedBy: str | None
    displayName: str


# --- courses and batches ------------------------------------------------------------------------------------------


class HierarchyLoadResult(BaseModel):
    """``POST /v1/course/hierarchy/load``."""

    courseId: str
    leafNodesCount: int


class HierarchyResult(BaseModel):
    """A course hierarchy as loaded."""

    courseId: str
    name: str | None
    status: str | None
    channel: str | None
    leafNodesCount: int | None
    updatedOn: int | None
    hierarchy: dict[str, Any] | None


class BatchCreateResult(BaseModel):
    """``POST /v1/course/batch/create``."""

    batchId: str


class BatchResult(BaseModel):
    """``GET /v1/course/batch/read/{batchId}``; dates are ``yyyy-MM-dd``."""

    batchId: str
    courseId: str
    name: str | None
    description: str | None
    status: int | None
    enrollmentType: str | None
    startDate: str | None
    endDate: str | None
    enrollmentEndDate: str | None
    createdBy: str | None
    createdDate: int | None
    updatedDate: int | None
    createdFor: list[str] | None
    mentors: list[str] | None
    certTemplates: dict[str, Any] | None


class Enrolment(BaseModel):
    """One enrolment of a learner."""

    userId: str
    courseId: str
    batchId: str
    active: bool
    status: int | None
    progress: int | None
    enrolledDate: int | None
    completedOn: int | None
    addedBy: str | None
    lastReadContentId: str | None
    lastReadContentStatus: int | None
    lastContentAccessTime: int | None
    certStatus: int | None
    contentStatus: dict[str, Any]
    issuedCertificates: list[Any]


class EnrolmentListResult(BaseModel):
    """``POST /v1/course/enrolment/list``: active enrolments sorted by (courseId, batchId)."""

    courses: list[Enrolment]


# --- groups -------------------------------------------------------------------------------------------------------


class GroupCreateResult(BaseModel):
    """``POST /v1/group/create``."""

    groupId: str


class GroupMember(BaseModel):
    """A member of a group."""

    userId: str
    name: str = Field(description='The display name, or "".')
    role: str | None
    status: str | None
    createdBy: str | None
    createdOn: int | None
    updatedOn: int | None


class GroupResult(BaseModel):
    """``GET /v1/group/read/{groupId}``; ``activities`` and ``members`` as ``fields`` asks."""

    id: str
    name: str | None
    description: str | None
    status: str | None
    createdBy: str | None
    createdOn: int | None
    updatedOn: int | None
    activities: list[Any] | None = None
    members: list[GroupMember] | None = None


class GroupSummary(BaseModel):
    """A group of a user, with the user's role in it."""

    id: str
    name: str | None
    description: str | None
    status: str | None
    memberRole: str | None
    createdBy: str | None
    createdOn: int | None
    updatedOn: int | None
    activities: list[Any]


class GroupListResult(BaseModel):
    """``POST /v1/group/list``."""

    group: list[GroupSummary]


class GroupActivitiesResult(BaseModel):
    """``GET /v1/group/activities/{groupId}``: the activities ``{id, type}`` in order."""

    groupId: str
    activities: list[Any]


# --- exhaust (analytics envelope) ---------------------------------------------------------------------------------


class AnalyticsParams(BaseModel):
    """``params`` of the analytics envelope: ``status`` ``successful`` or ``failed``."""

    resmsgid: str
    msgid: str | None
    status: str = Field(examples=["successful"])
    err: str | None
    errmsg: str | None


class JobStats(BaseModel):
    """Times of a request; ``dtJobCompleted`` and ``executionTime`` once it has finished."""

    dtJobSubmitted: int | None
    dtJobCompleted: int | None = None
    executionTime: int | None = None


class ExhaustJob(BaseModel):
    """An exhaust request; ``downloadUrls`` (signed, time-limited links) and ``expiresAt`` once finished."""

    requestId: str
    tag: str
    dataset: str
    requestedBy: str | None
    requestedChannel: str | None
    status: str
    lastUpdated: int | None
    datasetConfig: dict[str, Any] | None
    attempts: int
    jobStats: JobStats
    downloadUrls: list[str] | None = None
    expiresAt: int | None = None
    statusMessage: str


class ExhaustJobList(BaseModel):
    """The requests of a tag, newest submission first."""

    count: int
    jobs: list[ExhaustJob]


class NoResult(BaseModel):
    """The empty ``result`` of a refusal (or of a read that found no request)."""


class AnalyticsEnvelope(BaseModel):
    """The analytics envelope: ``ver`` ``1.0``, ``ts`` ``yyyy-MM-dd'T'HH:mm:ss.SSS±hh:mm``."""

    id: str = Field(examples=["ekstep.analytics.dataset.request.submit"])
    ver: str = Field(examples=["1.0"])
    ts: str
    params: AnalyticsParams
    responseCode: str


class ExhaustJobEnvelope(AnalyticsEnvelope):
    """A submitted request."""

    result: ExhaustJob


class ExhaustReadEnvelope(AnalyticsEnvelope):
    """A request, or ``{}`` with params status ``failed`` when none matches the tag and requestId."""

    result: ExhaustJob | NoResult


class ExhaustListEnvelope(AnalyticsEnvelope):
    """The requests of a tag."""

    result: ExhaustJobList


class AnalyticsErrorEnvelope(AnalyticsEnvelope):
    """A refusal: params status ``failed``, ``errmsg`` the reason."""

    result: NoResult
