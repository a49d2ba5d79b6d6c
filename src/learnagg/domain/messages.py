"""Outgoing messages: the issue-certificate request (SPEC §3.3) and the failed-event envelope (SPEC §3.5)."""

from __future__ import annotations

import uuid
from typing import Any

ASSESSMENT_AGGREGATOR = "AssessmentAggregator"


def issue_certificate_request(
    *, course_id: str, batch_id: str, user_id: str, now: int, attempt_id: str | None = None
) -> dict[str, Any]:
    """The issue-certificate request of SPEC §3.3; ``attempt_id=None`` leaves the field out (activity updater)."""
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


def failed_event(raw_text: str, event: object, reason: str, src: str, now: int) -> dict[str, Any]:
    """The failed-topic envelope: the original event unchanged plus ``metadata`` (SPEC §3.5).

    Args:
        raw_text: the message as received.
        event: the decoded message, or None when it was not JSON.
        reason: the validation_error text.
        src: the job name (`AssessmentAggregator`, …).
        now: epoch ms.
    """
    meta = {"validation_error": reason, "src": src, "failed_ts": now}
    if not isinstance(event, dict):
        return {"raw": raw_text, "metadata": meta}
    out = dict(event)
    existing = out.get("metadata")
    out["metadata"] = {**existing, **meta} if isinstance(existing, dict) else meta
    return out
