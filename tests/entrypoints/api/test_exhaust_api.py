"""SPEC §5.10 exhaust request API on SQLite and PostgreSQL: envelope, access, lifecycle, links and downloads."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from learnagg.adapters.zipfiles import read_entry
from learnagg.batch.exhaust_runner import run_exhaust
from learnagg.domain import exhaust as dx
from learnagg.settings import Settings
from tests.batch.test_exhaust_runner import BATCH, CHANNEL, blobs_of, world
from tests.conftest import T
from tests.entrypoints.api.support import Api, create_user

SUBMIT, READ, LIST = "/v1/dataset/request/submit", "/v1/dataset/request/read", "/v1/dataset/request/list"
TODAY = "2023-11-14"  # T in setting `timezone` (UTC): the request id's date
HEADERS = {"X-Channel-ID": CHANNEL}
PROGRESS_HEADER = (
    "Collection Id,Collection Name,Batch Id,Batch Name,User UUID,State,District,Org Name,School Id,School Name,"
    "Block Name,Cluster Name,User Type,User Sub Type,Declared Board,Enrolment Date,Completion Date,"
    "Certificate Status,Progress,Total Score,c1 - Score,c2 - Score"
)
ROW = "do_course,do_course,BatchId_batch-1,Batch One,{},,,,,,,,,,,20/09/2019,,,0,70%,60%,80%"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The test database, and report files in a private folder."""
    return Settings(database_url=database_url, blob_url=str(tmp_path / "blobs"))


@pytest.fixture
def staff(api: Api) -> Api:
    """Report admins ra-1 and ra-2, an org admin, a learner and another org's report admin."""
    create_user(api, "ra-1", rootOrgId=CHANNEL, roles=["REPORT_ADMIN"])
    create_user(api, "ra-2", rootOrgId=CHANNEL, roles=["REPORT_ADMIN"])
    create_user(api, "oa-1", rootOrgId=CHANNEL, roles=["ORG_ADMIN"])
    create_user(api, "learner", rootOrgId=CHANNEL, roles=["PUBLIC"])
    create_user(api, "ra-x", rootOrgId="org-x", roles=["REPORT_ADMIN"])
    return api


def request(tag: str = "tag-1", config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"tag": tag, "dataset": "progress-exhaust", "datasetConfig": config or {"batchId": BATCH}, **extra}


def envelope(response: httpx.Response, api_id: str, status: int = 200) -> dict[str, Any]:
    """Assert the analytics envelope; return the body."""
    body = response.json()
    assert response.status_code == status, body
    assert (body["id"], body["ver"]) == (f"ekstep.analytics.dataset.request.{api_id}", "1.0")
    assert set(body) == {"id", "ver", "ts", "params", "responseCode", "result"}
    assert set(body["params"]) == {"resmsgid", "msgid", "status", "err", "errmsg"}
    return body


def success(response: httpx.Response, api_id: str) -> Any:
    body = envelope(response, api_id)
    assert (body["params"]["status"], body["responseCode"], body["params"]["err"]) == ("successful", "OK", None)
    return body["result"]


def refused(response: httpx.Response, api_id: str, status: int, code: str, message: str | None = None) -> None:
    body = envelope(response, api_id, status)
    assert (body["params"]["status"], body["responseCode"], body["params"]["err"]) == ("failed", code, code)
    if message is not None:
        assert body["params"]["errmsg"] == message


