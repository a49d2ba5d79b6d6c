"""End to end: an assessment and course completion through all three stream jobs issue one certificate (SPEC §4)."""

from __future__ import annotations

from sqlalchemy import insert, select

from learnagg.adapters.store.tables import course_batch, user_enrolments, users
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE
from learnagg.domain.messages import progress_event
from learnagg.domain.platform import cert_templates
from tests.conftest import T
from tests.support import drain, golden_event, load, publish, topic_events

C, B, U = "do_flow_course", "flow-batch", "flow-user"
ASSESSMENT, VIDEO = "do_flow_assessment", "do_flow_video"


def _setup(app) -> None:
    load(
        app,
        {
            "identifier": C,
            "name": "Flow course",
            "mimeType": COLLECTION_MIME_TYPE,
            "children": [
                {
                    "identifier": ASSESSMENT,
                    "name": "Quiz",
                    "mimeType": "application/vnd.ekstep.ecml-archive",
                    "contentType": "SelfAssess",
                },
                {"identifier": VIDEO, "name": "Video", "mimeType": "video/mp4", "contentType": "Resource"},
            ],
        },
    )
    template = {
        "identifier": "flow-template",
        "name": "Flow certificate",
        "url": "https://store/flow.svg",
        "criteria": {"enrollment": {"status": 2}, "assessment": {"score": {">=": 50}}},
        "issuer": {"name": "Org"},
        "signatoryList": [],
        "additionalProps": {"assessment": ["score"]},
    }
    with app.store.write() as conn:
        conn.execute(
            insert(course_batch),
            [{"courseid": C, "batchid": B, "status": 1, "cert_templates": cert_templates({"flow-template": template})}],
        )
        conn.execute(insert(users), [{"id": U, "first_name": "Flo", "root_org_id": "org-1", "status": 1}])
        conn.execute(
            insert(user_enrolments),
            [{"userid": U, "courseid": C, "batchid": B, "active": True, "status": 0, "enrolled_date": T - 1000}],
        )


def test_assessment_then_completion_issues_one_certificate_with_the_score(app):
    _setup(app)
    attempt = golden_event() | {"courseId": C, "batchId": B, "userId": U, "contentId": ASSESSMENT}
    publish(app, "assess", [attempt])
    progress = progress_event(user_id=U, batch_id=B, course_id=C, contents=[(ASSESSMENT, 2), (VIDEO, 2)], now=T)
    publish(app, "progress", [progress])

    drain(app, ["assessment-aggregator", "activity-aggregate-updater"])
    # Read before the pre-processor drains them: a bus may trim what every reader committed (Redis Streams).
    requests = topic_events(app, "issue.certificate.request")
    drain(app)

    for failed in ("telemetry.assess.failed", "activity.agg.failed", "issue.certificate.failed"):
        assert topic_events(app, failed) == []
    [event] = topic_events(app, "generate.certificate.request")
    edata = event["edata"]
    # The golden attempt scores 1.33 out of 2.0 (SPEC §3.6): 1.33 * 100 / 2.0.
    assert edata["related"] == {
        "batchId": B,
        "courseId": C,
        "type": "Flow certificate",
        "assessment": {"score": {ASSESSMENT: 66.5}},
    }
    assert (edata["userId"], edata["courseName"], edata["issuedDate"]) == (U, "Flow course", "2023-11-14")
    with app.store.read() as conn:
        [issued] = conn.execute(select(user_enrolments.c.issued_certificates)).scalar_one()
    assert issued["identifier"] == event["mid"].removeprefix("LMS.")

    # Replaying the completion changes nothing: the certificate is already on the enrolment.
    publish(app, "certificate", requests)
    drain(app)
    assert len(topic_events(app, "generate.certificate.request")) == 1
