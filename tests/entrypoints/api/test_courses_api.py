"""Course hierarchy API (SPEC §2.6, §5.9): `POST /v1/course/hierarchy/load`, `GET /v1/course/hierarchy/read/{id}`."""

from __future__ import annotations

from sqlalchemy import select

from learnagg.adapters.store.tables import content, course_node
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE
from tests.entrypoints.api.support import Api, error, ok
from tests.support import course

UNIT = {
    "identifier": "do_unit",
    "name": "Unit",
    "mimeType": COLLECTION_MIME_TYPE,
    "children": [{"identifier": "do_l3", "name": "L3", "mimeType": "video/mp4", "optional": True}],
}


def nodes(api: Api, course_id: str) -> dict[str, tuple[bool, bool]]:
    stmt = select(course_node.c.node_id, course_node.c.is_leaf, course_node.c.optional).where(
        course_node.c.course_id == course_id
    )
    with api.app.store.read() as conn:
        return {r.node_id: (r.is_leaf, r.optional) for r in conn.execute(stmt)}


def test_load_applies_the_hierarchy_rules_and_read_returns_it(api: Api) -> None:
    hierarchy = course("do_c1", ["do_l1", "do_l2"], status="Live", channel="org-1")
    hierarchy["children"].append(UNIT)
    body = api.as_admin().post("/v1/course/hierarchy/load", {"hierarchy": hierarchy}).json()
    assert body["id"] == "api.course.hierarchy.load"
    assert body["result"] == {"courseId": "do_c1", "leafNodesCount": 3}  # optional leaves included
    assert nodes(api, "do_c1") == {
        "do_c1": (False, False),
        "do_l1": (True, False),
        "do_l2": (True, False),
        "do_unit": (False, False),
        "do_l3": (True, True),
    }
    body = api.as_user("u-1").get("/v1/course/hierarchy/read/do_c1").json()
    assert body["id"] == "api.course.hierarchy.read"
    assert body["result"] == {
        "courseId": "do_c1",
        "name": "do_c1",
        "status": "Live",
        "channel": "org-1",
        "leafNodesCount": 3,
        "updatedOn": api.app.clock(),
        "hierarchy": hierarchy,
    }


def test_a_reload_replaces_the_structure(api: Api) -> None:
    admin = api.as_admin()
    ok(admin.post("/v1/course/hierarchy/load", {"hierarchy": course("do_c1", ["do_l1", "do_l2"])}))
    assert ok(admin.post("/v1/course/hierarchy/load", {"hierarchy": course("do_c1", ["do_l9"])}))["leafNodesCount"] == 1
    assert set(nodes(api, "do_c1")) == {"do_c1", "do_l9"}


def test_load_needs_a_platform_admin(api: Api) -> None:
    request = {"hierarchy": course("do_c1", ["do_l1"])}
    error(api.post("/v1/course/hierarchy/load", request), 401, "UNAUTHORIZED_USER")
    error(api.as_user("u-1").post("/v1/course/hierarchy/load", request), 403, "UNAUTHORIZED_USER")
    error(api.as_admin().get("/v1/course/hierarchy/read/do_c1"), 404, "COURSE_NOT_FOUND")


def test_load_validation(api: Api) -> None:
    admin = api.as_admin()
    error(
        admin.post("/v1/course/hierarchy/load", {}),
        400,
        "MANDATORY_PARAMETER_MISSING",
        "Mandatory parameter hierarchy is missing.",
    )
    error(
        admin.post("/v1/course/hierarchy/load", {"hierarchy": ["x"]}),
        400,
        "DATA_TYPE_ERROR",
        "Data type of hierarchy should be Map",
    )
    bad = {"identifier": "do_c1", "children": [{"name": "no id"}]}
    error(
        admin.post("/v1/course/hierarchy/load", {"hierarchy": bad}),
        400,
        "INVALID_PARAMETER_VALUE",
        "Invalid value (child 0 of 'do_c1' has no identifier) for parameter hierarchy. Please provide a valid value.",
    )
    error(admin.post("/v1/course/hierarchy/load", {"hierarchy": {}}), 400, "INVALID_PARAMETER_VALUE")


def test_read_needs_a_token_and_a_known_course(api: Api) -> None:
    error(api.get("/v1/course/hierarchy/read/do_c1"), 401, "UNAUTHORIZED_USER")
    error(api.as_user("u-1").get("/v1/course/hierarchy/read/nope"), 404, "COURSE_NOT_FOUND", "Course does not exist.")


def test_a_question_count_beyond_32_bits_is_stored_clamped(api: Api) -> None:
    hierarchy = course("do_c1", ["do_l1"])
    hierarchy["children"][0]["totalQuestions"] = 2**40
    assert ok(api.as_admin().post("/v1/course/hierarchy/load", {"hierarchy": hierarchy}))["leafNodesCount"] == 1
    with api.app.store.read() as conn:
        stored = conn.execute(select(content.c.total_questions).where(content.c.content_id == "do_l1")).scalar_one()
    assert stored == 2**31 - 1