def submit(api: Api, user: str, req: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return api.as_user(user).post(SUBMIT, req, headers=HEADERS if headers is None else headers)


def test_submit_read_and_list(staff):
    job = success(submit(staff, "ra-1", request()), "submit")
    rid = dx.md5u(f"progress-exhaust|tag-1|ra-1|{CHANNEL}|{TODAY}")
    assert job == {
        "requestId": rid,
        "tag": f"tag-1:{CHANNEL}",
        "dataset": "progress-exhaust",
        "requestedBy": "ra-1",
        "requestedChannel": CHANNEL,
        "status": "SUBMITTED",
        "lastUpdated": T,
        "datasetConfig": {"batchId": BATCH},
        "attempts": 0,
        "jobStats": {"dtJobSubmitted": T},
        "statusMessage": "",
    }
    reader = staff.as_user("ra-1")
    assert success(reader.get(f"{READ}/tag-1", params={"requestId": rid}, headers=HEADERS), "info") == job
    # SPEC's paths are served too.
    assert success(reader.get(f"/dataset/v1/request/read/tag-1?requestId={rid}", headers=HEADERS), "info") == job
    assert success(reader.get(f"{LIST}/tag-1", headers=HEADERS), "list") == {"count": 1, "jobs": [job]}


def test_request_id_includes_the_dataset_config_type(staff):
    job = success(submit(staff, "ra-1", request(config={"batchId": BATCH, "type": "x"})), "submit")
    assert job["requestId"] == dx.md5u(f"progress-exhaust|tag-1|ra-1|{CHANNEL}|{TODAY}|x")


def test_same_day_resubmission_returns_the_request_unless_it_failed(staff, app, clock):
    first = success(submit(staff, "ra-1", request(config={"batchId": "nope"})), "submit")
    clock.now += 60_000
    assert success(submit(staff, "ra-1", request()), "submit") == first  # unchanged, config included
    run_exhaust(app, blobs_of(app))
    failed = success(submit(staff, "ra-1", request(config={"batchId": "still-nope"})), "submit")
    assert failed["requestId"] == first["requestId"]
    assert (failed["status"], failed["attempts"], failed["datasetConfig"]) == (
        "SUBMITTED",
        0,  # iteration reset: the runner tries it again (SPEC §7 #22)
        {"batchId": "still-nope"},
    )
    assert failed["jobStats"] == {"dtJobSubmitted": clock.now}
    run_exhaust(app, blobs_of(app))
    reader = staff.as_user("ra-1")
    job = success(reader.get(f"{READ}/tag-1", params={"requestId": first["requestId"]}, headers=HEADERS), "info")
    assert (job["status"], job["attempts"], job["statusMessage"], job["downloadUrls"]) == (
        "FAILED",
        1,
        "No data found",
        [],
    )
    assert job["jobStats"]["dtJobCompleted"] == clock.now and isinstance(job["jobStats"]["executionTime"], int)
    clock.now += 86_400_000  # another day: another request
    assert success(submit(staff, "ra-1", request()), "submit")["requestId"] != first["requestId"]


@pytest.mark.parametrize(
    ("req", "message"),
    [
        ({}, "tag is empty"),
        ({"tag": " ", "dataset": "progress-exhaust"}, "tag is empty"),
        ({"tag": "t"}, "dataset is empty"),
        ({"tag": "t", "dataset": "progress-exhaust"}, "datasetConfig is empty"),
        ({"tag": "t", "dataset": "progress-exhaust", "datasetConfig": {}}, "datasetConfig is empty"),
        ({"tag": "t", "dataset": "other", "datasetConfig": {"batchId": "b"}}, dx.DATASET_INVALID),
        (request(outputFormat="json"), dx.OUTPUT_FORMAT_INVALID),
        (request(zipEncryption="des"), dx.ZIP_ENCRYPTION_INVALID),
    ],
)
def test_submit_validation_in_order(staff, req, message):
    refused(submit(staff, "ra-1", req), "submit", 400, "CLIENT_ERROR", message)


def _deep(depth: int) -> Any:
    value: Any = "b"
    for _ in range(depth):
        value = {"k": [value]}
    return value


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (request(tag="é" * 501), "tag is longer than 1000 bytes"),
        (request(config={"batchId": _deep(40)}), "datasetConfig is nested deeper than 64 levels"),
        (request(config={"batchId": _deep(400)}), "datasetConfig is nested deeper than 64 levels"),
        (
            request(config={"batchId": 1e300}),
            "datasetConfig must hold only finite numbers with absolute value at most 1e15",
        ),
        (
            request(config={"batchId": 2**70}),
            "datasetConfig must hold only finite numbers with absolute value at most 1e15",
        ),
        (request(config={"batchFilter": ["b"] * 1001}), "datasetConfig has a list of 1001 items (at most 1000)"),
        (
            request(config={"searchFilter": {"filters": {"identifier": ["c"] * 1001}}}),
            "datasetConfig has a list of 1001 items (at most 1000)",
        ),
    ],
)
def test_submit_bodies_are_bounded(staff, req, message):
    refused(submit(staff, "ra-1", req), "submit", 400, "CLIENT_ERROR", message)
    assert success(submit(staff, "ra-1", request(tag="é" * 500)), "submit")["tag"] == f"{'é' * 500}:{CHANNEL}"


