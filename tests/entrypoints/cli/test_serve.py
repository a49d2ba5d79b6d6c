"""`learnagg serve` end to end over real HTTP: platform data → submit → embedded jobs → group aggregates; SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.entrypoints.cli.test_cli_flow import learnagg
from tests.support import FIXTURES, course

COURSE = "do_2128415652377067521125"
LEAF = "do_212686723743318016173"
BATCH = "012846671379595264119"
LEARNER = "ff1c4bdf-27e2-49bc-a53f-6e304bb3a87f"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[httpx.Client, str, subprocess.Popen]]:
    """A `learnagg serve` process (jobs embedded) on a free port; yields a client, the database URL and the process."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/serve.db"
    else:
        url = request.getfixturevalue("pg_server").create_database(f"serve_{os.getpid()}_{time.monotonic_ns()}")
    assert learnagg("init", url=url).returncode == 0
    port = free_port()
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url, "LEARNAGG_WORKER__POLL_INTERVAL": "0.1"}
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield client, url, proc
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def token(url: str, user: str, *role: str) -> dict[str, str]:
    args = ["token", user, *(a for r in role for a in ("--role", r))]
    result = learnagg(*args, url=url)
    assert result.returncode == 0, result.stderr
    return {"x-authenticated-user-token": result.stdout.strip()}


def call(client: httpx.Client, path: str, request: dict, headers: dict[str, str]) -> dict:
    """POST ``{"request": request}`` and return the success envelope's result."""
    return result_of(client.post(path, json={"request": request}, headers=headers))


def result_of(response: httpx.Response) -> dict:
    body = response.json()
    assert response.status_code == 200 and body["responseCode"] == "OK", body
    return body["result"]


def test_submit_through_the_api_then_read_group_aggregates(served) -> None:
    client, url, proc = served
    admin = token(url, "admin-1", "admin")
    learner = token(url, LEARNER)

    hierarchy = course(COURSE, [LEAF], name="Basics")
    assert call(client, "/v1/course/hierarchy/load", {"hierarchy": hierarchy}, admin)["leafNodesCount"] == 1
    batch = {"courseId": COURSE, "batchId": BATCH, "name": "B1", "startDate": "2019-01-01"}
    assert result_of(client.post("/v1/course/batch/create", json={"request": batch}, headers=admin)) == {
        "batchId": BATCH
    }
    users = [{"id": LEARNER, "firstName": "Asha", "lastName": "Rao"}, {"id": "u-2", "firstName": "Ravi"}]
    assert result_of(client.post("/v1/user/load", json={"request": {"users": users}}, headers=admin)) == {"count": 2}
    enrol = {"courseId": COURSE, "batchId": BATCH}
    result_of(client.post("/v1/course/enrol", json={"request": enrol}, headers=learner))
    group = {
        "name": "Study circle",
        "activities": [{"id": COURSE, "type": "Course"}],
        "members": [{"userId": "u-2", "role": "member"}],
    }
    group_id = result_of(client.post("/v1/group/create", json={"request": group}, headers=learner))["groupId"]

    attempt = json.loads((FIXTURES / "golden-assess-event.json").read_text())
    del attempt["userId"]
    submitted = call(client, "/v1/assess/submit", {"assessments": [attempt]}, learner)
    [item] = submitted["assessments"]
    assert item["status"] == "SUBMITTED"
    assert (item["totalScore"], item["totalMaxScore"], item["grandTotal"]) == (1.33, 2.0, "1.33/2.0")

    # The embedded assessment aggregator picks the attempt up; the group sees the new best score.
    query = {"request": {"groupId": group_id, "activityId": COURSE, "activityType": "Course"}}
    deadline = time.monotonic() + 30
    while True:
        agg = result_of(client.post("/v1/group/activity/agg", json=query, headers=learner))
        # The activity updater may write the learner's row (progress) before the aggregator writes the score.
        if agg["members"] and any(m["metric"] == f"score:{LEAF}" for m in agg["members"][0]["agg"]):
            break
        assert time.monotonic() < deadline, "the embedded job did not aggregate the attempt"
        time.sleep(0.2)
    [member] = agg["members"]
    assert (member["userId"], member["name"], member["role"]) == (LEARNER, "Asha Rao", "admin")
    assert member["batchId"] == BATCH
    metrics = {m["metric"]: m["value"] for m in member["agg"]}
    assert metrics[f"score:{LEAF}"] == 1.33
    assert metrics[f"max_score:{LEAF}"] == 2.0
    assert metrics[f"attempts_count:{LEAF}"] == 1.0
    assert agg["activity"]["agg"][0]["metric"] == "enrolmentCount" and agg["activity"]["agg"][0]["value"] == 1

    state = {"courseId": COURSE, "batchId": BATCH, "fields": ["progress", "score"]}
    [content] = result_of(client.post("/v1/content/state/read", json={"request": state}, headers=learner))[
        "contentList"
    ]
    assert content["contentId"] == LEAF and content["status"] == 2
    assert content["bestScore"]["score"] == 1.33 and content["bestScore"]["attemptsCount"] == 1.0

    # A clean stop on SIGTERM.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_token_is_refused_by_a_server_with_another_secret(served) -> None:
    client, url, _ = served
    learner = token(url, LEARNER)
    forged = {"x-authenticated-user-token": learner["x-authenticated-user-token"][:-4] + "AAAA"}
    body = client.post("/v1/content/state/read", json={"request": {}}, headers=forged).json()
    assert body["responseCode"] == "UNAUTHORIZED" and body["params"]["err"] == "UNAUTHORIZED_USER"
