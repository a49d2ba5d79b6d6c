"""Groups API (SPEC §2.4, §5.9): create, read, update (members and activities), list, activities."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from learnagg.adapters.store.tables import group_member
from learnagg.services import groups as groups_service
from tests.entrypoints.api.support import Api, create_group, create_user, error, ok

T = 1_700_000_000_000


def member_row(api: Api, group_id: str, user_id: str) -> dict[str, Any]:
    stmt = select(group_member).where(group_member.c.group_id == group_id, group_member.c.user_id == user_id)
    with api.app.store.read() as conn:
        return dict(conn.execute(stmt).mappings().one())


def members(api: Api, group_id: str, as_user: str = "owner") -> dict[str, str]:
    """The role of every member ``as_user`` sees (active ones; invited ones too for a group admin)."""
    result = ok(api.as_user(as_user).get(f"/v1/group/read/{group_id}?fields=members"))
    return {m["userId"]: m["role"] for m in result["members"]}


def statuses(api: Api, group_id: str, as_user: str = "owner") -> dict[str, str]:
    result = ok(api.as_user(as_user).get(f"/v1/group/read/{group_id}?fields=members"))
    return {m["userId"]: m["status"] for m in result["members"]}


def accept(api: Api, group_id: str, *user_ids: str) -> None:
    """Each user accepts their invitation to the group (group member consent)."""
    for user_id in user_ids:
        request = {"groupId": group_id, "status": "active"}
        ok(api.as_user(user_id).patch("/v1/group/membership/update", request))


@pytest.fixture
def changed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Group ids passed to the cache-invalidation hook."""
    calls: list[str] = []
    monkeypatch.setattr(groups_service, "on_membership_changed", lambda _app, group_id: calls.append(group_id))
    return calls


def test_create_then_read(api: Api) -> None:
    create_user(api, "owner", firstName="Olu", lastName="Ade")
    create_user(api, "m-1", firstName="Mia", lastName="null")
    request = {
        "name": "Study circle",
        "description": "Weekly",
        "activities": [{"id": "do_c1", "type": "Course"}, {"id": "do_c2", "type": "Course"}],
        "members": [{"userId": "m-2", "role": "admin"}, {"userId": "m-1"}, {"userId": "owner", "role": "member"}],
    }
    body = api.as_user("owner").post("/v1/group/create", request).json()
    assert body["id"] == "api.group.create"
    group_id = body["result"]["groupId"]
    assert uuid.UUID(group_id).version == 4
    accept(api, group_id, "m-1")
    body = api.as_user("m-1").get(f"/v1/group/read/{group_id}?fields=members,activities").json()
    assert body["id"] == "api.group.read"

    def entry(user: str, name: str, role: str, status: str = "active", updated: int = T) -> dict[str, Any]:
        return {
            "userId": user,
            "name": name,
            "role": role,
            "status": status,
            "createdBy": "owner",
            "createdOn": T,
            "updatedOn": updated,
        }

    assert body["result"] == {
        "id": group_id,
        "name": "Study circle",
        "description": "Weekly",
        "status": "active",
        "createdBy": "owner",
        "createdOn": T,
        "updatedOn": T,
        "activities": request["activities"],
        # Sorted by userId; the creator stays an admin; m-2 has not accepted yet: hidden from members.
        "members": [entry("m-1", "Mia", "member"), entry("owner", "Olu Ade", "admin")],
    }
    # A group admin also sees the invited member; a user unknown to `users` has the name "".
    result = ok(api.as_user("owner").get(f"/v1/group/read/{group_id}?fields=members"))
    assert result["members"] == [
        entry("m-1", "Mia", "member"),
        entry("m-2", "", "admin", "invited"),
        entry("owner", "Olu Ade", "admin"),
    ]


def test_read_member_name_follows_the_display_name_rule(api: Api) -> None:
    """Unknown users and users without names get "", never null (one rule with the group aggregates)."""
    create_user(api, "no-names")
    create_user(api, "null-names", firstName="null", lastName="null")
    create_user(api, "last-only", lastName="Rao")
    group_id = create_group(api, "owner", members=[(u, "member") for u in ("ghost", "no-names", "null-names")])
    ok(api.as_admin().patch("/v1/group/update", {"groupId": group_id, "members": {"add": [{"userId": "last-only"}]}}))
    result = ok(api.as_user("owner").get(f"/v1/group/read/{group_id}?fields=members"))  # invited ones listed too
    names = {m["userId"]: m["name"] for m in result["members"]}
    assert names == {"ghost": "", "last-only": "Rao", "no-names": "", "null-names": "", "owner": ""}


