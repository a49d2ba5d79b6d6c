"""SPEC §4.4 (K1–K9) and §3.4 rule by rule, through the log and the worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import insert, select

from learnagg import bootstrap
from learnagg.adapters.store.tables import course_batch, user_activity_agg, user_enrolments, users
from learnagg.domain.messages import issue_certificate_request
from learnagg.domain.platform import cert_templates
from tests.conftest import T
from tests.support import course, drain, load, per_learner, publish, topic_events

C, B, U, U2 = "do_course", "batch-1", "user-1", "user-2"
A1 = "do_a1"
JOB = "certificate-pre-processor"
SVG = "https://store/CLOUD_BASE_PATH/cert.svg"
DAY_UTC = "2023-11-14"  # T in UTC; in Asia/Kolkata it is already 2023-11-15
ENROLMENT_CRITERIA: dict[str, Any] = {"enrollment": {"status": 2}}


def with_settings(app: bootstrap.App, **parts: Any) -> bootstrap.App:
    update = {}
    for name, values in parts.items():
        current = getattr(app.settings, name)
        update[name] = current.model_copy(update=values) if isinstance(values, dict) else values
    return bootstrap.build(app.settings.model_copy(update=update), clock=app.clock, store=app.store)


@pytest.fixture
def capp(app: bootstrap.App) -> bootstrap.App:
    """The app with certificate URLs configured; the course is loaded (named after its id, one SelfAssess leaf)."""
    load(app, course(C, [A1]))
    return with_settings(app, cert={"cloud_base_url": "https://cloud/store", "domain_url": "https://learn"})


def template(criteria: Any = None, **fields: Any) -> dict[str, Any]:
    return {
        "identifier": "tmpl-1",
        "name": "Course completion",
        "url": SVG,
        "previewUrl": "https://store/preview.png",
        "criteria": ENROLMENT_CRITERIA if criteria is None else criteria,
        "issuer": {"name": "Org", "url": "https://org"},
        "signatoryList": [{"name": "CEO", "id": "s1"}],
        **fields,
    }


def add_batch(app: bootstrap.App, templates: dict[str, dict[str, Any]] | None, batch_id: str = B) -> None:
    row = {
        "courseid": C,
        "batchid": batch_id,
        "name": batch_id,
        "status": 1,
        "cert_templates": cert_templates(templates),
    }
    with app.store.write() as conn:
        conn.execute(insert(course_batch), [row])


def add_user(app: bootstrap.App, user_id: str = U, **columns: Any) -> None:
    row = {"id": user_id, "first_name": "Ada", "last_name": "Lovelace", "root_org_id": "org-1", "status": 1, **columns}
    with app.store.write() as conn:
        conn.execute(insert(users), [row])


def add_enrolment(app: bootstrap.App, user_id: str = U, batch_id: str = B, **columns: Any) -> None:
    row = {"userid": user_id, "courseid": C, "batchid": batch_id, "active": True, "status": 2, "completedon": T}
    row.update(columns)
    with app.store.write() as conn:
        conn.execute(insert(user_enrolments), [row])


def add_scores(app: bootstrap.App, aggregates: dict[str, float], user_id: str = U, agg: Any = None) -> None:
    row = {
        "activity_type": "Course",
        "activity_id": C,
        "user_id": user_id,
        "context_id": f"cb:{B}",
        "agg": agg,
        "aggregates": aggregates,
    }
    with app.store.write() as conn:
        conn.execute(insert(user_activity_agg), [row])


def learner(app: bootstrap.App, templates: dict[str, dict[str, Any]] | None = None, **enrolment: Any) -> None:
    add_batch(app, {"tmpl-1": template()} if templates is None else templates)
    add_user(app)
    add_enrolment(app, **enrolment)


def request(*user_ids: str, reissue: bool = False, batch_id: str = B, **edata: Any) -> dict[str, Any]:
    event = issue_certificate_request(course_id=C, batch_id=batch_id, user_id=U, now=T)
    event["edata"].update({"userIds": list(user_ids or [U]), "reIssue": reissue, **edata})
    return event


def run(app: bootstrap.App, *events: Any, key: str | None = None) -> Counter[str]:
    """Publish requests (on ``key``'s partition if given) and drain the job; returns its non-zero counters."""
    publish(app, "certificate", events, key=key)
    return Counter({k: v for k, v in drain(app, [JOB]).consumers[0].reference_counters().items() if v})


def generated(app: bootstrap.App) -> list[dict[str, Any]]:
    """The generate-certificate requests, learner by learner (each on its own partition)."""
    return per_learner(topic_events(app, "generate.certificate.request"))


def failures(app: bootstrap.App) -> list[str]:
    return [f["metadata"]["validation_error"] for f in topic_events(app, "issue.certificate.failed")]


def issued(app: bootstrap.App, user_id: str = U, batch_id: str = B) -> Any:
    e = user_enrolments.c
    stmt = select(e.issued_certificates).where(e.userid == user_id, e.batchid == batch_id)
    with app.store.read() as conn:
        return conn.execute(stmt).scalar_one()


# --- K1 ---


def test_k1_invalid_requests_are_skipped_and_counted(capp):
    learner(capp)
    counters = run(
        capp,
        request(action="batch-enrolment-update"),
        request(courseId=" "),
        request(userIds=[]),
        request(userIds=[U, ""]),
        request(action="ISSUE-CERTIFICATE"),
    )
    assert failures(capp) == []
    assert len(generated(capp)) == 1
    assert counters["skipped-events-count"] == 4
    assert counters["total-events-count"] == 5 and counters["success-events-count"] == 1


def test_k1_a_message_that_is_not_an_object_fails(capp):
    run(capp, "[1, 2]")
    assert failures(capp) == ["event is not a JSON object"]


def test_k1_every_user_is_processed_on_its_own(capp):
    learner(capp)
    add_user(capp, U2)
    add_enrolment(capp, U2, status=1)  # not complete: not eligible, the first user still is
    run(capp, request(U2, U))
    assert [e["edata"]["userId"] for e in generated(capp)] == [U]
    add_user(capp, "user-3")
    add_enrolment(capp, "user-3")
    run(capp, request(U, "user-3", U2))
    assert [e["edata"]["userId"] for e in generated(capp)] == [U, "user-3"]


# --- K2 ---


def test_k2_unknown_batch_or_no_svg_template_is_skipped(capp):
    learner(capp, templates={"png": template(url="https://store/cert.png")})
    add_batch(capp, None, batch_id="batch-2")
    counters = run(capp, request(), request(batch_id="batch-2"), request(batch_id="batch-unknown"))
    assert generated(capp) == [] and failures(capp) == []
    assert counters["skipped-events-count"] == 3


def test_k2_svg_templates_yield_output_in_key_order(capp):
    templates = {
        "t-b": template(identifier="t-b", name="B"),
        "t-a": template(identifier="t-a", name="A"),
        "t-c": template(identifier="t-c", name="C", url="https://store/c.pdf"),
    }
    learner(capp, templates=templates)
    run(capp, request())
    assert [e["edata"]["templateId"] for e in generated(capp)] == ["t-a", "t-b"]


# --- K3 ---


@pytest.mark.parametrize(
    "criteria",
    ["{not json", {"other": {}}, {"assessment": {"score": "60"}}, {"assessment": {"score": {">=": "50"}}}],
)
def test_k3_invalid_template_fails_the_event_before_any_output(capp, criteria):
    learner(capp, templates={"t-a": template(), "t-b": template(criteria, name="bad")})
    add_batch(capp, {"t": template()}, batch_id="batch-2")
    add_enrolment(capp, batch_id="batch-2")
    counters = run(capp, request(), request(batch_id="batch-2"))
    assert failures(capp) == ["Invalid template for batch"]
    # Nothing for the failed event; the job carries on with the next one.
    assert [e["edata"]["tag"] for e in generated(capp)] == ["batch-2"]
    assert issued(capp, batch_id=B) is None
    assert counters["failed-events-count"] == 1 and counters["success-events-count"] == 1


@pytest.mark.parametrize("key", ["user", "users"])
def test_k3_a_profile_only_template_is_valid(capp, key):
    learner(capp, templates={"t": template({key: {"rootOrgId": "org-1"}})})
    run(capp, request())
    assert failures(capp) == [] and len(generated(capp)) == 1


# --- K4 ---


def test_k4_unknown_user_fails_the_whole_event(capp):
    learner(capp)
    counters = run(capp, request(U, "ghost"))
    assert failures(capp) == ["user ghost not found"]
    # Decision: nothing of a failed event is emitted or recorded, not even for its known users.
    assert generated(capp) == [] and issued(capp) is None
    assert counters["failed-events-count"] == 1 and counters["success-events-count"] == 0


def test_k4_deleted_user_is_skipped(capp):
    learner(capp)
    add_user(capp, U2, status=2)
    add_enrolment(capp, U2)
    run(capp, request(U2, U))
    assert failures(capp) == []
    assert [e["edata"]["userId"] for e in generated(capp)] == [U]
    assert issued(capp, U2) is None


# --- K5 ---


@pytest.mark.parametrize(
    ("enrolment", "criteria"),
    [
        ({"active": False}, ENROLMENT_CRITERIA),
        ({"status": 1}, ENROLMENT_CRITERIA),
        ({"status": 1}, {"enrollment": {}}),  # default status 2
        ({"status": 2}, {"enrollment": {"status": 1}}),
    ],
)
def test_k5_enrolment_must_be_active_with_the_criterion_status(capp, enrolment, criteria):
    learner(capp, templates={"t": template(criteria)}, **enrolment)
    run(capp, request())
    assert generated(capp) == [] and failures(capp) == []


def test_k5_missing_enrolment_is_not_eligible(capp):
    add_batch(capp, {"t": template()})
    add_user(capp)
    run(capp, request())
    assert generated(capp) == [] and failures(capp) == []


def test_k5_criterion_status_other_than_two(capp):
    learner(capp, templates={"t": template({"enrollment": {"status": 1}})}, status=1)
    run(capp, request())
    assert len(generated(capp)) == 1


def test_k5_a_second_run_issues_nothing_new(capp):
    learner(capp)
    run(capp, request())
    [first] = generated(capp)
    entries = issued(capp)
    assert entries == [
        {
            "name": "Course completion",
            "identifier": first["mid"].removeprefix("LMS."),
            "lastIssuedOn": DAY_UTC,
            "templateUrl": SVG,
            "type": "Course completion",
        }
    ]
    counters = run(capp, request())
    assert len(generated(capp)) == 1 and issued(capp) == entries
    assert counters["success-events-count"] == 1 and counters["generate-certificate-events-count"] == 0


def test_k5_same_name_issued_elsewhere_blocks_ignoring_case(capp):
    learner(capp, issued_certificates=[{"name": "COURSE COMPLETION", "identifier": "old-1"}])
    run(capp, request())
    assert generated(capp) == []


def test_k5_reissue_carries_old_id_and_replaces_the_entry(capp):
    other = {"name": "Other", "identifier": "x-1"}
    learner(capp, issued_certificates=[other, {"name": "course completion", "identifier": "old-1", "token": "K"}])
    capp.clock.now = T + 86_400_000
    run(capp, request(reissue=True))
    [event] = generated(capp)
    assert event["edata"]["oldId"] == "old-1"
    assert list(event["edata"]).index("oldId") == list(event["edata"]).index("svgTemplate") + 1
    new_id = event["mid"].removeprefix("LMS.")
    assert issued(capp) == [
        other,
        {
            "name": "Course completion",
            "identifier": new_id,
            "lastIssuedOn": "2023-11-15",
            "templateUrl": SVG,
            "type": "Course completion",
        },
    ]
    run(capp, request(reissue=True))
    assert generated(capp)[1]["edata"]["oldId"] == new_id


def test_k5_reissue_without_a_previous_certificate_has_no_old_id(capp):
    learner(capp)
    run(capp, request(reissue=True))
    [event] = generated(capp)
    assert "oldId" not in event["edata"]


def test_k5_issued_date_is_completedon_in_the_timezone(capp):
    kolkata = with_settings(capp, timezone="Asia/Kolkata")
    learner(kolkata)
    run(kolkata, request())
    [event] = generated(kolkata)
    assert event["edata"]["issuedDate"] == "2023-11-15"


@pytest.mark.parametrize("criteria", [ENROLMENT_CRITERIA, {"user": {"rootOrgId": "org-1"}}])
def test_k5_no_completion_date_fails_the_event(capp, criteria):
    learner(capp, templates={"t": template(criteria)}, completedon=None)
    run(capp, request())
    assert failures(capp) == ["issued date unavailable"] and generated(capp) == []


def test_k5_without_enrolment_criterion_the_row_is_still_needed_for_the_date(capp):
    add_batch(capp, {"t": template({"user": {}})})
    add_user(capp)
    run(capp, request())
    assert failures(capp) == ["issued date unavailable"]


# --- K6 ---

ASSESSMENT = {"enrollment": {"status": 2}, "assessment": {"score": {">=": 60}}}
SCORE_PROPS = '{"assessment":["score"]}'


@pytest.mark.parametrize(("threshold", "passes"), [({">=": 66.5}, True), ({">": 66.5}, False), (66.5, True)])
def test_k6_course_score_against_the_threshold(capp, threshold, passes):
    template_ = template({"assessment": {"score": threshold}}, additionalProps=SCORE_PROPS)
    learner(capp, templates={"t": template_})
    add_scores(capp, {f"score:{A1}": 1.33, f"max_score:{A1}": 2.0})
    run(capp, request())
    events = generated(capp)
    assert len(events) == int(passes)
    if passes:
        assert events[0]["edata"]["related"]["assessment"] == {"score": {A1: 66.5}}


def test_k6_aggregates_win_over_agg_and_other_content_types_are_ignored(capp):
    load(capp, course(C, [A1]) | _with_resource())
    learner(capp, templates={"t": template(ASSESSMENT, additionalProps=SCORE_PROPS)})
    add_scores(capp, {f"score:{A1}": 0.7, "score:do_r1": 1.0}, agg={f"score:{A1}": 0, f"max_score:{A1}": 1})
    run(capp, request())
    [event] = generated(capp)
    assert event["edata"]["related"]["assessment"] == {"score": {A1: 70.0}}


def test_k6_missing_course_row_scores_zero(capp):
    learner(capp, templates={"t": template({"assessment": {"score": {"<": 1}}}, additionalProps=SCORE_PROPS)})
    run(capp, request())
    [event] = generated(capp)
    assert event["edata"]["related"]["assessment"] == {"score": {}}


def test_k6_related_score_is_the_per_content_percentage_map(capp):
    """Regression: ``related.assessment.score`` was the course score (one number) instead of the K6.2 map."""
    hierarchy = course(C, [A1, "do_a2", "do_a3"])
    load(capp, hierarchy | {"children": [*hierarchy["children"], *_with_resource()["children"][1:]]})
    learner(capp, templates={"t": template({"assessment": {"score": {">=": 75}}}, additionalProps=SCORE_PROPS)})
    metrics = {f"score:{A1}": 1.33, f"max_score:{A1}": 2.0, "score:do_a2": 3.0, "max_score:do_a2": 4.0}
    # do_a3 has max 0 (left out), do_r1 is a Resource (left out), do_x is not in the course (unknown type).
    metrics |= {"score:do_a3": 1.0, "max_score:do_a3": 0.0, "score:do_r1": 1.0, "score:do_x": 5.0}
    add_scores(capp, metrics)
    run(capp, request())
    [event] = generated(capp)
    # The threshold compares the best percentage (75.0); the map carries every counted content.
    assert event["edata"]["related"] == {
        "batchId": B,
        "courseId": C,
        "type": "Course completion",
        "assessment": {"score": {A1: 66.5, "do_a2": 75.0}},
    }


def test_k6_without_score_prop_no_related_assessment(capp):
    learner(capp, templates={"t": template(ASSESSMENT)})
    add_scores(capp, {f"score:{A1}": 1.0})
    run(capp, request())
    [event] = generated(capp)
    assert "assessment" not in event["edata"]["related"]


# --- K7 ---


@pytest.mark.parametrize(("criterion", "passes"), [({"rootOrgId": "org-1"}, True), ({"rootOrgId": "org-2"}, False)])
def test_k7_user_criterion(capp, criterion, passes):
    learner(capp, templates={"t": template({"enrollment": {}, "user": criterion})})
    run(capp, request())
    assert len(generated(capp)) == int(passes)


# --- K8 ---


def test_k8_related_enrollment_copies_lower_cased_columns(capp):
    props = '{"enrollment":["completedOn","status","progress"]}'
    learner(capp, templates={"t": template(additionalProps=props)}, progress=3)
    run(capp, request())
    [event] = generated(capp)
    assert event["edata"]["related"] == {
        "batchId": B,
        "courseId": C,
        "type": "Course completion",
        "enrollment": {"completedOn": T, "status": 2, "progress": 3},
    }


# --- K9 and §3.4 ---


def test_k9_generate_certificate_request_has_the_exact_shape(capp):
    learner(capp)
    counters = run(capp, request())
    [event] = generated(capp)
    mid = event.pop("mid")
    assert re.fullmatch(r"LMS\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", mid)
    assert event == {
        "eid": "BE_JOB_REQUEST",
        "ets": T,
        "actor": {"id": "Certificate Generator", "type": "System"},
        "context": {"pdata": {"ver": "1.0", "id": "org.sunbird.learning.platform"}},
        "object": {"id": U, "type": "GenerateCertificate"},
        "edata": {
            "issuedDate": DAY_UTC,
            "data": [{"recipientName": "Ada Lovelace", "recipientId": U}],
            "criteria": {"narrative": "Course completion"},
            "svgTemplate": "https://store/https://cloud/store/cert.svg",
            "templateId": "tmpl-1",
            "userId": U,
            "orgId": "org-1",
            "issuer": {"name": "Org", "url": "https://org"},
            "signatoryList": [{"name": "CEO", "id": "s1"}],
            "courseName": C,
            "basePath": "https://learn/certs",
            "related": {"batchId": B, "courseId": C, "type": "Course completion"},
            "name": "Course completion",
            "tag": B,
        },
    }
    assert list(event["edata"]) == [
        "issuedDate",
        "data",
        "criteria",
        "svgTemplate",
        "templateId",
        "userId",
        "orgId",
        "issuer",
        "signatoryList",
        "courseName",
        "basePath",
        "related",
        "name",
        "tag",
    ]
    assert counters == {
        "db-read-count": 4,
        "generate-certificate-events-count": 1,
        "success-events-count": 1,
        "total-events-count": 1,
    }


def test_k9_unknown_course_name_is_null(capp):
    add_batch(capp, {"t": template()})
    add_user(capp)
    add_enrolment(capp)
    with capp.store.write() as conn:
        conn.execute(course_batch.update().values(courseid="do_other"))
        conn.execute(user_enrolments.update().values(courseid="do_other"))
    event = issue_certificate_request(course_id="do_other", batch_id=B, user_id=U, now=T)
    run(capp, event)
    [out] = generated(capp)
    assert out["edata"]["courseName"] is None


# --- batching ---


def _scenario(app: bootstrap.App) -> list[Any]:
    """Requests whose outcome depends on earlier ones in the same batch (issued certificates)."""
    learner(app)
    add_user(app, U2)
    add_enrolment(app, U2)
    return [request(), request(U2, U), request(reissue=True), "oops", request(U, "ghost"), request(U2)]


def _outcome(app: bootstrap.App) -> tuple[list[Any], list[str], list[Any]]:
    events = [{k: v for k, v in e.items() if k != "mid"} for e in generated(app)]
    for e in events:
        e["edata"].pop("oldId", None)
    entries = [[{k: v for k, v in c.items() if k != "identifier"} for c in issued(app, u)] for u in (U, U2)]
    return events, failures(app), entries


@pytest.mark.parametrize("batch_size", [500, 1])
def test_batch_equals_one_by_one_with_a_constant_number_of_reads(capp, batch_size):
    app = with_settings(capp, worker={"batch_size": batch_size})
    # One partition: the outcome of a request depends on the requests before it, whichever learners they name.
    counters = run(app, *_scenario(app), key=B)
    events, failed, entries = _outcome(app)
    assert [(e["edata"]["userId"], e["edata"]["name"]) for e in events] == [  # in order for each learner
        (U, "Course completion"),
        (U, "Course completion"),
        (U2, "Course completion"),
    ]
    assert ["oldId" in e["edata"] for e in generated(app)] == [False, True, False]
    assert sorted(failed) == ["event is not a JSON object", "user ghost not found"]  # on two partitions
    entry = {"name": "Course completion", "lastIssuedOn": DAY_UTC, "templateUrl": SVG, "type": "Course completion"}
    assert entries == [[entry], [entry]]
    # Five requests in one batch read as much as one alone (templates, users, enrolments, course names).
    assert counters["db-read-count"] == (4 if batch_size > 1 else 4 * 5)


def _with_resource() -> dict[str, Any]:
    """A course with the SelfAssess leaf and a Resource leaf `do_r1`."""
    leaf = {"identifier": "do_r1", "name": "r1", "mimeType": "video/mp4", "contentType": "Resource"}
    return {"children": [*course(C, [A1])["children"], leaf]}