def test_access_needs_the_channel_header_a_role_and_the_same_root_org(staff):
    refused(submit(staff, "ra-1", request(), headers={}), "submit", 400, "CLIENT_ERROR", dx.CHANNEL_MISSING)
    refused(submit(staff, "learner", request()), "submit", 403, "FORBIDDEN")
    refused(submit(staff, "ra-x", request()), "submit", 403, "FORBIDDEN")
    refused(staff.post(SUBMIT, request(), headers=HEADERS), "submit", 401, "UNAUTHORIZED")
    refused(submit(staff, "ra-1", request(requestedBy="ra-2")), "submit", 403, "FORBIDDEN")


def test_only_the_requester_or_an_admin_reads_a_request(staff):
    rid = success(submit(staff, "ra-1", request()), "submit")["requestId"]
    query = {"params": {"requestId": rid}, "headers": HEADERS}
    refused(staff.as_user("ra-2").get(f"{READ}/tag-1", **query), "info", 403, "FORBIDDEN", dx.NOT_REQUESTER)
    assert success(staff.as_user("ra-2").get(f"{LIST}/tag-1", headers=HEADERS), "list") == {"count": 0, "jobs": []}
    assert success(staff.as_user("oa-1").get(f"{READ}/tag-1", **query), "info")["requestId"] == rid
    assert success(staff.as_user("oa-1").get(f"{LIST}/tag-1", headers=HEADERS), "list")["count"] == 1
    create_user(staff, "pa-1", rootOrgId=CHANNEL, roles=["PLATFORM_ADMIN", "REPORT_ADMIN"])
    assert success(staff.as_user("pa-1").get(f"{READ}/tag-1", **query), "info")["requestId"] == rid


def test_a_platform_admin_needs_an_exhaust_role_in_the_channel(staff):
    """Reports hold learners' personal data: being a platform admin elsewhere opens no channel's reports."""
    rid = success(submit(staff, "ra-1", request()), "submit")["requestId"]
    create_user(staff, "pa-x", rootOrgId="org-x", roles=["PLATFORM_ADMIN", "REPORT_ADMIN"])
    for admin in (staff.as_admin(), staff.as_user("pa-x")):
        refused(admin.post(SUBMIT, request(), headers=HEADERS), "submit", 403, "FORBIDDEN")
        refused(admin.get(f"{LIST}/tag-1", headers=HEADERS), "list", 403, "FORBIDDEN")
        refused(admin.get(f"{READ}/tag-1", params={"requestId": rid}, headers=HEADERS), "info", 403, "FORBIDDEN")
    # With an exhaust role in the channel's root org, a platform admin is an admin of the channel's requests.
    create_user(staff, "pa-1", rootOrgId=CHANNEL, roles=["PLATFORM_ADMIN", "REPORT_ADMIN"])
    assert success(staff.as_user("pa-1").get(f"{LIST}/tag-1", headers=HEADERS), "list")["count"] == 1
    # A platform admin with only PLATFORM_ADMIN in the channel's root org is refused too.
    create_user(staff, "pa-2", rootOrgId=CHANNEL, roles=["PLATFORM_ADMIN"])
    refused(staff.as_user("pa-2").get(f"{LIST}/tag-1", headers=HEADERS), "list", 403, "FORBIDDEN")


