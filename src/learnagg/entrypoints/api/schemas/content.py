"""Request bodies of the content state and assessment APIs, checks in the documented order
(docs/api.md#content-state-and-assessments)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from learnagg.domain.bounds import NUL, NUL_RULE, TIMESTAMP_RULE, invalid_value_text, json_violation, short_text
from learnagg.domain.content_state import bounded_api_time, first_given
from learnagg.entrypoints.api.validation import (
    Check,
    RequestModel,
    each,
    fail,
    is_blank,
    list_of,
    required,
    type_ok,
    typed,
)

COURSE = ("courseId", "collectionId")
BATCH = ("batchId", "contextId")
DATES = ("lastAccessTime", "lastUpdatedTime", "lastCompletedTime")


def _aliased(data: Mapping[str, Any], names: tuple[str, ...], first_of: str | None) -> tuple[str, Any]:
    name, value = first_given(data, names)
    listed = data.get(first_of) if first_of else None
    if value is None and isinstance(listed, list) and listed:
        return first_of or name, listed[0]
    return name, value


def one_of(names: tuple[str, ...], code: str | None = None, *, first_of: str | None = None) -> Check:
    """The first non-blank of ``names`` (aliases), else the first element of the list ``first_of``, is required.

    A missing value raises ``code`` (else MANDATORY_PARAMETER_MISSING for ``names[0]``); a value that is not a
    string raises DATA_TYPE_ERROR naming the field it came from.
    """

    def check(data: dict[str, Any]) -> None:
        name, value = _aliased(data, names, first_of)
        if is_blank(value):
            raise fail(code) if code else fail("MANDATORY_PARAMETER_MISSING", name=names[0])
        if not isinstance(value, str):
            raise fail("DATA_TYPE_ERROR", name=name, type="String")

    return check


def api_dates(*names: str) -> Check:
    """Each present date must be ``yyyy-MM-dd HH:mm:ss:SSSZ`` (DATE_FORMAT_ERRROR,
    docs/api.md#content-state-and-assessments), then within the
    timestamp bounds (INVALID_PARAMETER_VALUE naming the date, docs/threat-model.md)."""

    def check(data: dict[str, Any]) -> None:
        for name in names:
            value = data.get(name)
            if value is None:
                continue
            try:
                parsed = bounded_api_time(value)
            except ValueError:
                raise fail(
                    "INVALID_PARAMETER_VALUE", name=name, value=invalid_value_text(value, TIMESTAMP_RULE)
                ) from None
            if parsed is None:
                raise fail("DATE_FORMAT_ERRROR")

    return check


def within_bounds(data: dict[str, Any]) -> None:
    """Every field of a content item within the input bounds (docs/threat-model.md): no NUL in any text or key,
    nesting at most 64 levels below the item (``progressdetails``), finite numbers (INVALID_PARAMETER_VALUE)."""
    for name, value in data.items():
        rule = NUL_RULE if NUL in name else json_violation(value, level=1)
        if rule is not None:
            raise fail("INVALID_PARAMETER_VALUE", name=short_text(name), value=invalid_value_text(value, rule))


INT32 = (-(2**31), 2**31 - 1)  # the range of the integer columns (`status`, `progress`)


def int32(name: str) -> Check:
    """``name``, when present and not null, must be a JSON integer the integer columns can hold."""

    def check(data: dict[str, Any]) -> None:
        value = data.get(name)
        if value is None:
            return
        if not type_ok(value, int):
            raise fail("DATA_TYPE_ERROR", name=name, type="Integer")
        if not INT32[0] <= value <= INT32[1]:
            raise fail("INVALID_PARAMETER_VALUE", name=name, value=value)

    return check


# docs/api.md#content-state-and-assessments, each content item.
CONTENT_ITEM: tuple[Check, ...] = (
    api_dates(*DATES),
    one_of(COURSE, "COURSE_ID_REQUIRED_ERROR"),
    required("contentId", "CONTENT_ID_REQUIRED_ERROR"),
    required("status", "CONTENT_STATUS_MISSING_ERROR", int),
    int32("status"),
    required("batchId", "COURSE_BATCH_ID_MISSING"),
    typed("userId", str),
    int32("progress"),
    within_bounds,
)


def assessment_item(*, aliases: bool) -> tuple[Check, ...]:
    """docs/api.md#content-state-and-assessments's assessment-item order; docs/api.md#content-state-and-assessments adds
    the aliases and fills ``userId`` with the subject first."""
    checks: list[Check] = [
        required("assessmentTs", "ATTEMPTED_DATE_REQUIRED", int),
        one_of(COURSE if aliases else COURSE[:1], "COURSE_ID_REQUIRED_ERROR"),
        required("contentId", "CONTENT_ID_REQUIRED_ERROR"),
        one_of(BATCH if aliases else BATCH[:1], "COURSE_BATCH_ID_MISSING"),
    ]
    if not aliases:
        checks.append(required("userId", "USERID_MISSING"))
    checks += [
        required("attemptId", "ATTEMPT_ID_REQUIRED_ERROR"),
        required("events", "EVENTS_DATA_MISSING", list),
    ]
    return tuple(checks)


class ContentStateRead(RequestModel):
    """``POST /v1/content/state/read`` (docs/api.md#content-state-and-assessments); the body's ``userId`` is ignored."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        list_of("courseIds", str),
        list_of("contentIds", str),
        one_of(COURSE, first_of="courseIds"),
        required("batchId"),
        list_of("fields", str),
    )
    courseId: Any = None
    collectionId: Any = None
    courseIds: list[str] | None = None
    batchId: str
    contentIds: list[str] | None = None
    fields: list[str] | None = None

    @property
    def course_id(self) -> str:
        """``courseId``, else ``collectionId``, else the first of ``courseIds`` (docs/api.md)."""
        fields = {"courseId": self.courseId, "collectionId": self.collectionId, "courseIds": self.courseIds}
        return str(_aliased(fields, COURSE, "courseIds")[1])


class ContentStateUpdate(RequestModel):
    """``PATCH /v1/content/state/update`` (docs/api.md#content-state-and-assessments); items are kept as sent (the
    invalid topic needs them)."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        each("contents", CONTENT_ITEM),
        each("assessments", assessment_item(aliases=False)),
    )
    contents: list[dict[str, Any]] | None = None
    assessments: list[dict[str, Any]] | None = None


class AssessmentsSend(RequestModel):
    """``POST /v1/assess/save`` and ``/v1/assess/submit`` (docs/api.md#content-state-and-assessments)."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("assessments", kind=list),
        each("assessments", assessment_item(aliases=True)),
    )
    assessments: list[dict[str, Any]]


class AssessmentsRead(RequestModel):
    """``POST /v1/assess/read`` (docs/api.md#content-state-and-assessments)."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        one_of(COURSE),
        one_of(BATCH),
        list_of("contentIds", str),
        list_of("fields", str),
    )
    courseId: Any = None
    collectionId: Any = None
    batchId: Any = None
    contextId: Any = None
    contentIds: list[str] | None = None
    fields: list[str] | None = None

    @property
    def course_id(self) -> str:
        """``courseId``, else ``collectionId``."""
        return str(first_given({"courseId": self.courseId, "collectionId": self.collectionId}, COURSE)[1])

    @property
    def batch_id(self) -> str:
        """``batchId``, else ``contextId``."""
        return str(first_given({"batchId": self.batchId, "contextId": self.contextId}, BATCH)[1])
