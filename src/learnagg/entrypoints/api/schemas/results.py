"""Result models of the learner and group aggregate routes: what each route's ``result`` holds (docs/api.md).

They describe answers in the OpenAPI document only: routes render their results themselves, so a model never
changes an answer. A key the service leaves out when it is null is optional here; any other key is required,
and nullable where the store may hold null.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, RootModel


class Metric(BaseModel):
    """One metric: ``value`` is a double (integers for counts), ``lastUpdatedOn`` epoch ms or null."""

    metric: str = Field(examples=["score:do_a1"])
    value: float
    lastUpdatedOn: int | None


# --- group aggregates ---------------------------------------------------------------------------------------------


class BatchMetadata(BaseModel):
    """A batch of the course in which an active member of the group holds an active enrolment."""

    batchId: str
    name: str | None
    status: int | None
    startDate: str | None = Field(description="yyyy-MM-dd, or null.")
    endDate: str | None = Field(description="yyyy-MM-dd, or null when the batch has no end.")


class ActivityMetadata(BaseModel):
    """The course behind an activity; every key is absent (``{}``) for an unknown course."""

    name: str | None = None
    status: str | None = None
    leafNodesCount: int | None = None
    batches: list[BatchMetadata] | None = None


class ActivityAggActivity(BaseModel):
    """The activity asked for, with its ``enrolmentCount`` and metadata."""

    id: str
    type: str
    agg: list[Metric]
    metadata: ActivityMetadata


class MemberAgg(BaseModel):
    """One row of a member: the member's metrics in one batch (``batchId`` null for a member without rows)."""

    userId: str
    name: str = Field(description='The display name, or "".')
    role: str | None
    status: str | None
    createdBy: str | None
    batchId: str | None
    agg: list[Metric]


class ActivityAggResult(BaseModel):
    """``POST /v1/group/activity/agg``: one activity's metrics per member."""

    groupId: str
    activity: ActivityAggActivity
    members: list[MemberAgg]


class GroupActivityAgg(BaseModel):
    """One activity of a group with its summary metrics."""

    id: str
    type: str | None
    name: str | None = Field(description="The course name, null for an unknown course.")
    agg: list[Metric]
    metadata: ActivityMetadata


class ContextMetrics(BaseModel):
    """One context (``cb:<batchId>``) of an activity: enrolledCount, completedCount and completionPercentage."""

    contextId: str
    agg: list[Metric]


class ActivityContexts(BaseModel):
    """The activity asked for and its contexts, sorted (empty for an unknown activity)."""

    id: str
    type: str
    contexts: list[ContextMetrics]


class ActivityMetricsResult(BaseModel):
    """``POST /data/activity/agg``: per-batch metrics of one activity from the `activity_agg` table."""

    activity: ActivityContexts


class GroupAggResult(BaseModel):
    """``POST /v1/group/agg``: summary metrics per activity."""

    groupId: str
    activity: list[GroupActivityAgg]


# --- content state and assessments --------------------------------------------------------------------------------


class BestScore(BaseModel):
    """The best score of a content in the learner's course row."""

    score: float
    maxScore: float | None
    attemptsCount: float | None
    lastUpdatedOn: int | None


class AttemptScore(BaseModel):
    """One attempt of a content, as content state lists it."""

    attemptId: str
    lastAttemptedOn: int | None
    totalMaxScore: float | None
    totalScore: float | None


class ContentItem(BaseModel):
    """One consumed content; keys whose value is null are left out. ``score`` and ``bestScore`` come with
    ``fields: ["score"]``."""

    contentId: str
    courseId: str
    collectionId: str
    batchId: str
    status: int | None = None
    progress: int | None = None
    viewCount: int | None = None
    completedCount: int | None = None
    lastAccessTime: str | None = Field(None, description="`yyyy-MM-dd HH:mm:ss:SSSZ` in setting `timezone`.")
    lastCompletedTime: str | None = None
    lastUpdatedTime: str | None = None
    completionPercentage: float | None = None
    progressdetails: Any = None
    score: list[AttemptScore] | None = None
    bestScore: BestScore | None = None


class ContentStateReadResult(BaseModel):
    """``POST /v1/content/state/read``."""

    contentList: list[ContentItem]


class ContentStateUpdateResult(RootModel[dict[str, str | list[str]]]):
    """``PATCH /v1/content/state/update``: ``SUCCESS`` per written contentId and per batchId of a published
    attempt; ``BATCH_NOT_EXISTS`` and ``NOT_A_ON_GOING_BATCH`` list the refused batch ids."""


class AttemptResult(BaseModel):
    """The outcome of one sent attempt: ``SUBMITTED``, ``BATCH_NOT_EXISTS``, ``NOT_A_ON_GOING_BATCH`` or
    ``INVALID`` (with ``message``); a submitted attempt of ``/v1/assess/submit`` also shows its totals."""

    contentId: str
    attemptId: str
    batchId: str
    status: str = Field(examples=["SUBMITTED"])
    message: str | None = None
    totalScore: float | None = None
    totalMaxScore: float | None = None
    grandTotal: str | None = None


class AssessmentsSendResult(BaseModel):
    """``POST /v1/assess/save`` and ``/v1/assess/submit``."""

    assessments: list[AttemptResult]


class Question(BaseModel):
    """One question of an attempt, as the aggregator stored it."""

    id: Any
    assessTs: Any
    maxScore: Any
    score: Any
    type: Any
    title: Any
    description: Any
    duration: Any
    resvalues: Any
    params: Any


class Attempt(BaseModel):
    """One attempt, newest first; ``questions`` only with ``fields: ["questions"]``."""

    attemptId: str
    lastAttemptedOn: int | None
    totalScore: float | None
    totalMaxScore: float | None
    grandTotal: str | None
    questions: list[Question] | None = None


class ContentAssessments(BaseModel):
    """A content's best score and attempts."""

    contentId: str
    bestScore: BestScore | None
    attempts: list[Attempt]


class AssessmentsReadResult(BaseModel):
    """``POST /v1/assess/read``."""

    assessments: list[ContentAssessments]
