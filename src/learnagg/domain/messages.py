"""Outgoing messages: progress events (docs/reference/events.md#e2), issue-certificate requests
(docs/reference/events.md#e3), failed envelopes (docs/reference/events.md#e5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

ASSESSMENT_AGGREGATOR = "AssessmentAggregator"


def progress_event(
    *, user_id: str, batch_id: str, course_id: str, contents: Iterable[tuple[str, int | None]], now: int
) -> dict[str, Any]:
    """The progress event of docs/reference/events.md#e2 (published keyed by userId).

    Args:
        user_id: the learner.
        batch_id: the batch.
        course_id: the batch's course.
        contents: (contentId, merged status) pairs, in the order they were written.
        now: epoch ms of the request.
    """
    return {
        "eid": "BE_JOB_REQUEST",
        "ets": now,
        "mid": f"LP.{now}.{uuid.uuid4()}",
        "actor": {"id": "Course Batch Updater", "type": "System"},
        "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}},
        "object": {"id": f"{batch_id}_{user_id}", "type": "CourseBatchEnrolment"},
        "edata": {
            "userId": user_id,
            "batchId": batch_id,
            "courseId": course_id,
            "contents": [{"contentId": content_id, "status": status} for content_id, status in contents],
            "action": "batch-enrolment-update",
            "iteration": 1,
        },
    }


def issue_certificate_request(
    *, course_id: str, batch_id: str, user_id: str, now: int, attempt_id: str | None = None
) -> dict[str, Any]:
    """The issue-certificate request of docs/reference/events.md#e3; ``attempt_id=None`` leaves the field out (activity
    updater)."""
    edata: dict[str, Any] = {
        "userIds": [user_id],
        "action": "issue-certificate",
        "iteration": 1,
        "trigger": "auto-issue",
        "batchId": batch_id,
        "reIssue": False,
        "courseId": course_id,
    }
    if attempt_id is not None:
        edata["attemptId"] = attempt_id
    return {
        "eid": "BE_JOB_REQUEST",
        "ets": now,
        "mid": f"LP.{now}.{uuid.uuid4()}",
        "actor": {"id": "Course Certificate Generator", "type": "System"},
        "context": {"pdata": {"ver": "1.0", "id": "org.sunbird.platform"}},
        "object": {"id": f"{batch_id}_{course_id}", "type": "CourseCertificateGeneration"},
        "edata": edata,
    }


def failed_event(
    raw_text: str, event: object, reason: str, src: str, now: int, failed_id: str | None = None
) -> dict[str, Any]:
    """The failed-topic envelope: the original event unchanged plus ``metadata`` (docs/reference/events.md#e5).

    Args:
        raw_text: the message as received.
        event: the decoded message, or None when it was not JSON.
        reason: the validation_error text.
        src: the job name (`AssessmentAggregator`, …).
        now: epoch ms.
        failed_id: ``<job>:<partition>:<position>`` of the source event (docs/scale-out.md), left out when None.
    """
    meta: dict[str, Any] = {"validation_error": reason, "src": src, "failed_ts": now}
    if failed_id is not None:
        meta["failed_id"] = failed_id
    if not isinstance(event, dict):
        return {"raw": raw_text, "metadata": meta}
    out = dict(event)
    existing = out.get("metadata")
    out["metadata"] = {**existing, **meta} if isinstance(existing, dict) else meta
    return out


def generate_certificate_request(
    *,
    certificate_id: str,
    user_id: str,
    batch_id: str,
    course_id: str,
    template_id: str,
    name: str,
    svg_template: str,
    issued_date: str,
    recipient_name: str,
    org_id: str | None,
    course_name: str | None,
    base_path: str,
    issuer: dict[str, Any],
    signatory_list: list[Any],
    related: dict[str, Any],
    now: int,
    old_id: str | None = None,
) -> dict[str, Any]:
    """The generate-certificate request of docs/reference/events.md#e4, keys in the order shown there.

    Args:
        certificate_id: a new uuid4; the ``mid`` is ``LMS.<certificate_id>`` and the same id is recorded in
            `issued_certificates`, so the entry can be traced to the request that issued it.
        user_id: the recipient.
        batch_id: the batch (also the ``tag``).
        course_id: the batch's course.
        template_id: the template identifier.
        name: the template name (``criteria.narrative``, ``related.type`` and ``name``).
        svg_template: the template url with ``CLOUD_BASE_PATH`` replaced.
        issued_date: ``yyyy-MM-dd``.
        recipient_name: the user's displayName.
        org_id: the user's root org.
        course_name: the course name, or None.
        base_path: ``<cert.domain_url>/certs``.
        issuer: the template's issuer object.
        signatory_list: the template's signatories.
        related: extras added to ``related`` after batchId, courseId and type (``enrollment``, ``assessment``).
        now: epoch ms of the request.
        old_id: the identifier of the certificate a reissue replaces; left out when None.
    """
    edata: dict[str, Any] = {
        "issuedDate": issued_date,
        "data": [{"recipientName": recipient_name, "recipientId": user_id}],
        "criteria": {"narrative": name},
        "svgTemplate": svg_template,
    }
    if old_id is not None:
        edata["oldId"] = old_id
    edata.update(
        {
            "templateId": template_id,
            "userId": user_id,
            "orgId": org_id,
            "issuer": issuer,
            "signatoryList": signatory_list,
            "courseName": course_name,
            "basePath": base_path,
            "related": {"batchId": batch_id, "courseId": course_id, "type": name, **related},
            "name": name,
            "tag": batch_id,
        }
    )
    return {
        "eid": "BE_JOB_REQUEST",
        "ets": now,
        "mid": f"LMS.{certificate_id}",
        "actor": {"id": "Certificate Generator", "type": "System"},
        "context": {"pdata": {"ver": "1.0", "id": "org.sunbird.learning.platform"}},
        "object": {"id": user_id, "type": "GenerateCertificate"},
        "edata": edata,
    }
