"""Certificate pre-processor rules: request validity (K1), the K5–K8 criteria and issued certificates
(docs/jobs/certificates.md)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from learnagg.domain.assess_event import InvalidEvent
from learnagg.domain.certificate_templates import Template
from learnagg.domain.numbers import is_number
from learnagg.domain.platform import USER_FIELDS, display_name

ISSUE_CERTIFICATE = "issue-certificate"
INVALID_TEMPLATE = "Invalid template for batch"
ISSUED_DATE_UNAVAILABLE = "issued date unavailable"
USER_DELETED = 2  # `users.status` of a deleted user: skipped (docs/jobs/certificates.md#k4)
DEFAULT_ENROLLMENT_STATUS = 2
_SCORE_PREFIX = "score:"


def user_not_found(user_id: str) -> str:
    """The K4 validation_error of an unknown user."""
    return f"user {user_id} not found"


def _non_blank(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


# --- K1 requests --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """An issue-certificate request (docs/reference/events.md#e3); ``valid`` is False when K1 says to skip it."""

    valid: bool
    course_id: str = ""
    batch_id: str = ""
    user_ids: tuple[str, ...] = ()
    reissue: bool = False


def parse_certificate_request(raw: object) -> CertificateRequest:
    """Read an issue-certificate request and apply the K1 validity rule.

    Args:
        raw: The decoded JSON message.

    Returns:
        The request; an invalid one (``valid`` False) is skipped and counted, never failed. User ids keep their
        first occurrence only, so a user listed twice is processed once.

    Raises:
        InvalidEvent: if the message is not a JSON object (the same failure the consumer loop gives non-JSON text).
    """
    if not isinstance(raw, dict):
        raise InvalidEvent("event is not a JSON object")
    edata = raw.get("edata")
    if not isinstance(edata, dict):
        return CertificateRequest(valid=False)
    action = edata.get("action")
    course_id, batch_id, user_ids = edata.get("courseId"), edata.get("batchId"), edata.get("userIds")
    valid = (
        isinstance(action, str)
        and action.lower() == ISSUE_CERTIFICATE
        and _non_blank(course_id)
        and _non_blank(batch_id)
        and isinstance(user_ids, list)
        and len(user_ids) > 0
        and all(_non_blank(u) for u in user_ids)
    )
    if not valid:
        return CertificateRequest(valid=False)
    return CertificateRequest(
        valid=True,
        course_id=str(course_id),
        batch_id=str(batch_id),
        user_ids=tuple(dict.fromkeys(str(u) for u in user_ids or ())),
        # Only a JSON true reissues, as the reference reads a boolean.
        reissue=edata.get("reIssue") is True,
    )


# --- K5 enrolment, K8 related enrolment ---------------------------------------------------------------------------


def issued_entry(issued: Sequence[Any] | None, name: str) -> Mapping[str, Any] | None:
    """The first ``issued_certificates`` entry whose ``name`` equals ``name``, ignoring case
    (docs/jobs/certificates.md#k5)."""
    wanted = name.lower()
    for entry in issued or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and entry["name"].lower() == wanted:
            return entry
    return None


def _same_status(stored: object, wanted: object) -> bool:
    # Numbers compare as numbers (2 == 2.0); anything else (text, null, booleans) never matches.
    return is_number(stored) and is_number(wanted) and float(stored) == float(wanted)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The K5 outcome for one user and template: eligible or not, and the certificate a reissue replaces."""

    eligible: bool
    old_id: str | None = None


def enrollment_eligibility(
    enrollment: Mapping[str, Any] | None, enrolment: Mapping[str, Any] | None, name: str, reissue: bool
) -> Eligibility:
    """K5: an active enrolment with the criterion's status, and no same-name certificate unless reissuing.

    Args:
        enrollment: The template's enrollment criterion; None means there is none (always eligible).
        enrolment: The `user_enrolments` row (column → value), or None when missing.
        name: The template name.
        reissue: ``edata.reIssue`` of the request.
    """
    if enrollment is None:
        return Eligibility(True)
    if enrolment is None or enrolment.get("active") is not True:
        return Eligibility(False)
    if not _same_status(enrolment.get("status"), enrollment.get("status", DEFAULT_ENROLLMENT_STATUS)):
        return Eligibility(False)
    entry = issued_entry(enrolment.get("issued_certificates"), name)
    if entry is None:
        return Eligibility(True)
    if not reissue:
        return Eligibility(False)
    old_id = entry.get("identifier")
    return Eligibility(True, old_id if _non_blank(old_id) else None)


def related_enrollment(names: Iterable[str], enrolment: Mapping[str, Any] | None) -> dict[str, Any]:
    """K8: each named enrolment field, read from the lower-cased column (unknown columns give null)."""
    row = enrolment or {}
    return {name: row.get(name.lower()) for name in names}


# --- K6 assessment --------------------------------------------------------------------------------------------------


def score_content_ids(metrics: Mapping[str, float]) -> set[str]:
    """The content ids of every ``score:<c>`` metric (whose content types K6 needs)."""
    return {k[len(_SCORE_PREFIX) :] for k in metrics if k.startswith(_SCORE_PREFIX)}


def content_percentages(
    metrics: Mapping[str, float], content_types: Mapping[str, str | None], supported: Collection[str]
) -> dict[str, float]:
    """K6.2: ``score*100/max`` of each assessment of a supported content type, by content id (in id order).

    Args:
        metrics: ``merged`` of the user's course row (aggregates win over agg).
        content_types: `content.content_type` by content id; unknown contents are ignored.
        supported: ``assessment.supported_content_types`` (exact match).

    Returns:
        The map that ``related.assessment.score`` carries (K6.5). A content whose max score is 0 is left out; an
        absent max score counts as 1.0.
    """
    out: dict[str, float] = {}
    for content_id in sorted(score_content_ids(metrics)):
        if content_types.get(content_id) not in supported:
            continue
        max_score = metrics.get(f"max_score:{content_id}", 1.0)
        if max_score == 0:
            continue
        out[content_id] = metrics[_SCORE_PREFIX + content_id] * 100 / max_score
    return out


def best_percentage(percentages: Mapping[str, float]) -> float:
    """K6.3: the course score, the best per-content percentage, or 0.0 when there is none."""
    return max(percentages.values(), default=0.0)


def course_score(
    metrics: Mapping[str, float], content_types: Mapping[str, str | None], supported: Collection[str]
) -> float:
    """K6.2–3: the best ``score*100/max`` over assessments of a supported content type, or 0.0."""
    return best_percentage(content_percentages(metrics, content_types, supported))


# --- K7 user --------------------------------------------------------------------------------------------------------


def user_profile(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `users` row under the camelCase names K7 compares (``rootOrgId`` → root_org_id, …) and ``displayName``."""
    profile: dict[str, Any] = {"id": row.get("id")}
    profile.update({name: row.get(column) for name, column in USER_FIELDS.items()})
    profile["displayName"] = display_name(row.get("first_name"), row.get("last_name"))
    return profile


def _equal(a: object, b: object) -> bool:
    # JSON equality: a boolean never equals a number (Python's True == 1 would say it does).
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


def user_matches(criterion: Mapping[str, Any], profile: Mapping[str, Any]) -> bool:
    """K7: every criterion key equals the profile field of the same name (absent fields are null)."""
    return all(_equal(profile.get(key), value) for key, value in criterion.items())


# --- issued certificates --------------------------------------------------------------------------------------------


def issued_certificate(*, name: str, identifier: str, last_issued_on: str, template_url: str) -> dict[str, str]:
    """The `issued_certificates` entry recorded for a generate request (docs/reference/data-model.md#enrolment keys; no
    token is known yet)."""
    return {
        "name": name,
        "identifier": identifier,
        "lastIssuedOn": last_issued_on,
        "templateUrl": template_url,
        "type": name,
    }


def record_issued(issued: Sequence[Any] | None, entry: Mapping[str, str]) -> list[Any]:
    """The new `issued_certificates` list: ``entry`` replaces same-name entries (ignoring case) or is appended."""
    wanted = entry["name"].lower()
    out: list[Any] = []
    placed = False
    for old in issued or ():
        same = isinstance(old, Mapping) and isinstance(old.get("name"), str) and old["name"].lower() == wanted
        if not same:
            out.append(old)
        elif not placed:
            out.append(dict(entry))
            placed = True
    if not placed:
        out.append(dict(entry))
    return out


# --- K5–K8 together -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Passed:
    """A template a user qualifies for: the certificate a reissue replaces and the ``related`` extras (K6.5, K8)."""

    old_id: str | None
    related: dict[str, Any]


def evaluate(
    template: Template,
    *,
    enrolment: Mapping[str, Any] | None,
    reissue: bool,
    percentages: Mapping[str, float],
    profile: Mapping[str, Any],
) -> Passed | None:
    """K5–K8 for one user and template: None unless every criterion the template has passes.

    Args:
        template: A valid template.
        enrolment: The user's `user_enrolments` row (column → value), or None.
        reissue: ``edata.reIssue`` of the request.
        percentages: The user's per-content percentages (K6.2); their best is the course score (K6.3).
        profile: The user's `user_profile`.
    """
    eligibility = enrollment_eligibility(template.enrollment, enrolment, template.name, reissue)
    if not eligibility.eligible:
        return None
    if template.score is not None and not template.score.passes(best_percentage(percentages)):
        return None
    if template.user is not None and not user_matches(template.user, profile):
        return None
    related: dict[str, Any] = {}
    if template.enrollment_props:
        related["enrollment"] = related_enrollment(template.enrollment_props, enrolment)
    if template.score is not None and "score" in template.assessment_props:
        # K6.5: the per-content map, as the reference sends it (docs/jobs.md), not the course score.
        related["assessment"] = {"score": dict(percentages)}
    return Passed(eligibility.old_id, related)