def test_platform_admins_on_any_channel_when_the_setting_says_so(staff, app):
    app.settings.exhaust.platform_admin_any_channel = True
    rid = success(submit(staff, "ra-1", request()), "submit")["requestId"]
    admin = staff.as_admin()
    assert success(admin.get(f"{READ}/tag-1", params={"requestId": rid}, headers=HEADERS), "info")["requestId"] == rid
    assert success(admin.get(f"{LIST}/tag-1", headers=HEADERS), "list")["count"] == 1
    job = success(admin.post(SUBMIT, request(requestedBy="ra-2"), headers=HEADERS), "submit")
    assert job["requestedBy"] == "ra-2"  # a platform admin may submit in another user's name
    refused(staff.as_user("ra-x").get(f"{LIST}/tag-1", headers=HEADERS), "list", 403, "FORBIDDEN")


def test_read_of_an_unknown_request_is_200_failed(staff):
    response = staff.as_user("ra-1").get(f"{READ}/tag-1", params={"requestId": "X"}, headers=HEADERS)
    body = envelope(response, "info")
    assert (body["params"]["status"], body["params"]["errmsg"], body["result"]) == ("failed", dx.NO_JOB, {})


def test_list_is_newest_first_and_limited(staff, clock):
    for tag_day in range(3):
        clock.now = T + tag_day * 86_400_000
        submit(staff, "ra-1", request())
    jobs = success(staff.as_user("ra-1").get(f"{LIST}/tag-1?limit=2", headers=HEADERS), "list")
    assert jobs["count"] == 2
    assert [j["jobStats"]["dtJobSubmitted"] for j in jobs["jobs"]] == [T + 2 * 86_400_000, T + 86_400_000]
    refused(staff.as_user("ra-1").get(f"{LIST}/tag-1?limit=x", headers=HEADERS), "list", 400, "CLIENT_ERROR")
    assert success(staff.as_user("ra-1").get(f"{LIST}/tag-1?limit=99999", headers=HEADERS), "list")["count"] == 3


@pytest.mark.parametrize("limit", ["%C2%B2", "%D9%A1%D9%A2", "9" * 5000, "0", "-1", "1e3", "%20"])
def test_a_hostile_limit_is_400_after_the_access_checks(staff, limit):
    path = f"{LIST}/tag-1?limit={limit}"
    refused(staff.get(path, headers=HEADERS), "list", 401, "UNAUTHORIZED")
    refused(staff.as_user("learner").get(path, headers=HEADERS), "list", 403, "FORBIDDEN")
    refused(staff.as_user("ra-1").get(path, headers=HEADERS), "list", 400, "CLIENT_ERROR")
    refused(
        staff.as_user("ra-1").get(f"/dataset/v1/request/list/tag-1?limit={limit}", headers=HEADERS),
        "list",
        400,
        "CLIENT_ERROR",
    )


def _download_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_end_to_end_submit_run_download_open_with_the_password(staff, app, caplog):
    world(app)
    req = request(encryptionKey="pa55word")
    with caplog.at_level(logging.DEBUG):
        rid = success(submit(staff, "ra-1", req), "submit")["requestId"]
        summary = run_exhaust(app, blobs_of(app))
    assert summary.succeeded == 1
    assert "pa55word" not in caplog.text
    job = success(staff.as_user("ra-1").get(f"{READ}/tag-1", params={"requestId": rid}, headers=HEADERS), "info")
    assert (job["status"], job["expiresAt"], job["statusMessage"]) == ("SUCCESS", T + 30 * 60_000, "")
    [url] = job["downloadUrls"]
    assert url.startswith(f"http://testserver/v1/dataset/request/download/{rid}/{BATCH}_progress_20231115.zip?")
    response = staff.get(_download_path(url))  # the signed link is enough on its own
    assert (response.status_code, response.headers["content-type"]) == (200, "application/zip")
    name, data = read_entry(io.BytesIO(response.content), "pa55word")
    assert name == f"{BATCH}_progress_20231115.csv"
    assert data.decode().split("\n") == [PROGRESS_HEADER, *(ROW.format(u) for u in ("Zed", "abe", "émile")), ""]
    with pytest.raises(RuntimeError):
        read_entry(io.BytesIO(response.content))


