"""The certificate pre-processor (docs/jobs/certificates.md): issue-certificate requests → generate-certificate requests
(docs/reference/events.md#e4)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, bindparam, select, update

from learnagg.adapters.store.scores import COURSE, context_id
from learnagg.adapters.store.tables import content, course, course_batch, user_activity_agg, user_enrolments, users
from learnagg.domain.assess_event import InvalidEvent
from learnagg.domain.attempt_metrics import merged_view
from learnagg.domain.bounds import event_violation
from learnagg.domain.certificate_templates import Template, parse_template, svg_templates
from learnagg.domain.certificates import (
    INVALID_TEMPLATE,
    ISSUED_DATE_UNAVAILABLE,
    USER_DELETED,
    CertificateRequest,
    Passed,
    content_percentages,
    evaluate,
    issued_certificate,
    record_issued,
    score_content_ids,
    user_not_found,
    user_profile,
)
from learnagg.domain.certificates import parse_certificate_request as read_certificate_request
from learnagg.domain.dates import format_date
from learnagg.domain.messages import generate_certificate_request
from learnagg.streams.handler import BatchResult, Incoming

if TYPE_CHECKING:
    from learnagg.app import App

__all__ = [
    "COLLECTION_CERT_PRE_PROCESSOR",
    "COUNTERS",
    "CertificatePreProcessor",
    "parse_certificate_request",
]

COLLECTION_CERT_PRE_PROCESSOR = "CollectionCertPreProcessor"

# Counter names of the reference job, so dashboards built for it keep working. `failed` is counted by the
# consumer loop (it sees every failure, unparsable messages included).
COUNTERS = {
    "total": "total-events-count",
    "success": "success-events-count",
    "failed": "failed-events-count",
    "skipped": "skipped-events-count",
    "db_read": "db-read-count",
    "generate": "generate-certificate-events-count",
}

Learner = tuple[str, str, str]  # (user_id, course_id, batch_id): the `user_enrolments` key


def parse_certificate_request(raw: object) -> CertificateRequest:
    """docs/jobs/certificates.md#k1 for the consumer loop; a valid request must also hold to the input bounds (no NUL,
    nesting at
    most 64 levels, finite numbers; docs/threat-model.md), else it goes to the failed topic naming the field."""
    request = read_certificate_request(raw)
    if request.valid:
        error = event_violation(raw)  # type: ignore[arg-type]  # an object: read_certificate_request checked it
        if error is not None:
            raise InvalidEvent(error)
    return request


class _EventFailed(Exception):
    """The whole event goes to the failed topic with ``reason``; nothing of it is emitted or recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Reads:
    """What a batch's requests need beyond templates, read with one query per table whatever the batch size."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    enrolments: dict[Learner, dict[str, Any]] = field(default_factory=dict)
    course_names: dict[str, str | None] = field(default_factory=dict)
    metrics: dict[Learner, dict[str, float]] = field(default_factory=dict)  # merged course rows
    content_types: dict[str, str | None] = field(default_factory=dict)


class CertificatePreProcessor:
    """Handles batches of issue-certificate requests inside the consumer loop's transaction."""

    def __init__(self, app: App) -> None:
        """Take the settings, log, topics and clock from the bootstrap `App`."""
        self.log = app.log
        self.topics = app.topics
        self.clock = app.clock
        self.timezone = app.settings.timezone
        self.supported = frozenset(app.settings.assessment.supported_content_types)
        self.cloud_base_url = app.settings.cert.cloud_base_url
        self.base_path = f"{app.settings.cert.domain_url}/certs"

    def handle(self, conn: Connection, batch: Sequence[Incoming[CertificateRequest]]) -> BatchResult:
        """Process the batch in log order; the outcome equals processing the requests one at a time.

        Certificates issued by an earlier request of the batch are seen by later ones through the in-memory
        enrolment rows, which is what the one-by-one order would read from the table.
        """
        result = BatchResult()
        result.counters["total"] += len(batch)
        valid = [i for i in batch if i.message.valid]
        result.counters["skipped"] += len(batch) - len(valid)  # docs/jobs/certificates.md#k1
        templates = self._read_templates(conn, valid, result)
        # docs/jobs/certificates.md#k2: a batch without an svg template skips the event before anything else is read.
        work: list[tuple[Incoming[CertificateRequest], list[Template | None]]] = []
        for incoming in valid:
            svg = svg_templates(templates.get(_batch_key(incoming.message)))
            if svg:
                work.append((incoming, [parse_template(key, fields) for key, fields in svg]))
            else:
                result.counters["skipped"] += 1
        reads = self._read_rest(conn, work, result)

        generated: list[tuple[str | None, str]] = []
        changed: dict[Learner, list[Any]] = {}
        for incoming, parsed in work:
            now = self.clock()
            try:
                events, issued = self._process(incoming.message, parsed, reads, now)
            except _EventFailed as exc:
                result.failures.append((incoming, exc.reason))
                continue
            # The event succeeded as a whole: only now do its certificates become visible to later events.
            for learner, entries in issued.items():
                reads.enrolments[learner]["issued_certificates"] = entries
                changed[learner] = entries
            generated.extend((None, orjson.dumps(e).decode()) for e in events)
            result.counters["success"] += 1
            result.counters["generate"] += len(events)

        _write_issued(conn, changed)
        self.log.append(conn, self.topics.certificate_generate, generated, self.clock())
        return result

    def _process(
        self, request: CertificateRequest, parsed: list[Template | None], reads: _Reads, now: int
    ) -> tuple[list[dict[str, Any]], dict[Learner, list[Any]]]:
        """One request: K3 for every template before any output, then K4–K9 for each user on their own."""
        templates = [t for t in parsed if t is not None]
        if len(templates) != len(parsed):
            raise _EventFailed(INVALID_TEMPLATE)
        events: list[dict[str, Any]] = []
        issued: dict[Learner, list[Any]] = {}
        for user_id in request.user_ids:  # distinct ids (parse_certificate_request)
            user = reads.users.get(user_id)
            if user is None:
                # One unknown user fails the whole event: the failed topic holds whole events, and a replay of it
                # after the fix must issue exactly what this run would have issued.
                raise _EventFailed(user_not_found(user_id))
            if user.get("status") == USER_DELETED:
                continue
            learner = (user_id, request.course_id, request.batch_id)
            enrolment = reads.enrolments.get(learner)
            profile = user_profile(user)
            percentages = content_percentages(reads.metrics.get(learner, {}), reads.content_types, self.supported)
            for template in templates:
                passed = evaluate(
                    template, enrolment=enrolment, reissue=request.reissue, percentages=percentages, profile=profile
                )
                if passed is None:
                    continue
                completed_on = None if enrolment is None else enrolment.get("completedon")
                if enrolment is None or completed_on is None:
                    raise _EventFailed(ISSUED_DATE_UNAVAILABLE)  # docs/jobs/certificates.md#k5
                certificate_id = str(uuid.uuid4())
                events.append(
                    self._generate(request, template, profile, passed, certificate_id, completed_on, reads, now)
                )
                entry = issued_certificate(
                    name=template.name,
                    identifier=certificate_id,
                    # The day it was issued; the completion day is already the request's issuedDate.
                    last_issued_on=format_date(now, self.timezone),
                    template_url=template.url,
                )
                # A later template of the same event sees this certificate, as a later event would.
                enrolment = {
                    **enrolment,
                    "issued_certificates": record_issued(enrolment.get("issued_certificates"), entry),
                }
                issued[learner] = enrolment["issued_certificates"]
        return events, issued

    def _generate(
        self,
        request: CertificateRequest,
        template: Template,
        profile: dict[str, Any],
        passed: Passed,
        certificate_id: str,
        completed_on: int,
        reads: _Reads,
        now: int,
    ) -> dict[str, Any]:
        """K9: the generate-certificate request of one user and template (docs/reference/events.md#e4)."""
        return generate_certificate_request(
            certificate_id=certificate_id,
            user_id=profile["id"],
            batch_id=request.batch_id,
            course_id=request.course_id,
            template_id=template.identifier,
            name=template.name,
            svg_template=template.url.replace("CLOUD_BASE_PATH", self.cloud_base_url),
            issued_date=format_date(completed_on, self.timezone),
            recipient_name=profile["displayName"],
            org_id=profile["rootOrgId"],
            course_name=reads.course_names.get(request.course_id),
            base_path=self.base_path,
            issuer=template.issuer,
            signatory_list=template.signatory_list,
            related=passed.related,
            now=now,
            old_id=passed.old_id,
        )

    # --- batched reads: one query per table and batch, whatever its size ---------------------------------------

    @staticmethod
    def _read_templates(
        conn: Connection, batch: Sequence[Incoming[CertificateRequest]], result: BatchResult
    ) -> dict[tuple[str, str], Any]:
        keys = {_batch_key(i.message) for i in batch}
        if not keys:
            return {}
        b = course_batch.c
        stmt = select(b.courseid, b.batchid, b.cert_templates).where(b.batchid.in_(sorted({k[1] for k in keys})))
        result.counters["db_read"] += 1
        # A batch id under another course is an unknown batch for this request.
        return {(c, bid): t for c, bid, t in conn.execute(stmt) if (c, bid) in keys}

    def _read_rest(
        self,
        conn: Connection,
        work: Sequence[tuple[Incoming[CertificateRequest], list[Template | None]]],
        result: BatchResult,
    ) -> _Reads:
        reads = _Reads()
        requests = [i.message for i, _ in work]
        if not requests:
            return reads
        learners = {(u, r.course_id, r.batch_id) for r in requests for u in r.user_ids}
        user_ids = sorted({u for u, _, _ in learners})
        reads.users = {row["id"]: row for row in _rows(conn, select(users).where(users.c.id.in_(user_ids)))}
        e = user_enrolments.c
        stmt = select(user_enrolments).where(
            e.userid.in_(user_ids),
            e.courseid.in_(sorted({c for _, c, _ in learners})),
            e.batchid.in_(sorted({b for _, _, b in learners})),
        )
        for row in _rows(conn, stmt):
            key = (row["userid"], row["courseid"], row["batchid"])
            if key in learners:
                reads.enrolments[key] = row
        course_ids = sorted({r.course_id for r in requests})
        stmt = select(course.c.course_id, course.c.name).where(course.c.course_id.in_(course_ids))
        reads.course_names = {row["course_id"]: row["name"] for row in _rows(conn, stmt)}
        result.counters["db_read"] += 3
        # K6 reads the course rows and content types only when some template has an assessment criterion.
        if any(t is not None and t.score is not None for _, parsed in work for t in parsed):
            reads.metrics = _course_metrics(conn, learners)
            content_ids = set().union(*(score_content_ids(m) for m in reads.metrics.values()))
            result.counters["db_read"] += 1
            if content_ids:
                stmt = select(content.c.content_id, content.c.content_type).where(
                    content.c.content_id.in_(sorted(content_ids))
                )
                reads.content_types = {row["content_id"]: row["content_type"] for row in _rows(conn, stmt)}
                result.counters["db_read"] += 1
        return reads


