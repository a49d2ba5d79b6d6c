"""Group member consent (`groups.member_consent`, docs/threat-model.md): invitations, accept, leave, direct adds.

Nobody's scores can be read through a group they did not agree to join; with the setting off, members are active
at once, as on the reference platform.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from learnagg.bench.redisserver import RedisServer
from learnagg.entrypoints.cli import main
from learnagg.settings import GroupAggCacheSettings, GroupAggSettings, GroupsSettings, Settings
from tests.entrypoints.api.group_data import add_enrolment, add_row, scored
from tests.entrypoints.api.support import Api, create_group, create_user, error, ok

ACTIVITY = "/v1/group/activity/agg"
GROUP = "/v1/group/agg"
MEMBERSHIP = "/v1/group/membership/update"


def query(group_id: str, **extra: Any) -> dict[str, Any]:
    return {"groupId": group_id, "activityId": "do_c1", "activityType": "Course", **extra}


def scored_members(api: Api, group_id: str, as_user: str = "owner") -> list[str]:
    """The members whose rows `/v1/group/activity/agg` shows (includeAllMembers: every member of M)."""
    result = ok(api.as_user(as_user).post(ACTIVITY, query(group_id, includeAllMembers=True)))
    return [m["userId"] for m in result["members"]]


def enrolment_count(api: Api, group_id: str, as_user: str = "owner") -> int:
    (activity,) = ok(
        api.as_user(as_user).post(GROUP, {"groupId": group_id, "activities": [{"id": "do_c1", "type": "Course"}]})
    )["activity"]
    return int(next(m["value"] for m in activity["agg"] if m["metric"] == "enrolmentCount"))


def statuses(api: Api, group_id: str, as_user: str = "owner") -> dict[str, str]:
    result = ok(api.as_user(as_user).get(f"/v1/group/read/{group_id}?fields=members"))
    return {m["userId"]: m["status"] for m in result["members"]}


def consent(api: Api, user_id: str, group_id: str, status: str) -> Any:
    return api.as_user(user_id).patch(MEMBERSHIP, {"groupId": group_id, "status": status})


def add(api: Api, group_id: str, user_id: str, *, by: Api) -> None:
    ok(by.patch("/v1/group/update", {"groupId": group_id, "members": {"add": [{"userId": user_id}]}}))


def remove(api: Api, group_id: str, user_id: str) -> None:
    ok(api.as_user("owner").patch("/v1/group/update", {"groupId": group_id, "members": {"remove": [user_id]}}))


@pytest.fixture
def scores(api: Api) -> Api:
    """A victim learner and a second learner with scores in course do_c1."""
    for user in ("owner", "victim", "m-2"):
        add_row(api.app, user, **scored("do_a1", 1.0 if user == "owner" else 2.0, 2.0))
    add_enrolment(api.app, "victim", 2)
    return api


def test_an_invited_member_is_not_counted_and_cannot_read(scores: Api) -> None:
    api = scores
    group_id = create_group(api, "owner", members=[("victim", "member")], activities=["do_c1"])
    assert statuses(api, group_id) == {"owner": "active", "victim": "invited"}
    assert scored_members(api, group_id) == ["owner"]
    assert enrolment_count(api, group_id) == 1
    (activity,) = ok(api.as_user("owner").post(GROUP, {"groupId": group_id}))["activity"]
    assert {m["metric"]: m["value"] for m in activity["agg"]}["completedCount"] == 0  # the victim's completion
    for request in (
        api.as_user("victim").get(f"/v1/group/read/{group_id}"),
        api.as_user("victim").get(f"/v1/group/activities/{group_id}"),
        api.as_user("victim").post(ACTIVITY, query(group_id)),
        api.as_user("victim").post(GROUP, {"groupId": group_id}),
    ):
        error(request, 403, "UNAUTHORIZED_USER", "You are not authorized.")


def test_accept_counts_the_member_and_leave_stops_it(scores: Api) -> None:
    api = scores
    group_id = create_group(api, "owner", members=[("victim", "member")], activities=["do_c1"])
    api.app.clock.now += 1000  # type: ignore[attr-defined]
    body = consent(api, "victim", group_id, "active").json()
    assert body["id"] == "api.group.membership.update" and body["result"] == {"response": "SUCCESS"}
    assert scored_members(api, group_id) == ["owner", "victim"]
    assert enrolment_count(api, group_id) == 2
    assert statuses(api, group_id, "victim") == {"owner": "active", "victim": "active"}
    ok(consent(api, "victim", group_id, "active"))  # accepting twice changes nothing
    ok(consent(api, "victim", group_id, "inactive"))
    assert scored_members(api, group_id) == ["owner"]
    error(api.as_user("victim").get(f"/v1/group/read/{group_id}"), 403, "UNAUTHORIZED_USER")
    ok(consent(api, "victim", group_id, "inactive"))  # leaving twice changes nothing
    # A member who left needs a new invitation.
    error(consent(api, "victim", group_id, "active"), 403, "UNAUTHORIZED_USER")
    add(api, group_id, "victim", by=api.as_user("owner"))
    assert statuses(api, group_id)["victim"] == "invited"
    ok(consent(api, "victim", group_id, "active"))
    assert scored_members(api, group_id) == ["owner", "victim"]


def test_an_invitation_can_be_declined(scores: Api) -> None:
    api = scores
    group_id = create_group(api, "owner", members=[("victim", "member")], activities=["do_c1"])
    ok(consent(api, "victim", group_id, "inactive"))
    assert statuses(api, group_id) == {"owner": "active"}
    assert ok(api.as_user("victim").post("/v1/group/list", {"filters": {"status": "invited"}}))["group"] == []


def test_a_platform_admin_adds_members_directly(scores: Api) -> None:
    api = scores
    admin = api.as_admin()
    group_id = str(ok(admin.post("/v1/group/create", {"name": "G", "members": [{"userId": "victim"}]}))["groupId"])
    assert statuses(api, group_id, "victim") == {"admin-1": "active", "victim": "active"}
    owned = create_group(api, "owner", members=[("m-2", "member")], activities=["do_c1"])
    add(api, owned, "victim", by=admin)  # a new member
    add(api, owned, "m-2", by=admin)  # an invited one: active now
    assert statuses(api, owned) == {"m-2": "active", "owner": "active", "victim": "active"}
    remove(api, owned, "victim")
    add(api, owned, "victim", by=admin)  # removed, added again by a platform admin: active
    assert scored_members(api, owned) == ["m-2", "owner", "victim"]


def test_a_removed_member_added_again_by_a_group_admin_is_invited_again(scores: Api) -> None:
    api = scores
    group_id = create_group(api, "owner", members=[("victim", "member")], activities=["do_c1"])
    ok(consent(api, "victim", group_id, "active"))
    remove(api, group_id, "victim")
    error(consent(api, "victim", group_id, "active"), 403, "UNAUTHORIZED_USER")  # no self-reinstatement
    add(api, group_id, "victim", by=api.as_user("owner"))
    assert statuses(api, group_id)["victim"] == "invited"
    assert scored_members(api, group_id) == ["owner"]


def test_an_active_member_added_again_stays_active(scores: Api) -> None:
    api = scores
    group_id = create_group(api, "owner", members=[("victim", "member")], activities=["do_c1"])
    ok(consent(api, "victim", group_id, "active"))
    ok(
        api.as_user("owner").patch(
            "/v1/group/update", {"groupId": group_id, "members": {"add": [{"userId": "victim", "role": "admin"}]}}
        )
    )
    listed = ok(api.as_user("victim").get(f"/v1/group/read/{group_id}?fields=members"))["members"]
    assert [(m["userId"], m["role"], m["status"]) for m in listed] == [
        ("owner", "admin", "active"),
        ("victim", "admin", "active"),
    ]


def test_invited_members_are_listed_to_group_admins_only(scores: Api) -> None:
    api = scores
    group_id = create_group(api, "owner", members=[("m-2", "member"), ("victim", "member")])
    ok(consent(api, "m-2", group_id, "active"))
    assert statuses(api, group_id, "m-2") == {"m-2": "active", "owner": "active"}
    assert statuses(api, group_id, "owner") == {"m-2": "active", "owner": "active", "victim": "invited"}
    admin_view = ok(api.as_admin().get(f"/v1/group/read/{group_id}?fields=members"))["members"]
    assert [m["status"] for m in admin_view] == ["active", "active", "invited"]
    # An invited member's role can be edited, and the invitation withdrawn.
    ok(
        api.as_user("owner").patch(
            "/v1/group/update", {"groupId": group_id, "members": {"edit": [{"userId": "victim", "role": "admin"}]}}
        )
    )
    assert statuses(api, group_id)["victim"] == "invited"
    remove(api, group_id, "victim")
    assert statuses(api, group_id) == {"m-2": "active", "owner": "active"}


def test_the_attack_of_reading_a_learners_scores_through_a_group_is_refused(scores: Api) -> None:
    """Any user creates a group with a victim in it and asks for the victim's scores: none are shown."""
    api = scores
    create_user(api, "victim", firstName="Vic", lastName="Tim")
    attacker = api.as_user("attacker")
    request = {
        "name": "Spy",
        "members": [{"userId": "victim", "role": "admin"}],
        "activities": [{"id": "do_c1", "type": "Course"}],
    }
    group_id = ok(attacker.post("/v1/group/create", request))["groupId"]
    # Adding the victim again does not make them active either.
    add(api, group_id, "victim", by=attacker)
    for include_all in (False, True):
        result = ok(attacker.post(ACTIVITY, query(group_id, includeAllMembers=include_all)))
        assert all(m["userId"] != "victim" for m in result["members"])
        assert result["activity"]["agg"][0]["value"] == 0
    (activity,) = ok(attacker.post(GROUP, {"groupId": group_id}))["activity"]
    assert [m["metric"] for m in activity["agg"]] == ["enrolmentCount", "completedCount", "completionPercentage"]
    assert [m["value"] for m in activity["agg"]] == [0, 0, 0.0]
    listed = ok(attacker.get(f"/v1/group/read/{group_id}?fields=members"))["members"]
    assert [(m["userId"], m["status"]) for m in listed] == [("attacker", "active"), ("victim", "invited")]


