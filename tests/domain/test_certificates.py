"""SPEC §4.4 certificate rules that need no database: K1 validity, K3 templates, K5–K8 criteria, §3.4 shape."""

from __future__ import annotations

import json

import pytest

from learnagg.domain.assess_event import InvalidEvent
from learnagg.domain.certificate_templates import ScoreRule, parse_template, svg_templates
from learnagg.domain.certificates import (
    best_percentage,
    content_percentages,
    course_score,
    enrollment_eligibility,
    evaluate,
    issued_certificate,
    parse_certificate_request,
    record_issued,
    related_enrollment,
    user_matches,
    user_profile,
)

SVG = "https://store/CLOUD_BASE_PATH/cert.svg"


def request(**edata: object) -> dict:
    base = {"action": "issue-certificate", "courseId": "c1", "batchId": "b1", "userIds": ["u1"], "reIssue": False}
    return {"eid": "BE_JOB_REQUEST", "edata": {**base, **edata}}


def template(criteria: object, **fields: object) -> dict:
    text = criteria if isinstance(criteria, str) else json.dumps(criteria)
    return {"identifier": "t1", "name": "Completion", "url": SVG, "criteria": text, **fields}


def score_rule(score: object) -> ScoreRule:
    parsed = parse_template("t1", template({"assessment": {"score": score}}))
    assert parsed is not None and parsed.score is not None
    return parsed.score


# --- K1 ---


def test_k1_valid_request_keeps_each_distinct_user_in_order():
    req = parse_certificate_request(request(userIds=["u2", "u1", "u2"], action="ISSUE-Certificate", reIssue=True))
    assert (req.valid, req.course_id, req.batch_id, req.user_ids, req.reissue) == (True, "c1", "b1", ("u2", "u1"), True)


@pytest.mark.parametrize(
    "edata",
    [
        {"action": "batch-enrolment-update"},
        {"action": None},
        {"courseId": " "},
        {"batchId": None},
        {"userIds": []},
        {"userIds": "u1"},
        {"userIds": ["u1", ""]},
        {"userIds": ["u1", 7]},
    ],
)
def test_k1_invalid_requests_are_skipped_not_failed(edata):
    assert parse_certificate_request(request(**edata)).valid is False


def test_k1_missing_edata_is_skipped_and_a_non_object_fails():
    assert parse_certificate_request({"eid": "x"}).valid is False
    with pytest.raises(InvalidEvent, match="event is not a JSON object"):
        parse_certificate_request([1])


def test_k1_only_json_true_reissues():
    assert parse_certificate_request(request(reIssue="true")).reissue is False


# --- K2, K3 ---


def test_k2_keeps_svg_templates_in_key_order():
    templates = {"b": template({"user": {}}), "a": template({"user": {}}), "c": template({"user": {}}, url="x.png")}
    assert [k for k, _ in svg_templates(templates)] == ["a", "b"]
    assert svg_templates(None) == []


@pytest.mark.parametrize(
    "criteria",
    [
        {"enrollment": {"status": 2}},
        {"assessment": {"score": 60}},
        {"assessment": {"score": {">=": 60.5}}},
        {"assessment": {"score": {}}},
        {"user": {"rootOrgId": "o1"}},
        {"users": {"rootOrgId": "o1"}},
    ],
)
def test_k3_valid_templates(criteria):
    assert parse_template("t1", template(criteria)) is not None


@pytest.mark.parametrize(
    ("criteria", "fields"),
    [
        ("{not json", {}),
        ({"other": 1}, {}),
        ({"user": None}, {}),
        ([1], {}),
        ({"assessment": {"score": "60"}}, {}),
        ({"assessment": {"score": {">=": "60"}}}, {}),
        ({"assessment": {"score": {">=": True}}}, {}),
        ({"assessment": {"score": {">=": 60, "<": "x"}}}, {}),
        ({"assessment": {}}, {}),
        ({"enrollment": 2}, {}),
        ({"user": "o1"}, {}),
        ({"user": {}}, {"url": " "}),
        ({"user": {}}, {"issuer": "{bad"}),
        ({"user": {}}, {"signatoryList": "{}"}),
        ({"user": {}}, {"additionalProps": '{"enrollment": "completedOn"}'}),
    ],
)
def test_k3_invalid_templates(criteria, fields):
    assert parse_template("t1", template(criteria, **fields)) is None