def _batch_key(request: CertificateRequest) -> tuple[str, str]:
    return request.course_id, request.batch_id


def _rows(conn: Connection, stmt: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(stmt).mappings()]


def _course_metrics(conn: Connection, learners: set[Learner]) -> dict[Learner, dict[str, float]]:
    """K6.1: ``merged`` of each learner's course row (`Course`, courseId, userId, `cb:<batchId>`)."""
    u = user_activity_agg.c
    stmt = select(u.activity_id, u.user_id, u.context_id, u.agg, u.aggregates).where(
        u.activity_type == COURSE,
        u.activity_id.in_(sorted({c for _, c, _ in learners})),
        u.user_id.in_(sorted({user for user, _, _ in learners})),
        u.context_id.in_(sorted({context_id(b) for _, _, b in learners})),
    )
    by_row = {(c, user, context_id(b)): (user, c, b) for user, c, b in learners}
    out: dict[Learner, dict[str, float]] = {}
    for activity_id, user_id, ctx, agg, aggregates in conn.execute(stmt):
        learner = by_row.get((activity_id, user_id, ctx))
        if learner is not None:
            out[learner] = merged_view(agg, aggregates)
    return out


def _write_issued(conn: Connection, changed: dict[Learner, list[Any]]) -> None:
    """Record the issued certificates on the enrolments: one statement for the whole batch."""
    if not changed:
        return
    e = user_enrolments.c
    stmt = (
        update(user_enrolments)
        .where(e.userid == bindparam("k_user"), e.courseid == bindparam("k_course"), e.batchid == bindparam("k_batch"))
        .values(issued_certificates=bindparam("v_issued", type_=e.issued_certificates.type))
    )
    conn.execute(
        stmt,
        [
            {"k_user": u, "k_course": c, "k_batch": b, "v_issued": entries}
            for (u, c, b), entries in sorted(changed.items())
        ],
    )
