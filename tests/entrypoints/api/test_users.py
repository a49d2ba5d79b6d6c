"""Users API (SPEC §2.4, §5.9): `POST /v1/user/load`, `PATCH /v1/user/update`, `GET /v1/user/read/{userId}`."""

from __future__ import annotations

import pytest

from tests.entrypoints.api.support import Api, create_user, error, ok

ASHA = {
    "id": "u-1",
    "firstName": "Asha",
    "lastName": "Rao",
    "rootOrgId": "o-1",
    "orgName": "Org One",
    "state": "KA",
    "district": "Bengaluru",
    "block": "B1",
    "cluster": "C1",
    "schoolId": "s-1",
    "schoolName": "School One",
    "userType": "student",
    "userSubType": "primary",
    "board": ["CBSE", "ICSE"],
    "roles": ["PUBLIC"],
    "status": 1,
    "managedBy": "parent-1",
}


def test_load_then_read_returns_every_field_and_the_display_name(api: Api) -> None:
    body = api.as_admin().post("/v1/user/load", {"users": [ASHA]}).json()
    assert body["id"] == "api.user.load" and body["result"] == {"count": 1}
    body = api.as_user("u-1").get("/v1/user/read/u-1").json()
    assert body["id"] == "api.user.read"
    assert body["result"] == {**ASHA, "board": '["CBSE", "ICSE"]', "displayName": "Asha Rao"}


def test_load_is_a_full_upsert_per_user(api: Api) -> None:
    admin = api.as_admin()
    ok(admin.post("/v1/user/load", {"users": [ASHA]}))
    result = ok(admin.post("/v1/user/load", {"users": [{"id": "u-1", "lastName": "R."}, {"id": "u-2"}, {"id": "u-2"}]}))
    assert result == {"count": 2}  # distinct users
    user = ok(admin.get("/v1/user/read/u-1"))
    assert user["lastName"] == "R." and user["firstName"] is None and user["roles"] is None
    assert user["displayName"] == "R."


def test_load_needs_a_platform_admin(api: Api) -> None:
    request = {"users": [{"id": "u-9"}]}
    error(api.post("/v1/user/load", request), 401, "UNAUTHORIZED_USER", "You are not authorized.")
    error(api.as_user("u-1").post("/v1/user/load", request), 403, "UNAUTHORIZED_USER", "You are not authorized.")


def test_the_admin_role_can_come_from_the_users_table(api: Api) -> None:
    create_user(api, "boss", roles=["PLATFORM_ADMIN"])
    assert ok(api.as_user("boss").post("/v1/user/load", {"users": [{"id": "u-9"}]})) == {"count": 1}


@pytest.mark.parametrize(
    ("request_body", "code", "message"),
    [
        ({}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter users is missing."),
        ({"users": []}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter users is missing."),
        ({"users": "u-1"}, "DATA_TYPE_ERROR", "Data type of users should be List"),
        ({"users": [{"firstName": "A"}]}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter id is missing."),
        ({"users": [{"id": "u", "firstName": 3}]}, "DATA_TYPE_ERROR", "Data type of firstName should be String"),
        ({"users": [{"id": "u", "roles": "ADMIN"}]}, "DATA_TYPE_ERROR", "Data type of roles should be List"),
        ({"users": [{"id": "u", "board": 1}]}, "DATA_TYPE_ERROR", "Data type of board should be List"),
        (
            {"users": [{"id": "u", "status": 7}]},
            "INVALID_PARAMETER_VALUE",
            "Invalid value 7 for parameter status. Please provide a valid value.",
        ),
    ],
)
def test_load_validation(api: Api, request_body: dict, code: str, message: str) -> None:
    error(api.as_admin().post("/v1/user/load", request_body), 400, code, message)


def test_load_refuses_more_users_than_the_list_limit(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.app.settings.api, "max_list_items", 2)
    response = api.as_admin().post("/v1/user/load", {"users": [{"id": "a"}, {"id": "b"}, {"id": "c"}]})
    error(response, 400, "INVALID_PARAMETER_VALUE")


def test_update_sets_only_the_given_fields(api: Api) -> None:
    admin = api.as_admin()
    ok(admin.post("/v1/user/load", {"users": [ASHA]}))
    body = admin.patch("/v1/user/update", {"userId": "u-1", "firstName": "Asha K", "managedBy": None}).json()
    assert body["id"] == "api.user.update" and body["result"] == {"response": "SUCCESS"}
    user = ok(admin.get("/v1/user/read/u-1"))
    assert user == {
        **ASHA,
        "board": '["CBSE", "ICSE"]',
        "firstName": "Asha K",
        "managedBy": None,
        "displayName": "Asha K Rao",
    }


def test_update_errors(api: Api) -> None:
    admin = api.as_admin()
    error(
        admin.patch("/v1/user/update", {"userId": "nobody", "state": "KA"}),
        404,
        "USER_NOT_FOUND",
        "User does not exist.",
    )
    error(admin.patch("/v1/user/update", {"userId": "nobody"}), 404, "USER_NOT_FOUND")
    error(admin.patch("/v1/user/update", {"state": "KA"}), 400, "USERID_MISSING", "UserId is mandatory.")
    error(admin.patch("/v1/user/update", {"userId": "u", "status": "1"}), 400, "DATA_TYPE_ERROR")
    create_user(api, "u-1")
    error(api.as_user("u-1").patch("/v1/user/update", {"userId": "u-1", "state": "KA"}), 403, "UNAUTHORIZED_USER")
    error(api.patch("/v1/user/update", {"userId": "u-1"}), 401, "UNAUTHORIZED_USER")


def test_read_is_for_the_user_themself_or_an_admin(api: Api) -> None:
    create_user(api, "u-1", firstName="Asha")
    create_user(api, "child", firstName="Kid", managedBy="parent")
    assert ok(api.as_user("u-1").get("/v1/user/read/u-1"))["displayName"] == "Asha"
    assert ok(api.as_admin().get("/v1/user/read/u-1"))["id"] == "u-1"
    error(api.as_user("u-2").get("/v1/user/read/u-1"), 403, "UNAUTHORIZED_USER")
    error(api.get("/v1/user/read/u-1"), 401, "UNAUTHORIZED_USER")
    error(api.as_admin().get("/v1/user/read/nobody"), 404, "USER_NOT_FOUND", "User does not exist.")
    managed = api.as_user("parent").get("/v1/user/read/child", headers={"x-authenticated-for": "child"})
    assert ok(managed)["displayName"] == "Kid"