def test_read_fields_pick_members_or_activities(api: Api) -> None:
    group_id = create_group(api, "owner", activities=["do_c1"])
    owner = api.as_user("owner")
    assert "activities" not in ok(owner.get(f"/v1/group/read/{group_id}?fields=members"))
    only_activities = ok(owner.get(f"/v1/group/read/{group_id}?fields=activities"))
    assert "members" not in only_activities and only_activities["activities"] == [{"id": "do_c1", "type": "Course"}]
    both = ok(owner.get(f"/v1/group/read/{group_id}"))
    assert set(both) >= {"members", "activities"}


def test_create_refusals(api: Api) -> None:
    owner = api.as_user("owner")
    cases = [
        ({}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter name is missing."),
        ({"name": "  "}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter name is missing."),
        (
            {"name": "G", "members": [{"userId": "u", "role": "owner"}]},
            "INVALID_PARAMETER_VALUE",
            "Invalid value owner for parameter role. Please provide a valid value.",
        ),
        ({"name": "G", "members": [{"role": "member"}]}, "MANDATORY_PARAMETER_MISSING", None),
        ({"name": "G", "members": ["u-1"]}, "DATA_TYPE_ERROR", None),
        ({"name": "G", "activities": [{"type": "Course"}]}, "ACTIVITY_ID_MISSING", "ActivityId is mandatory."),
        ({"name": "G", "activities": [{"id": "c"}]}, "ACTIVITY_TYPE_MISSING", "ActivityType is mandatory."),
        ({"name": "G", "description": 5}, "DATA_TYPE_ERROR", None),
    ]
    for request, code, message in cases:
        error(owner.post("/v1/group/create", request), 400, code, message)
    error(api.post("/v1/group/create", {"name": "G"}), 401, "UNAUTHORIZED_USER")


def test_read_is_for_active_members_and_admins(api: Api) -> None:
    group_id = create_group(api, "owner", members=[("m-1", "member"), ("m-2", "member"), ("m-3", "member")])
    accept(api, group_id, "m-1", "m-2")
    ok(api.as_user("owner").patch("/v1/group/update", {"groupId": group_id, "members": {"remove": ["m-2"]}}))
    assert ok(api.as_user("m-1").get(f"/v1/group/read/{group_id}"))["id"] == group_id
    error(api.as_user("m-3").get(f"/v1/group/read/{group_id}"), 403, "UNAUTHORIZED_USER")  # invited, not active
    assert ok(api.as_admin().get(f"/v1/group/read/{group_id}"))["id"] == group_id
    error(api.as_user("m-2").get(f"/v1/group/read/{group_id}"), 403, "UNAUTHORIZED_USER")
    error(api.as_user("x").get(f"/v1/group/read/{group_id}"), 403, "UNAUTHORIZED_USER", "You are not authorized.")
    error(api.get(f"/v1/group/read/{group_id}"), 401, "UNAUTHORIZED_USER")
    error(api.as_admin().get("/v1/group/read/nope"), 404, "GROUP_NOT_FOUND", "Group does not exist.")


def test_update_adds_edits_and_removes_members(api: Api, changed: list[str]) -> None:
    group_id = create_group(api, "owner", members=[("m-1", "member"), ("m-2", "member")])
    accept(api, group_id, "m-1", "m-2")
    changed.clear()
    api.app.clock.now = T + 5000  # type: ignore[attr-defined]
    request = {
        "groupId": group_id,
        "members": {
            "add": [{"userId": "m-3", "role": "admin"}],
            "edit": [{"userId": "m-1", "role": "admin"}],
            "remove": ["m-2"],
        },
    }
    body = api.as_user("owner").patch("/v1/group/update", request).json()
    assert body["id"] == "api.group.update" and body["result"] == {"response": "SUCCESS"}
    assert members(api, group_id) == {"m-1": "admin", "m-3": "admin", "owner": "admin"}
    removed = member_row(api, group_id, "m-2")
    assert (removed["status"], removed["removed_by"], removed["removed_on"]) == ("inactive", "owner", T + 5000)
    added = member_row(api, group_id, "m-3")
    assert (added["status"], added["created_by"], added["created_on"], added["removed_on"]) == (
        "invited",
        "owner",
        T + 5000,
        None,
    )
    edited = member_row(api, group_id, "m-1")
    assert (edited["created_on"], edited["updated_by"], edited["updated_on"]) == (T, "owner", T + 5000)
    assert changed == [group_id]


def test_add_reactivates_a_removed_member_with_the_new_role(api: Api) -> None:
    group_id = create_group(api, "owner", members=[("m-1", "admin")])
    accept(api, group_id, "m-1")
    owner = api.as_user("owner")
    ok(owner.patch("/v1/group/update", {"groupId": group_id, "members": {"remove": ["m-1"]}}))
    assert "m-1" not in members(api, group_id)
    ok(
        owner.patch(
            "/v1/group/update", {"groupId": group_id, "members": {"add": [{"userId": "m-1", "role": "member"}]}}
        )
    )
    assert members(api, group_id)["m-1"] == "member"
    row = member_row(api, group_id, "m-1")
    # Added again by a group admin: invited again (group member consent), the removal cleared.
    assert (row["status"], row["removed_by"], row["removed_on"], row["created_on"]) == ("invited", None, None, T)
    accept(api, group_id, "m-1")
    assert statuses(api, group_id, "m-1") == {"m-1": "active", "owner": "active"}


def test_edit_and_remove_of_non_members_change_nothing(api: Api) -> None:
    group_id = create_group(api, "owner")
    request = {"groupId": group_id, "members": {"edit": [{"userId": "ghost", "role": "admin"}], "remove": ["nobody"]}}
    ok(api.as_user("owner").patch("/v1/group/update", request))
    assert members(api, group_id) == {"owner": "admin"}


def test_update_name_description_and_activities(api: Api, changed: list[str]) -> None:
    group_id = create_group(api, "owner", activities=["do_c1", "do_c2"])
    request = {
        "groupId": group_id,
        "name": "Renamed",
        "description": "New",
        "activities": {"add": [{"id": "do_c3", "type": "Course"}], "remove": ["do_c1"]},
    }
    ok(api.as_user("owner").patch("/v1/group/update", request))
    group = ok(api.as_user("owner").get(f"/v1/group/read/{group_id}"))
    assert (group["name"], group["description"]) == ("Renamed", "New")
    assert [a["id"] for a in group["activities"]] == ["do_c2", "do_c3"]
    assert changed == [group_id]
    ok(api.as_user("owner").patch("/v1/group/update", {"groupId": group_id, "name": "Only the name"}))
    assert changed == [group_id]  # neither members nor activities changed


def test_update_is_for_active_group_admins_and_platform_admins(api: Api) -> None:
    group_id = create_group(api, "owner", members=[("m-1", "member"), ("a-2", "admin")])
    request = {"groupId": group_id, "name": "X"}
    error(api.as_user("a-2").patch("/v1/group/update", request), 403, "UNAUTHORIZED_USER")  # invited admin
    accept(api, group_id, "m-1", "a-2")
    ok(api.as_user("a-2").patch("/v1/group/update", request))
    error(api.as_user("m-1").patch("/v1/group/update", request), 403, "UNAUTHORIZED_USER")
    error(api.as_user("x").patch("/v1/group/update", request), 403, "UNAUTHORIZED_USER")
    ok(api.as_user("owner").patch("/v1/group/update", {"groupId": group_id, "members": {"remove": ["a-2"]}}))
    error(api.as_user("a-2").patch("/v1/group/update", request), 403, "UNAUTHORIZED_USER")  # removed admin
    ok(api.as_admin().patch("/v1/group/update", request))
    error(api.patch("/v1/group/update", request), 401, "UNAUTHORIZED_USER")


def test_update_refusals(api: Api) -> None:
    group_id = create_group(api, "owner")
    owner = api.as_user("owner")
    cases = [
        ({}, "GROUP_ID_MISSING", "GroupId is mandatory."),
        ({"groupId": group_id, "name": ""}, "MANDATORY_PARAMETER_MISSING", None),
        ({"groupId": group_id, "members": []}, "DATA_TYPE_ERROR", "Data type of members should be Map"),
        ({"groupId": group_id, "members": {"add": [{"userId": "u", "role": "boss"}]}}, "INVALID_PARAMETER_VALUE", None),
        ({"groupId": group_id, "members": {"remove": [1]}}, "DATA_TYPE_ERROR", None),
        ({"groupId": group_id, "activities": {"add": [{"id": "c"}]}}, "ACTIVITY_TYPE_MISSING", None),
    ]
    for request, code, message in cases:
        error(owner.patch("/v1/group/update", request), 400, code, message)
    error(owner.patch("/v1/group/update", {"groupId": "nope"}), 404, "GROUP_NOT_FOUND")


def test_list_shows_the_groups_of_a_user(api: Api) -> None:
    g1 = create_group(api, "owner", members=[("m-1", "member")], activities=["do_c1"], name="One")
    g2 = create_group(api, "m-1", name="Two")
    g3 = create_group(api, "owner", members=[("m-1", "member")], name="Three")
    g4 = create_group(api, "owner", members=[("m-1", "member")], name="Four")
    accept(api, g1, "m-1")
    accept(api, g3, "m-1")
    ok(api.as_user("owner").patch("/v1/group/update", {"groupId": g3, "members": {"remove": ["m-1"]}}))
    invited = ok(api.as_user("m-1").post("/v1/group/list", {"filters": {"status": "invited"}}))["group"]
    assert [(g["id"], g["name"]) for g in invited] == [(g4, "Four")]
    error(
        api.as_user("m-1").post("/v1/group/list", {"filters": {"status": "inactive"}}), 400, "INVALID_PARAMETER_VALUE"
    )
    body = api.as_user("m-1").post("/v1/group/list", {"filters": {"userId": "m-1"}}).json()
    assert body["id"] == "api.group.list"
    groups = body["result"]["group"]
    assert [g["id"] for g in groups] == sorted([g1, g2])
    by_id = {g["id"]: g for g in groups}
    assert by_id[g1] == {
        "id": g1,
        "name": "One",
        "description": None,
        "status": "active",
        "memberRole": "member",
        "createdBy": "owner",
        "createdOn": T,
        "updatedOn": T,
        "activities": [{"id": "do_c1", "type": "Course"}],
    }
    assert by_id[g2]["memberRole"] == "admin"
    assert len(ok(api.as_user("m-1").post("/v1/group/list", {}))["group"]) == 2  # the caller by default
    assert len(ok(api.as_admin().post("/v1/group/list", {"filters": {"userId": "owner"}}))["group"]) == 3
    error(api.as_user("m-1").post("/v1/group/list", {"filters": {"userId": "owner"}}), 403, "UNAUTHORIZED_USER")
    error(api.as_user("m-1").post("/v1/group/list", {"filters": "m-1"}), 400, "DATA_TYPE_ERROR")
    error(api.post("/v1/group/list", {}), 401, "UNAUTHORIZED_USER")


def test_activities_of_a_group(api: Api) -> None:
    group_id = create_group(api, "owner", members=[("m-1", "member")], activities=["do_c1", "do_c2"])
    error(api.as_user("m-1").get(f"/v1/group/activities/{group_id}"), 403, "UNAUTHORIZED_USER")  # invited
    accept(api, group_id, "m-1")
    body = api.as_user("m-1").get(f"/v1/group/activities/{group_id}").json()
    assert body["id"] == "api.group.activities"
    expected = {
        "groupId": group_id,
        "activities": [{"id": "do_c1", "type": "Course"}, {"id": "do_c2", "type": "Course"}],
    }
    assert body["result"] == expected
    assert ok(api.as_admin().get(f"/v1/group/activities/{group_id}")) == expected
    error(api.as_user("x").get(f"/v1/group/activities/{group_id}"), 403, "UNAUTHORIZED_USER")
    error(api.as_user("x").get("/v1/group/activities/nope"), 404, "GROUP_NOT_FOUND")
    error(api.get(f"/v1/group/activities/{group_id}"), 401, "UNAUTHORIZED_USER")