def test_k3_template_fields_are_parsed_from_json_text():
    parsed = parse_template(
        "key-1",
        template(
            {"user": {"rootOrgId": "o1"}},
            identifier="",
            issuer='{"name":"Org"}',
            signatoryList='[{"name":"S"}]',
            additionalProps='{"enrollment":["completedOn"],"assessment":["score"]}',
        ),
    )
    assert parsed is not None
    assert (parsed.identifier, parsed.issuer, parsed.signatory_list) == ("key-1", {"name": "Org"}, [{"name": "S"}])
    assert (parsed.enrollment_props, parsed.assessment_props) == (("completedOn",), ("score",))


def test_k3_user_criterion_is_read_from_user_before_users():
    parsed = parse_template("t1", template({"user": {"a": 1}, "users": {"b": 2}}))
    assert parsed is not None and parsed.user == {"a": 1}


# --- K6.4 operators ---


@pytest.mark.parametrize(
    ("op", "threshold", "score", "expected"),
    [
        ("=", 60, 60.0, True),
        ("EQ", 60, 60.0, True),
        ("eq", 60, 59.0, False),
        ("!=", 60, 59.0, True),
        ("ne", 60, 60.0, False),
        (">", 60, 60.0, False),
        (">", 60, 60.5, True),
        (">=", 60, 60.0, True),
        ("<", 60, 59.9, True),
        ("<", 60, 60.0, False),
        ("<=", 60, 60.0, True),
        ("<=", 60, 60.1, False),
        (">=", 66.5, 66.5, True),
        (">", 0.25, 0.3, True),
        ("NE", 60, 10.0, False),
        ("=>", 60, 90.0, False),
    ],
)
def test_k6_operators(op, threshold, score, expected):
    assert score_rule({op: threshold}).passes(score) is expected


def test_k6_bare_number_means_equality():
    assert score_rule(60).passes(60.0) and not score_rule(60).passes(61.0)
    assert score_rule(66.5).passes(66.5)


def test_k6_only_the_first_entry_counts():
    rule = score_rule({">=": 50, "<": 10})
    assert rule.passes(70.0)
    assert not score_rule({"<": 10, ">=": 50}).passes(70.0)


def test_k6_empty_map_is_false():
    assert not score_rule({}).passes(0.0)


# --- K6.2–3 course score ---

TYPES = {"a1": "SelfAssess", "a2": "SelfAssess", "r1": "Resource"}


def test_k6_course_score_is_the_best_percentage_of_supported_contents():
    metrics = {"score:a1": 1.33, "max_score:a1": 2.0, "score:a2": 3.0, "max_score:a2": 4.0, "score:r1": 9.0}
    assert course_score(metrics, TYPES, ["SelfAssess"]) == 75.0
    assert course_score(metrics, TYPES, ["Resource"]) == 900.0  # max defaults to 1.0


def test_k6_max_defaults_to_one_and_zero_max_or_unknown_type_is_ignored():
    assert course_score({"score:a1": 0.5}, TYPES, ["SelfAssess"]) == 50.0
    assert course_score({"score:a1": 1.0, "max_score:a1": 0.0}, TYPES, ["SelfAssess"]) == 0.0
    assert course_score({"score:x": 1.0}, TYPES, ["SelfAssess"]) == 0.0
    assert course_score({"completedCount": 3.0}, TYPES, ["SelfAssess"]) == 0.0


def test_k6_content_type_must_match_exactly():
    assert course_score({"score:a1": 1.0}, {"a1": "selfassess"}, ["SelfAssess"]) == 0.0


def test_k6_percentages_by_content_are_the_related_map():
    metrics = {"score:a2": 3.0, "max_score:a2": 4.0, "score:a1": 1.33, "max_score:a1": 2.0, "score:r1": 9.0}
    pct = content_percentages(metrics, TYPES, ["SelfAssess"])
    assert pct == {"a1": 66.5, "a2": 75.0} and list(pct) == ["a1", "a2"]  # content id order
    assert content_percentages({"score:a1": 1.0, "max_score:a1": 0.0}, TYPES, ["SelfAssess"]) == {}
    assert best_percentage(pct) == 75.0 and best_percentage({}) == 0.0