def test_download_links_are_signed_expire_and_check_the_caller(staff, app, clock):
    world(app, attempts=False)
    rid = success(submit(staff, "ra-1", request()), "submit")["requestId"]
    run_exhaust(app, blobs_of(app))
    [url] = success(staff.as_user("ra-1").get(f"{READ}/tag-1", params={"requestId": rid}, headers=HEADERS), "info")[
        "downloadUrls"
    ]
    path = _download_path(url)
    file_path = path.split("?")[0]
    assert staff.get(path).status_code == 200
    assert staff.as_user("ra-1").get(file_path).status_code == 200  # the requester, without a link
    assert staff.as_user("oa-1").get(file_path).status_code == 200  # an admin of the channel
    refused(staff.as_user("ra-2").get(path), "download", 403, "FORBIDDEN", dx.NOT_REQUESTER)
    refused(staff.get(file_path), "download", 401, "UNAUTHORIZED")
    refused(staff.get(path.replace("signature=", "signature=0")), "download", 403, "FORBIDDEN")
    refused(staff.as_user("ra-1").get(file_path + "x"), "download", 404, "RESOURCE_NOT_FOUND")
    clock.now += 30 * 60_000
    refused(staff.get(path), "download", 403, "FORBIDDEN", "Download link is invalid or has expired")


def test_download_checks_the_link_or_the_caller_before_looking_the_request_up(staff, app):
    """No answer tells a caller without a link or rights whether a request or file exists."""
    world(app, attempts=False)
    rid = success(submit(staff, "ra-1", request()), "submit")["requestId"]
    run_exhaust(app, blobs_of(app))
    [url] = success(staff.as_user("ra-1").get(f"{READ}/tag-1", params={"requestId": rid}, headers=HEADERS), "info")[
        "downloadUrls"
    ]
    file_path = _download_path(url).split("?")[0]
    unknown = "/v1/dataset/request/download/NOPE/x.zip"
    for path in (file_path, file_path + "x", unknown):
        refused(staff.get(path), "download", 401, "UNAUTHORIZED")
        refused(staff.get(path + "?expires=1&signature=00"), "download", 403, "FORBIDDEN")
        refused(staff.as_user("ra-2").get(path), "download", 403, "FORBIDDEN", dx.NOT_REQUESTER)
        refused(staff.as_user("ra-x").get(path), "download", 403, "FORBIDDEN", dx.NOT_REQUESTER)
    refused(staff.as_user("ra-1").get(unknown), "download", 403, "FORBIDDEN", dx.NOT_REQUESTER)


@pytest.mark.parametrize("expires", ["%C2%B2", "%D9%A1%D9%A2", "9" * 5000, "-5", "", "1.5e12"])
def test_a_hostile_link_expiry_is_refused_without_a_server_error(staff, app, expires):
    world(app, attempts=False)
    rid = success(submit(staff, "ra-1", request()), "submit")["requestId"]
    run_exhaust(app, blobs_of(app))
    [url] = success(staff.as_user("ra-1").get(f"{READ}/tag-1", params={"requestId": rid}, headers=HEADERS), "info")[
        "downloadUrls"
    ]
    path, query = _download_path(url).split("?")
    signature = query.split("signature=")[1]
    hostile = f"{path}?expires={expires}&signature={signature}"
    refused(staff.get(hostile), "download", 403, "FORBIDDEN", "Download link is invalid or has expired")
    refused(staff.as_user("ra-1").get(hostile), "download", 403, "FORBIDDEN", "Download link is invalid or has expired")
