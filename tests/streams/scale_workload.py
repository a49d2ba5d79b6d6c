"""A mixed, cheap workload for the scale-out tests, and the comparable state of a store and its bus after it.

One course with three leaves (two SelfAssess, one video), a batch whose certificate needs a completed enrolment
(the learners' progress completes it), a second batch whose learners are complete already (the published
certificate requests issue theirs), and a few bad events of each kind for the failed topics. The outcome does not
depend on how the jobs interleave: every row belongs to one learner, whose events one consumer reads in order.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
from sqlalchemy import insert, select

from learnagg import bootstrap
from learnagg.adapters.store.tables import (
    activity_agg,
    assessment_aggregator,
    course_batch,
    dedup_key,
    user_activity_agg,
    user_content_consumption,
    user_enrolments,
    users,
)
from learnagg.domain.messages import issue_certificate_request, progress_event
from learnagg.domain.platform import cert_templates
from tests.support import course, load, publish, topic_events

COURSE, BATCH, DONE_BATCH = "do_sc", "b-sc", "b-sc-done"
ASSESSED = ["do_q1", "do_q2"]  # SelfAssess leaves
LEAVES = [*ASSESSED, "do_v1"]
ENROLLED = {"enrollment": {"status": 2}}
EMITTED = ("certificate", "generate.certificate.request")
FAILED = ("telemetry.assess.failed", "activity.agg.failed", "issue.certificate.failed")
_NOW = 1_700_000_000_000


def _template(identifier: str) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": f"Completion {identifier}",
        "url": "https://store/cert.svg",
        "criteria": ENROLLED,
        "issuer": {"name": "Org"},
        "signatoryList": [],
    }


def learners(total: int) -> int:
    """How many learners a workload of ``total`` events has (a few events each)."""
    return max(20, total // 25)


def set_up(app: bootstrap.App, total: int) -> None:
    """The course, its two batches, the learners and their enrolments."""
    hierarchy = course(COURSE, ASSESSED)
    hierarchy["children"].append(_video())
    load(app, hierarchy)
    count = learners(total)
    with app.store.write() as conn:
        conn.execute(
            insert(course_batch),
            [
                {"courseid": COURSE, "batchid": b, "status": 1, "cert_templates": cert_templates({b: _template(b)})}
                for b in (BATCH, DONE_BATCH)
            ],
        )
        conn.execute(
            insert(users),
            [{"id": f"u-{n}", "first_name": f"U{n}", "root_org_id": "org", "status": 1} for n in range(count)],
        )
        enrolled = [
            {"userid": f"u-{n}", "courseid": COURSE, "batchid": BATCH, "active": True, "status": 0, "enrolled_date": 1}
            for n in range(count)
        ]
        done = [
            {"userid": f"u-{n}", "courseid": COURSE, "batchid": DONE_BATCH, "active": True, "status": 2}
            | {"enrolled_date": 1, "completedon": _NOW, "progress": 100}
            for n in range(0, count, 2)
        ]
        conn.execute(insert(user_enrolments), enrolled + done)


def _video() -> dict[str, Any]:
    return {"identifier": "do_v1", "name": "do_v1", "mimeType": "video/mp4", "contentType": "Resource"}


def events(total: int, seed: int = 5) -> dict[str, list[str]]:
    """``total`` events by topic alias: half assessments, 40 % progress, 10 % certificate requests, ~1 % bad."""
    rnd = random.Random(seed)
    count = learners(total)
    user = lambda: f"u-{rnd.randrange(count)}"  # noqa: E731
    assess: list[str] = []
    for n in range(total // 2):
        content = "do_nope" if n % 211 == 0 else rnd.choice(ASSESSED)
        answers = [
            {"ets": q, "edata": {"score": rnd.choice([0, 1]), "item": {"id": f"q{q}", "maxscore": 1}}}
            for q in range(1, rnd.randint(1, 2) + 1)
        ]
        event = {"assessmentTs": _NOW + n, "courseId": COURSE, "batchId": BATCH, "userId": user()}
        event |= {"contentId": content, "attemptId": f"at-{rnd.randint(1, 3)}", "events": answers, "mid": f"A.{n}"}
        assess.append("{not json" if n % 997 == 500 else _dumps(event))
    progress: list[str] = []
    for n in range(total * 2 // 5):
        course_id = "do_gone" if n % 307 == 0 else COURSE
        event = progress_event(user_id=user(), batch_id=BATCH, course_id=course_id, contents=[], now=_NOW)
        event["edata"]["contents"] = [{"contentId": rnd.choice(LEAVES), "status": 2}]
        progress.append(_dumps(event | {"mid": f"P.{n}"}))
    certificates: list[str] = []
    for n in range(total - len(assess) - len(progress)):
        batch = BATCH if n % 9 == 0 else DONE_BATCH
        learner = f"ghost-{n}" if n % 101 == 0 else user()
        request = issue_certificate_request(course_id=COURSE, batch_id=batch, user_id=learner, now=_NOW)
        certificates.append(_dumps(request | {"mid": f"C.{n}"}))
    return {"assess": assess, "progress": progress, "certificate": certificates}


def publish_all(app: bootstrap.App, workload: dict[str, list[str]]) -> None:
    """Publish every topic's events, in chunks."""
    for topic, payloads in workload.items():
        for start in range(0, len(payloads), 5000):
            publish(app, topic, payloads[start : start + 5000])


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# --- the comparable state ----------------------------------------------------------------------------------------

_TIMES = {"created_on", "updated_on", "datetime", "completedon", "lastcontentaccesstime"}
_EVENT_TIMES = {"ets", "mid", "failed_ts", "failed_id", "issuedDate", "identifier", "lastIssuedOn"}


def _strip(value: Any) -> Any:
    """``value`` without the fields that hold "now", a new uuid or a bus position (they differ between runs)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in sorted(value.items()) if k not in _EVENT_TIMES}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _rows(app: bootstrap.App, table: Any) -> list[dict[str, Any]]:
    with app.store.read() as conn:
        rows = conn.execute(select(table).order_by(*table.primary_key.columns)).mappings().all()
    out = []
    for row in rows:
        clean = {k: _strip(v) for k, v in row.items() if k not in _TIMES}
        if "agg_last_updated" in clean:  # the times differ; which metrics carry one must not
            clean["agg_last_updated"] = sorted(clean["agg_last_updated"] or {})
        if "expires_on" in clean:
            clean.pop("expires_on")
        out.append(clean)
    return out


def tables(app: bootstrap.App) -> dict[str, list[dict[str, Any]]]:
    """The rows the jobs write, without their times."""
    written = (
        assessment_aggregator,
        user_activity_agg,
        user_enrolments,
        user_content_consumption,
        activity_agg,
        dedup_key,
    )
    return {t.name: _rows(app, t) for t in written}


def emitted(app: bootstrap.App) -> tuple[dict[str, Counter[bytes]], int]:
    """Per emitted and failed topic, the multiset of payloads (one per `mid`, times stripped); and how many
    events repeated a `mid` already seen on their topic (a relay repeated after a crash, allowed on Redis)."""
    out: dict[str, Counter[bytes]] = {}
    repeated = 0
    for topic in (*EMITTED, *FAILED):
        seen: set[str] = set()
        bag: Counter[bytes] = Counter()
        for event in topic_events(app, topic):
            mid = event.get("mid") if topic in EMITTED else event.get("metadata", {}).get("failed_id")
            if mid in seen:
                repeated += 1
                continue
            seen.add(mid)
            bag[orjson.dumps(_strip(event), option=orjson.OPT_SORT_KEYS)] += 1
        out[topic] = bag
    return out, repeated