# --- K5 ---

ROW = {"active": True, "status": 2, "completedon": 1, "issued_certificates": None}


def test_k5_enrolment_must_exist_be_active_and_have_the_criterion_status():
    assert enrollment_eligibility({"status": 2}, ROW, "Completion", False).eligible
    assert enrollment_eligibility({}, ROW, "Completion", False).eligible  # default status 2
    assert not enrollment_eligibility({}, None, "Completion", False).eligible
    assert not enrollment_eligibility({}, {**ROW, "active": False}, "Completion", False).eligible
    assert not enrollment_eligibility({}, {**ROW, "active": None}, "Completion", False).eligible
    assert not enrollment_eligibility({"status": 1}, ROW, "Completion", False).eligible
    assert enrollment_eligibility({"status": 1}, {**ROW, "status": 1}, "Completion", False).eligible
    assert not enrollment_eligibility({"status": "2"}, ROW, "Completion", False).eligible
    assert enrollment_eligibility(None, None, "Completion", False).eligible  # no criterion


def test_k5_issued_certificate_blocks_unless_reissue_which_gives_old_id():
    row = {
        **ROW,
        "issued_certificates": [{"name": "other", "identifier": "x"}, {"name": "COMPLETION", "identifier": "c"}],
    }
    assert not enrollment_eligibility({}, row, "Completion", False).eligible
    again = enrollment_eligibility({}, row, "Completion", True)
    assert (again.eligible, again.old_id) == (True, "c")
    assert enrollment_eligibility({}, ROW, "Completion", True).old_id is None


# --- K7, K8 ---

USER = {"id": "u1", "first_name": "Ada", "last_name": None, "root_org_id": "o1", "status": 1, "user_type": "student"}


def test_k7_user_criterion_compares_camel_case_fields():
    profile = user_profile(USER)
    assert profile["rootOrgId"] == "o1" and profile["displayName"] == "Ada"
    assert user_matches({"rootOrgId": "o1", "userType": "student"}, profile)
    assert not user_matches({"rootOrgId": "o2"}, profile)
    assert not user_matches({"status": True}, profile)
    assert not user_matches({"unknownField": "x"}, profile)
    assert user_matches({}, profile)


def test_k8_related_enrollment_reads_lower_cased_columns():
    assert related_enrollment(["completedOn", "status", "nope"], ROW) == {"completedOn": 1, "status": 2, "nope": None}


def test_evaluate_needs_every_criterion_and_adds_related_extras():
    parsed = parse_template(
        "t1",
        template(
            {"enrollment": {"status": 2}, "assessment": {"score": {">=": 50}}, "user": {"rootOrgId": "o1"}},
            additionalProps='{"enrollment":["completedOn"],"assessment":["score"]}',
        ),
    )
    assert parsed is not None
    profile = user_profile(USER)
    pct = {"a1": 66.5, "a2": 40.0}
    passed = evaluate(parsed, enrolment=ROW, reissue=False, percentages=pct, profile=profile)
    assert passed is not None
    assert passed.related == {"enrollment": {"completedOn": 1}, "assessment": {"score": {"a1": 66.5, "a2": 40.0}}}
    assert evaluate(parsed, enrolment=ROW, reissue=False, percentages={"a1": 49.0}, profile=profile) is None
    assert evaluate(parsed, enrolment=ROW, reissue=False, percentages={}, profile=profile) is None
    other = {**profile, "rootOrgId": "x"}
    assert evaluate(parsed, enrolment=ROW, reissue=False, percentages=pct, profile=other) is None
    assert evaluate(parsed, enrolment={**ROW, "status": 1}, reissue=False, percentages=pct, profile=profile) is None


# --- issued certificates ---


def test_record_issued_appends_or_replaces_the_same_name():
    entry = issued_certificate(name="Completion", identifier="new", last_issued_on="2023-11-14", template_url=SVG)
    assert entry == {
        "name": "Completion",
        "identifier": "new",
        "lastIssuedOn": "2023-11-14",
        "templateUrl": SVG,
        "type": "Completion",
    }
    assert record_issued(None, entry) == [entry]
    old = [{"name": "a"}, {"name": "completion", "identifier": "old"}, {"name": "b"}]
    assert record_issued(old, entry) == [{"name": "a"}, entry, {"name": "b"}]
