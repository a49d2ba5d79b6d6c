"""Group aggregate APIs: `/v1/group/activity/agg` and `/v1/group/agg` (SPEC §5.4, §5.5, §7 #7, #14b)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.entrypoints.api.group_data import (
    T_DONE,
    add_enrolment,
    add_group,
    add_member,
    add_row,
    add_user,
    scored,
    spec_example,
)
from tests.entrypoints.api.support import Api, error, ok
from tests.support import course, load

ACTIVITY = "/v1/group/activity/agg"
GROUP = "/v1/group/agg"
# The course of the examples: its batch rows are not loaded, so no batch is listed.
BASICS = {"name": "Basics", "status": "Live", "leafNodesCount": 1, "batches": []}
EXAMPLE_REQUEST = {"groupId": "g-1", "activityId": "do_c1", "activityType": "Course", "includeAllMembers": False}


# -- /v1/group/activity/agg ----------------------------------------------------------------------------------


def test_activity_agg_reproduces_the_spec_example(api: Api) -> None:
    spec_example(api.app)
    result = ok(api.as_user("u-1").post(ACTIVITY, EXAMPLE_REQUEST))
    assert result == {
        "groupId": "g-1",
        "activity": {
            "id": "do_c1",
            "type": "Course",
            "agg": [{"metric": "enrolmentCount", "lastUpdatedOn": 1637748930000, "value": 2}],
            "metadata": BASICS,
        },
        "members": [
            {
                "userId": "u-1",
                "name": "Asha Rao",
                "role": "admin",
                "status": "active",
                "createdBy": "u-1",
                "batchId": "b-1",
                "agg": [
                    {"metric": "attempts_count:do_a1", "value": 1.0, "lastUpdatedOn": 1637748000000},
                    {"metric": "completedCount", "value": 3.0, "lastUpdatedOn": 1637748930000},
                    {"metric": "max_score:do_a1", "value": 2.0, "lastUpdatedOn": 1637748000000},
                    {"metric": "score:do_a1", "value": 1.33, "lastUpdatedOn": 1637748000000},
                ],
            },
            {
                "userId": "u-2",
                "name": "Ravi",
                "role": "member",
                "status": "active",
                "createdBy": "u-1",
                "batchId": "b-1",
                "agg": [{"metric": "completedCount", "value": 1.0, "lastUpdatedOn": None}],
            },
        ],
    }


def test_activity_agg_doubles_keep_their_fraction_in_the_body(api: Api) -> None:
    spec_example(api.app)
    body = api.as_user("u-1").post(ACTIVITY, EXAMPLE_REQUEST).text
    assert '"value":3.0' in body and '"value":2}' in body  # doubles as doubles, enrolmentCount an integer (C4)


@pytest.mark.parametrize(
    ("request_body", "code", "message"),
    [
        ({}, "GROUP_ID_MISSING", "GroupId is mandatory."),
        ({"activityId": "do_c1", "activityType": "Course", "groupId": " "}, "GROUP_ID_MISSING", None),
        ({"groupId": "g-1", "activityType": "Course"}, "ACTIVITY_ID_MISSING", "ActivityId is mandatory."),
        ({"groupId": "g-1", "activityId": "do_c1"}, "ACTIVITY_TYPE_MISSING", "ActivityType is mandatory."),
        ({"groupId": "g-1", "includeAllMembers": "yes"}, "ACTIVITY_ID_MISSING", None),
        (
            {"groupId": "g-1", "activityId": "do_c1", "activityType": "Course", "includeAllMembers": "yes"},
            "DATA_TYPE_ERROR",
            "Data type of includeAllMembers should be Boolean",
        ),
        ({"groupId": 7, "activityId": "do_c1", "activityType": "Course"}, "DATA_TYPE_ERROR", None),
    ],
)
def test_activity_agg_validation_order(api: Api, request_body: Any, code: str, message: str | None) -> None:
    spec_example(api.app)
    error(api.as_user("u-1").post(ACTIVITY, request_body), 400, code, message)


def test_a_body_without_request_counts_as_empty(api: Api) -> None:
    spec_example(api.app)
    error(api.as_user("u-1").call("POST", ACTIVITY, {}), 400, "GROUP_ID_MISSING", "GroupId is mandatory.")
    error(api.as_user("u-1").call("POST", GROUP, {"request": None}), 400, "GROUP_ID_MISSING", "GroupId is mandatory.")


def test_unknown_group_is_404(api: Api) -> None:
    spec_example(api.app)
    request = {**EXAMPLE_REQUEST, "groupId": "g-404"}
    error(api.as_user("u-1").post(ACTIVITY, request), 404, "GROUP_NOT_FOUND", "Group does not exist.")
    error(api.as_admin().post(GROUP, {"groupId": "g-404"}), 404, "GROUP_NOT_FOUND", "Group does not exist.")


def test_no_token_is_401(api: Api) -> None:
    spec_example(api.app)
    error(api.post(ACTIVITY, EXAMPLE_REQUEST), 401, "UNAUTHORIZED_USER", "You are not authorized.")
    error(api.post(GROUP, {"groupId": "g-1"}), 401, "UNAUTHORIZED_USER", "You are not authorized.")


def test_non_member_inactive_and_invited_members_are_403(api: Api) -> None:
    spec_example(api.app)
    add_member(api.app, "u-9", status="inactive")
    add_member(api.app, "u-7", status="invited")  # has not accepted: not an active member
    add_group(api.app, "g-2")
    add_member(api.app, "u-8", group_id="g-2")
    for user in ("u-7", "u-8", "u-9", "stranger"):
        error(api.as_user(user).post(ACTIVITY, EXAMPLE_REQUEST), 403, "UNAUTHORIZED_USER", "You are not authorized.")
        error(api.as_user(user).post(GROUP, {"groupId": "g-1"}), 403, "UNAUTHORIZED_USER")


def test_platform_admin_reads_any_group(api: Api) -> None:
    spec_example(api.app)
    assert [m["userId"] for m in ok(api.as_admin().post(ACTIVITY, EXAMPLE_REQUEST))["members"]] == ["u-1", "u-2"]
    # The role can also come from the users table.
    add_user(api.app, "auditor", "Audit", None, roles=["PLATFORM_ADMIN"])
    assert ok(api.as_user("auditor").post(GROUP, {"groupId": "g-1"}))["groupId"] == "g-1"


def test_a_parent_reads_as_the_managed_member(api: Api) -> None:
    spec_example(api.app)
    add_user(api.app, "parent", "Pat", None)
    add_user(api.app, "u-3", "Kid", None, managed_by="parent")
    add_member(api.app, "u-3")
    parent = api.as_user("parent")
    error(parent.post(ACTIVITY, EXAMPLE_REQUEST), 403, "UNAUTHORIZED_USER")
    ok(parent.post(ACTIVITY, EXAMPLE_REQUEST, headers={"x-authenticated-for": "u-3"}))


@pytest.mark.parametrize("status", ["inactive", "invited"])
def test_inactive_and_invited_members_rows_are_not_read(api: Api, status: str) -> None:
    spec_example(api.app)
    add_member(api.app, "u-3", status=status)
    add_row(api.app, "u-3", aggregates={"completedCount": 9.0})
    result = ok(api.as_user("u-1").post(ACTIVITY, {**EXAMPLE_REQUEST, "includeAllMembers": True}))
    assert [m["userId"] for m in result["members"]] == ["u-1", "u-2"]
    assert result["activity"]["agg"][0]["value"] == 2


def test_aggregates_win_over_legacy_agg(api: Api) -> None:
    add_group(api.app)
    add_member(api.app, "u-1")
    add_row(
        api.app,
        "u-1",
        agg={"completedCount": 1, "score:do_a1": 5},
        aggregates={"score:do_a1": 1.5},
        stamps={"score:do_a1": 10},
    )
    (member,) = ok(api.as_user("u-1").post(ACTIVITY, EXAMPLE_REQUEST))["members"]
    assert member["name"] == ""  # no users row
    assert member["agg"] == [
        {"metric": "completedCount", "value": 1.0, "lastUpdatedOn": None},
        {"metric": "score:do_a1", "value": 1.5, "lastUpdatedOn": 10},
    ]


def test_null_maps_count_as_empty(api: Api) -> None:
    add_group(api.app)
    add_member(api.app, "u-1")
    add_member(api.app, "u-2")
    add_row(api.app, "u-1")  # every map SQL NULL
    with api.app.store.write() as conn:  # JSON null in every map
        conn.execute(
            text(
                "INSERT INTO user_activity_agg (activity_type, activity_id, user_id, context_id, agg, aggregates,"
                " agg_last_updated) VALUES ('Course', 'do_c1', 'u-2', 'cb:b-1', 'null', 'null', 'null')"
            )
        )
    result = ok(api.as_user("u-1").post(ACTIVITY, EXAMPLE_REQUEST))
    assert [(m["userId"], m["batchId"], m["agg"]) for m in result["members"]] == [
        ("u-1", "b-1", []),
        ("u-2", "b-1", []),
    ]
    # Rows exist, so both count as enrolled; no metric has a time, so lastUpdatedOn is now.
    assert result["activity"]["agg"] == [{"metric": "enrolmentCount", "lastUpdatedOn": api.app.clock(), "value": 2}]


def test_members_without_rows_are_omitted_unless_include_all_members(api: Api) -> None:
    spec_example(api.app)
    add_member(api.app, "u-0")
    add_user(api.app, "u-0", None, "Nair")
    members = ok(api.as_user("u-1").post(ACTIVITY, EXAMPLE_REQUEST))["members"]
    assert [m["userId"] for m in members] == ["u-1", "u-2"]
    members = ok(api.as_user("u-1").post(ACTIVITY, {**EXAMPLE_REQUEST, "includeAllMembers": True}))["members"]
    assert [m["userId"] for m in members] == ["u-0", "u-1", "u-2"]
    assert members[0] == {
        "userId": "u-0",
        "name": "Nair",
        "role": "member",
        "status": "active",
        "createdBy": "u-1",
        "batchId": None,
        "agg": [],
    }


def test_a_member_in_two_batches_has_two_entries(api: Api) -> None:
    spec_example(api.app)
    add_row(api.app, "u-1", "a-0", aggregates={"completedCount": 1.0}, stamps={"completedCount": T_DONE + 5})
    result = ok(api.as_user("u-1").post(ACTIVITY, EXAMPLE_REQUEST))
    assert [(m["userId"], m["batchId"]) for m in result["members"]] == [("u-1", "a-0"), ("u-1", "b-1"), ("u-2", "b-1")]
    # enrolmentCount counts users, not rows; lastUpdatedOn is the latest metric time in any row.
    assert result["activity"]["agg"] == [{"metric": "enrolmentCount", "lastUpdatedOn": T_DONE + 5, "value": 2}]


def test_rows_are_read_as_course_whatever_activity_type_says(api: Api) -> None:
    spec_example(api.app)
    result = ok(api.as_user("u-1").post(ACTIVITY, {**EXAMPLE_REQUEST, "activityType": "Module"}))
    assert result["activity"]["type"] == "Module" and len(result["members"]) == 2


def test_failed_row_read_is_err_calling_group_api(api: Api) -> None:
    spec_example(api.app)
    with api.app.store.write() as conn:
        conn.execute(text("DROP TABLE user_activity_agg"))
    message = "Error while calling group api."
    error(api.as_user("u-1").post(ACTIVITY, EXAMPLE_REQUEST), 500, "ERR_CALLING_GROUOP_API", message)
    error(api.as_user("u-1").post(GROUP, {"groupId": "g-1"}), 500, "ERR_CALLING_GROUOP_API", message)


# -- /v1/group/agg -------------------------------------------------------------------------------------------

SPEC_GROUP_AGG = {
    "groupId": "g-1",
    "activity": [
        {
            "id": "do_c1",
            "type": "Course",
            "name": "Basics",
            "agg": [
                {"metric": "enrolmentCount", "value": 2, "lastUpdatedOn": 1637748930000},
                {"metric": "completedCount", "value": 1, "lastUpdatedOn": 1637748930000},
                {"metric": "completionPercentage", "value": 50.0, "lastUpdatedOn": 1637748930000},
                {"metric": "score:do_a1:count", "value": 1, "lastUpdatedOn": 1637748000000},
                {"metric": "score:do_a1:min", "value": 1.33, "lastUpdatedOn": 1637748000000},
                {"metric": "score:do_a1:max", "value": 1.33, "lastUpdatedOn": 1637748000000},
                {"metric": "score:do_a1:avg", "value": 1.33, "lastUpdatedOn": 1637748000000},
                {"metric": "score:do_a1:avgPercentage", "value": 66.5, "lastUpdatedOn": 1637748000000},
            ],
            "metadata": BASICS,
        }
    ],
}


def test_group_agg_reproduces_the_spec_example(api: Api) -> None:
    spec_example(api.app)
    assert ok(api.as_user("u-2").post(GROUP, {"groupId": "g-1"})) == SPEC_GROUP_AGG
    request = {"groupId": "g-1", "activities": [{"id": "do_c1", "type": "Course"}]}
    assert ok(api.as_user("u-2").post(GROUP, request)) == SPEC_GROUP_AGG


@pytest.mark.parametrize(
    ("request_body", "code", "message"),
    [
        ({}, "GROUP_ID_MISSING", "GroupId is mandatory."),
        ({"activities": "do_c1"}, "GROUP_ID_MISSING", "GroupId is mandatory."),
        ({"groupId": "g-1", "activities": "do_c1"}, "DATA_TYPE_ERROR", "Data type of activities should be List"),
        ({"groupId": "g-1", "activities": [{"type": "Course"}]}, "ACTIVITY_ID_MISSING", "ActivityId is mandatory."),
        ({"groupId": "g-1", "activities": [{"id": "do_c1"}]}, "ACTIVITY_TYPE_MISSING", "ActivityType is mandatory."),
        (
            {"groupId": "g-1", "activities": [{"id": "do_c1", "type": "Course"}, {"type": "Course"}], "fields": 1},
            "ACTIVITY_ID_MISSING",
            None,
        ),
        ({"groupId": "g-1", "activities": [{"id": "do_c1", "type": ""}], "fields": 1}, "ACTIVITY_TYPE_MISSING", None),
        ({"groupId": "g-1", "fields": "score"}, "DATA_TYPE_ERROR", "Data type of fields should be List"),
        ({"groupId": "g-1", "fields": ["score", 2]}, "DATA_TYPE_ERROR", None),
    ],
)
def test_group_agg_validation_order(api: Api, request_body: Any, code: str, message: str | None) -> None:
    spec_example(api.app)
    error(api.as_user("u-1").post(GROUP, request_body), 400, code, message)


@pytest.mark.parametrize(
    ("fields", "metrics"),
    [
        (["completedCount"], ["completedCount"]),
        (["score"], [f"score:do_a1:{s}" for s in ("count", "min", "max", "avg", "avgPercentage")]),
        (["score:do_a1:avg", "enrolmentCount"], ["enrolmentCount", "score:do_a1:avg"]),  # avgPercentage is not avg:…
        (["score:do_a"], []),
        ([], []),
    ],
)
def test_fields_filter(api: Api, fields: list[str], metrics: list[str]) -> None:
    spec_example(api.app)
    (activity,) = ok(api.as_user("u-1").post(GROUP, {"groupId": "g-1", "fields": fields}))["activity"]
    assert [m["metric"] for m in activity["agg"]] == metrics


def test_best_score_per_member_and_statistics(api: Api) -> None:
    add_group(api.app)
    for user in ("u-1", "u-2", "u-3"):
        add_member(api.app, user)
    # u-1 scores 1.0 in two batches: the tie goes to the lowest context_id (cb:b-1, max 2.0, its stamp).
    add_row(api.app, "u-1", "b-2", **scored("do_a1", 1.0, 4.0, stamp=300))
    add_row(api.app, "u-1", "b-1", **scored("do_a1", 1.0, 2.0, stamp=100))
    add_row(api.app, "u-2", **scored("do_a1", 3.0, 4.0, stamp=200))
    add_row(api.app, "u-3", **scored("do_a1", 0.0, 0.0, stamp=50))  # max_score 0: not in avgPercentage
    (activity,) = ok(api.as_user("u-3").post(GROUP, {"groupId": "g-1", "activities": [{"id": "do_c1", "type": "C"}]}))[
        "activity"
    ]
    assert activity["name"] is None and activity["type"] == "C"  # not a loaded course
    assert activity["agg"][3:] == [
        {"metric": "score:do_a1:count", "value": 3, "lastUpdatedOn": 200},
        {"metric": "score:do_a1:min", "value": 0.0, "lastUpdatedOn": 200},
        {"metric": "score:do_a1:max", "value": 3.0, "lastUpdatedOn": 200},
        {"metric": "score:do_a1:avg", "value": 1.33, "lastUpdatedOn": 200},  # round2(4.0 / 3)
        {"metric": "score:do_a1:avgPercentage", "value": 62.5, "lastUpdatedOn": 200},  # (50 + 75) / 2
    ]


def test_avg_percentage_is_omitted_without_a_positive_max_score(api: Api) -> None:
    add_group(api.app)
    add_member(api.app, "u-1")
    add_row(api.app, "u-1", agg={"score:do_a1": 2}, stamps={"score:do_a1": 7})  # legacy score, no max_score
    (activity,) = ok(api.as_user("u-1").post(GROUP, {"groupId": "g-1", "activities": [{"id": "do_c1", "type": "C"}]}))[
        "activity"
    ]
    assert [(m["metric"], m["value"]) for m in activity["agg"][3:]] == [
        ("score:do_a1:count", 1),
        ("score:do_a1:min", 2.0),
        ("score:do_a1:max", 2.0),
        ("score:do_a1:avg", 2.0),
    ]
    assert activity["agg"][3]["lastUpdatedOn"] == 7


def test_contents_follow_hierarchy_order_then_id(api: Api) -> None:
    load(api.app, course("do_c1", ["do_z", "do_a", "do_m"]))
    add_group(api.app)
    add_member(api.app, "u-1")
    aggregates = {f"score:{c}": 1.0 for c in ("do_x", "do_m", "do_b", "do_a", "do_z")}
    add_row(api.app, "u-1", aggregates=aggregates)
    # The group follows no stored activity: nothing to report.
    assert ok(api.as_user("u-1").post(GROUP, {"groupId": "g-1"})) == {"groupId": "g-1", "activity": []}
    request = {"groupId": "g-1", "activities": [{"id": "do_c1", "type": "Course"}], "fields": ["score"]}
    (activity,) = ok(api.as_user("u-1").post(GROUP, request))["activity"]
    order = [m["metric"].split(":")[1] for m in activity["agg"] if m["metric"].endswith(":count")]
    assert order == ["do_z", "do_a", "do_m", "do_b", "do_x"]


def test_completed_count_and_percentage(api: Api) -> None:
    spec_example(api.app)
    add_enrolment(api.app, "u-1", 2, batch="b-2")  # a second completed batch: still one member
    add_member(api.app, "u-3")  # completed, but no aggregate row: counted in completedCount only
    add_enrolment(api.app, "u-3", 2)
    add_member(api.app, "u-4", status="inactive")
    add_enrolment(api.app, "u-4", 2)
    add_member(api.app, "u-5", status="invited")
    add_enrolment(api.app, "u-5", 2)
    add_row(api.app, "u-5", **scored("do_a1", 2.0, 2.0))
    add_enrolment(api.app, "outsider", 2)
    (activity,) = ok(
        api.as_user("u-1").post(GROUP, {"groupId": "g-1", "fields": ["enrolmentCount", "completedCount"]})
    )["activity"]
    assert [(m["metric"], m["value"]) for m in activity["agg"]] == [("enrolmentCount", 2), ("completedCount", 2)]
    (activity,) = ok(api.as_user("u-1").post(GROUP, {"groupId": "g-1", "fields": ["completionPercentage"]}))["activity"]
    assert activity["agg"] == [{"metric": "completionPercentage", "value": 100.0, "lastUpdatedOn": T_DONE}]


def test_activities_come_from_the_group_deduplicated(api: Api) -> None:
    spec_example(api.app)
    add_group(api.app, "g-2", activities=[{"id": "do_c1", "type": "Course"}, {"id": "do_c2", "type": "Course"}])
    add_member(api.app, "u-1", group_id="g-2")
    add_row(api.app, "u-1", course_id="do_c2", aggregates={"completedCount": 1.0}, stamps={"completedCount": 9})
    for activities in (None, []):
        result = ok(api.as_user("u-1").post(GROUP, {"groupId": "g-2", "activities": activities}))
        assert [(a["id"], a["agg"][0]["value"]) for a in result["activity"]] == [("do_c1", 1), ("do_c2", 1)]
    twice = [{"id": "do_c2", "type": "Course"}, {"id": "do_c1", "type": "Course"}, {"id": "do_c2", "type": "Course"}]
    result = ok(api.as_user("u-1").post(GROUP, {"groupId": "g-2", "activities": twice, "fields": ["enrolmentCount"]}))
    assert result["activity"] == [
        {
            "id": "do_c2",
            "type": "Course",
            "name": None,
            "agg": [{"metric": "enrolmentCount", "value": 1, "lastUpdatedOn": 9}],
            "metadata": {},
        },
        {
            "id": "do_c1",
            "type": "Course",
            "name": "Basics",
            "agg": [{"metric": "enrolmentCount", "value": 1, "lastUpdatedOn": T_DONE}],
            "metadata": BASICS,
        },
    ]


def test_activity_without_rows_reports_zero_at_now(api: Api) -> None:
    add_group(api.app)
    add_member(api.app, "u-1")
    (activity,) = ok(api.as_user("u-1").post(GROUP, {"groupId": "g-1", "activities": [{"id": "x", "type": "Course"}]}))[
        "activity"
    ]
    now = api.app.clock()
    assert activity["agg"] == [
        {"metric": "enrolmentCount", "value": 0, "lastUpdatedOn": now},
        {"metric": "completedCount", "value": 0, "lastUpdatedOn": now},
        {"metric": "completionPercentage", "value": 0.0, "lastUpdatedOn": now},
    ]
