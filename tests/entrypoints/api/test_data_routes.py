"""The group aggregate design of seed note 002: `/data/group/*`, `fields`, `metadata` and `/data/activity/agg`."""

from __future__ import annotations

from typing import Any

from tests.entrypoints.api.group_data import spec_example
from tests.entrypoints.api.support import Api, create_batch, create_group, create_user, enrol, error, ok
from tests.support import course, load

REQUEST = {"groupId": "g-1", "activityId": "do_c1", "activityType": "Course", "includeAllMembers": True}


def _twins(api: Api, v1: str, data: str, request: dict[str, Any]) -> Any:
    one = api.as_user("u-1").post(v1, request)
    two = api.as_user("u-1").post(data, request)
    assert one.status_code == two.status_code
    a, b = one.json(), two.json()
    assert a["id"] == b["id"]
    assert orjson_bytes(a["result"]) == orjson_bytes(b["result"])
    return a


def orjson_bytes(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


def test_data_routes_answer_like_their_v1_twins(api: Api) -> None:
    spec_example(api.app)
    answer = _twins(api, "/v1/group/activity/agg", "/data/group/activity/agg", REQUEST)
    assert answer["id"] == "api.group.activity.agg" and answer["result"]["members"]
    answer = _twins(api, "/v1/group/agg", "/data/group/agg", {"groupId": "g-1", "fields": ["score"]})
    assert answer["id"] == "api.group.agg"
    for bad in ({}, {"groupId": "g-1"}, {**REQUEST, "fields": "score"}, {**REQUEST, "groupId": "nope"}):
        _twins(api, "/v1/group/activity/agg", "/data/group/activity/agg", bad)
    _twins(api, "/v1/group/agg", "/data/group/agg", {"groupId": "g-1", "fields": [1]})


def test_fields_filter_the_activity_and_every_member(api: Api) -> None:
    spec_example(api.app)
    result = ok(api.as_user("u-1").post("/data/group/activity/agg", {**REQUEST, "fields": ["score"]}))
    assert result["activity"]["agg"] == []
    assert [(m["userId"], [a["metric"] for a in m["agg"]]) for m in result["members"]] == [
        ("u-1", ["score:do_a1"]),
        ("u-2", []),  # an emptied member stays listed
    ]
    assert result["activity"]["metadata"]["name"] == "Basics"  # metadata is never filtered
    result = ok(api.as_user("u-1").post("/data/group/activity/agg", {**REQUEST, "fields": ["enrolmentCount"]}))
    assert [a["metric"] for a in result["activity"]["agg"]] == ["enrolmentCount"]
    unfiltered = ok(api.as_user("u-1").post("/data/group/activity/agg", {**REQUEST, "fields": None}))
    assert len(unfiltered["members"][0]["agg"]) == 4


def test_fields_that_is_not_a_list_of_strings_is_a_data_type_error(api: Api) -> None:
    spec_example(api.app)
    for fields in ("score", [1], {"a": 1}):
        error(
            api.as_user("u-1").post("/data/group/activity/agg", {**REQUEST, "fields": fields}), 400, "DATA_TYPE_ERROR"
        )
    # validated after includeAllMembers
    bad = {**REQUEST, "includeAllMembers": "yes", "fields": "x"}
    body = error(api.as_user("u-1").post("/data/group/activity/agg", bad), 400, "DATA_TYPE_ERROR")
    assert "includeAllMembers" in body["params"]["errmsg"]


def _course_with_batches(api: Api) -> str:
    load(api.app, course("do_c9", ["do_x1", "do_x2"], name="Physics"))
    for user in ("u-1", "u-2", "u-3"):
        create_user(api, user, firstName=user)
    create_batch(api, "do_c9", "b-2", endDate="2030-06-30")
    create_batch(api, "do_c9", "b-1")
    create_batch(api, "do_c9", "b-3")  # nobody of the group sits here
    enrol(api, "u-1", "do_c9", "b-2")
    enrol(api, "u-2", "do_c9", "b-1")
    enrol(api, "u-3", "do_c9", "b-3")  # not a member of the group
    group = create_group(api, "u-1", [("u-2", "member")], ["do_c9"])
    accept = {"groupId": group, "status": "active"}
    ok(api.as_user("u-2").call("PATCH", "/v1/group/membership/update", {"request": accept}))
    return group


def test_metadata_lists_the_batches_where_members_sit(api: Api) -> None:
    group = _course_with_batches(api)
    request = {"groupId": group, "activityId": "do_c9", "activityType": "Course"}
    meta = ok(api.as_user("u-1").post("/data/group/activity/agg", request))["activity"]["metadata"]
    assert meta == {
        "name": "Physics",
        "status": "Live",
        "leafNodesCount": 2,
        "batches": [
            {"batchId": "b-1", "name": "b-1", "status": 1, "startDate": "2023-01-01", "endDate": None},
            {"batchId": "b-2", "name": "b-2", "status": 1, "startDate": "2023-01-01", "endDate": "2030-06-30"},
        ],
    }
    (activity,) = ok(api.as_user("u-1").post("/data/group/agg", {"groupId": group}))["activity"]
    assert activity["metadata"] == meta
    unknown = {"groupId": group, "activities": [{"id": "nope", "type": "Course"}]}
    assert ok(api.as_user("u-1").post("/v1/group/agg", unknown))["activity"][0]["metadata"] == {}


def test_activity_agg_route_per_batch_and_access(api: Api) -> None:
    _course_with_batches(api)
    ok(api.as_admin().post("/v1/course/unenrol", {"courseId": "do_c9", "batchId": "b-1", "userId": "u-2"}))
    request = {"activityId": "do_c9", "activityType": "Course"}
    result = ok(api.as_admin().post("/data/activity/agg", request))
    contexts = result["activity"]["contexts"]
    assert [c["contextId"] for c in contexts] == ["cb:b-1", "cb:b-2", "cb:b-3"]
    assert [(m["metric"], m["value"]) for m in contexts[1]["agg"]] == [
        ("completedCount", 0),
        ("completionPercentage", 0.0),
        ("enrolledCount", 1),
    ]
    assert [m["value"] for m in contexts[0]["agg"]] == [0, 0.0, 0]  # unenrolled: the batch stays, with zeros
    create_user(api, "mentor", roles=["COURSE_MENTOR"])
    one = ok(api.as_user("mentor").post("/data/activity/agg", {**request, "contextId": "b-2"}))
    assert [c["contextId"] for c in one["activity"]["contexts"]] == ["cb:b-2"]
    error(api.as_user("u-1").post("/data/activity/agg", request), 403, "UNAUTHORIZED_USER")
    error(api.as_user("u-1").post("/data/activity/agg", {"activityType": "Course"}), 400, "ACTIVITY_ID_MISSING")
    error(api.as_user("u-1").post("/data/activity/agg", {"activityId": "x"}), 400, "ACTIVITY_TYPE_MISSING")
    for other in ({"activityId": "nope", "activityType": "Course"}, {"activityId": "do_c9", "activityType": "course"}):
        assert ok(api.as_admin().post("/data/activity/agg", other))["activity"]["contexts"] == []