def test_membership_update_refusals(api: Api) -> None:
    group_id = create_group(api, "owner", members=[("m-1", "member")])
    m1 = api.as_user("m-1")
    cases = [
        ({}, "GROUP_ID_MISSING", "GroupId is mandatory."),
        ({"groupId": "  ", "status": "active"}, "GROUP_ID_MISSING", None),
        ({"groupId": 5, "status": "active"}, "DATA_TYPE_ERROR", "Data type of groupId should be String"),
        ({"groupId": group_id}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter status is missing."),
        ({"groupId": group_id, "status": True}, "DATA_TYPE_ERROR", "Data type of status should be String"),
        (
            {"groupId": group_id, "status": "invited"},
            "INVALID_PARAMETER_VALUE",
            "Invalid value invited for parameter status. Please provide a valid value.",
        ),
    ]
    for request, code, message in cases:
        error(m1.patch(MEMBERSHIP, request), 400, code, message)
    error(m1.call("PATCH", MEMBERSHIP, {"request": []}), 400, "INVALID_REQUESTED_DATA")
    error(m1.patch(MEMBERSHIP, {"groupId": "nope", "status": "active"}), 404, "GROUP_NOT_FOUND")
    error(consent(api, "stranger", group_id, "active"), 403, "UNAUTHORIZED_USER", "You are not authorized.")
    error(consent(api, "stranger", group_id, "inactive"), 403, "UNAUTHORIZED_USER")
    error(api.patch(MEMBERSHIP, {"groupId": group_id, "status": "active"}), 401, "UNAUTHORIZED_USER")


def test_a_parent_accepts_for_the_managed_user(api: Api) -> None:
    create_user(api, "parent")
    create_user(api, "kid", managedBy="parent")
    group_id = create_group(api, "owner", members=[("kid", "member")])
    as_kid = {"x-authenticated-for": "kid"}
    ok(api.as_user("parent").patch(MEMBERSHIP, {"groupId": group_id, "status": "active"}, headers=as_kid))
    assert statuses(api, group_id) == {"kid": "active", "owner": "active"}
    error(consent(api, "parent", group_id, "active"), 403, "UNAUTHORIZED_USER")  # the parent has no membership


def test_load_groups_keeps_the_status_given_in_the_file(
    api: Api, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    members = [
        {"userId": "m-1"},
        {"userId": "m-2", "status": "invited"},
        {"userId": "m-3", "status": "inactive"},
    ]
    line = {"id": "g-1", "name": "Loaded", "createdBy": "owner", "members": members}
    path = tmp_path / "groups.jsonl"
    path.write_text(json.dumps(line) + "\n")
    assert main(["load", "groups", str(path)]) == 0
    assert statuses(api, "g-1") == {"m-1": "active", "m-2": "invited", "owner": "active"}
    ok(consent(api, "m-2", "g-1", "active"))
    assert statuses(api, "g-1", "m-2") == {"m-1": "active", "m-2": "active", "owner": "active"}


class TestConsentOff:
    """`groups.member_consent=false`: members are active at once, as on the reference platform."""

    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, groups=GroupsSettings(member_consent=False))

    def test_members_are_active_at_once(self, scores: Api) -> None:
        api = scores
        group_id = create_group(api, "owner", members=[("victim", "member")], activities=["do_c1"])
        assert statuses(api, group_id, "victim") == {"owner": "active", "victim": "active"}
        assert scored_members(api, group_id) == ["owner", "victim"]
        add(api, group_id, "m-2", by=api.as_user("owner"))
        remove(api, group_id, "victim")
        add(api, group_id, "victim", by=api.as_user("owner"))
        assert scored_members(api, group_id) == ["m-2", "owner", "victim"]

    def test_members_may_still_leave(self, scores: Api) -> None:
        api = scores
        group_id = create_group(api, "owner", members=[("victim", "member")], activities=["do_c1"])
        ok(consent(api, "victim", group_id, "inactive"))
        assert scored_members(api, group_id) == ["owner"]


class TestCache:
    """Consent changes drop the group's cached aggregates, as membership changes do."""

    @pytest.fixture
    def redis_db(self, redis_server: RedisServer) -> Iterator[redis.Redis]:
        client = redis.Redis.from_url(redis_server.url(15))
        client.flushdb()
        yield client
        client.flushdb()
        client.close()

    @pytest.fixture
    def settings(self, database_url: str, redis_db: redis.Redis) -> Settings:
        kwargs = redis_db.connection_pool.connection_kwargs
        url = f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"
        cache = GroupAggSettings(cache=GroupAggCacheSettings(enabled=True, ttl_seconds=3600))
        return Settings(database_url=database_url, redis_url=url, group_agg=cache)

    def test_accept_and_leave_invalidate_the_cached_aggregates(self, scores: Api, redis_db: redis.Redis) -> None:
        api = scores
        group_id = create_group(api, "owner", members=[("victim", "member")], activities=["do_c1"])
        key = f"{group_id}:do_c1:Course:activity-agg"
        assert [m["userId"] for m in ok(api.as_user("owner").post(ACTIVITY, query(group_id)))["members"]] == ["owner"]
        assert redis_db.exists(key)
        ok(consent(api, "victim", group_id, "active"))
        assert not redis_db.exists(key)
        result = ok(api.as_user("owner").post(ACTIVITY, query(group_id)))
        assert [m["userId"] for m in result["members"]] == ["owner", "victim"]
        assert redis_db.exists(key)
        ok(consent(api, "victim", group_id, "inactive"))
        assert not redis_db.exists(key)
        assert [m["userId"] for m in ok(api.as_user("owner").post(ACTIVITY, query(group_id)))["members"]] == ["owner"]
