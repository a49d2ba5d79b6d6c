"""`learnagg load users|batches|groups|enrolments` (run in-process): JSON lines, one transaction, FILE:LINE errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, select

from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import course_batch, group_member, groups, user_enrolments, users
from learnagg.entrypoints.cli import main
from tests.support import course


@pytest.fixture
def url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test database, initialised through the CLI (`LEARNAGG_DATABASE_URL`)."""
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    assert main(["init"]) == 0
    yield database_url


def write(tmp_path: Path, name: str, *lines: Any) -> str:
    path = tmp_path / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return str(path)


def rows(url: str, table: Table) -> list[dict[str, Any]]:
    store = Store(url)
    try:
        with store.read() as conn:
            return [dict(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()]
    finally:
        store.dispose()


def load_course(tmp_path: Path) -> None:
    assert main(["load", "courses", write(tmp_path, "courses.jsonl", course("do_c1", ["do_l1"]))]) == 0


def test_load_users(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(
        tmp_path,
        "users.jsonl",
        {"id": "u-1", "firstName": "Asha", "board": ["CBSE"], "roles": ["PLATFORM_ADMIN"], "status": 1},
        "",
        {"request": {"id": "u-2", "managedBy": "u-1"}},
    )
    assert main(["load", "users", file]) == 0
    assert "loaded 2 user(s)" in capsys.readouterr().err
    loaded = {r["id"]: r for r in rows(url, users)}
    assert (loaded["u-1"]["first_name"], loaded["u-1"]["board"], loaded["u-1"]["roles"]) == (
        "Asha",
        '["CBSE"]',
        ["PLATFORM_ADMIN"],
    )
    assert loaded["u-2"]["managed_by"] == "u-1"


def test_a_bad_line_refuses_the_whole_file(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path, "users.jsonl", {"id": "u-1"}, {"firstName": "no id"})
    assert main(["load", "users", file]) == 1
    assert f"learnagg: error: {file}:2: Mandatory parameter id is missing." in capsys.readouterr().err
    file = write(tmp_path, "broken.jsonl", {"id": "u-1"}, "{not json")
    assert main(["load", "users", file]) == 1
    assert f"{file}:2: not JSON" in capsys.readouterr().err
    assert rows(url, users) == []


def test_load_batches(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_course(tmp_path)
    file = write(
        tmp_path,
        "batches.jsonl",
        {"courseId": "do_c1", "batchId": "b-1", "name": "One", "startDate": "2023-11-01"},
        {"request": {"courseId": "do_c1", "batchId": "b-2", "name": "Two", "startDate": "2023-11-01", "status": 2}},
    )
    assert main(["load", "batches", file]) == 0
    assert main(["load", "batches", file]) == 0  # a reload replaces the batches
    assert capsys.readouterr().err.count("loaded 2 batch(es)") == 2
    loaded = rows(url, course_batch)
    assert [(b["batchid"], b["name"], b["status"], b["createdby"]) for b in loaded] == [
        ("b-1", "One", 1, None),
        ("b-2", "Two", 2, None),
    ]


def test_batch_refusals_name_the_line(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_course(tmp_path)
    ok_line = {"courseId": "do_c1", "batchId": "b-1", "name": "One", "startDate": "2023-11-01"}
    file = write(tmp_path, "b.jsonl", ok_line, {**ok_line, "batchId": "b-2", "courseId": "nope"})
    assert main(["load", "batches", file]) == 1
    assert f"{file}:2: Course does not exist." in capsys.readouterr().err
    file = write(tmp_path, "d.jsonl", ok_line, {**ok_line, "startDate": "01-11-2023"})
    assert main(["load", "batches", file]) == 1
    assert f"{file}:2: Date format error." in capsys.readouterr().err
    assert rows(url, course_batch) == []  # one transaction: nothing was written


def test_load_groups(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = {
        "id": "g-1",
        "name": "Circle",
        "createdBy": "owner",
        "activities": [{"id": "do_c1", "type": "Course"}],
        "members": [{"userId": "m-1", "role": "member"}, {"userId": "m-2", "role": "admin", "status": "inactive"}],
    }
    file = write(tmp_path, "groups.jsonl", line, {"name": "No id"})
    assert main(["load", "groups", file]) == 0
    assert "loaded 2 group(s)" in capsys.readouterr().err
    loaded = {g["name"]: g for g in rows(url, groups)}
    assert loaded["Circle"]["id"] == "g-1" and loaded["Circle"]["created_by"] == "owner"
    assert loaded["Circle"]["activities"] == [{"id": "do_c1", "type": "Course"}]
    assert loaded["No id"]["created_by"] is None
    members = [(m["group_id"], m["user_id"], m["role"], m["status"]) for m in rows(url, group_member)]
    assert members == [
        ("g-1", "m-1", "member", "active"),
        ("g-1", "m-2", "admin", "inactive"),
        ("g-1", "owner", "admin", "active"),
    ]


def test_group_refusals_name_the_line(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path, "groups.jsonl", {"name": "A"}, {"name": "B", "members": [{"userId": "u", "status": "gone"}]})
    assert main(["load", "groups", file]) == 1
    assert f"{file}:2: Invalid value gone for parameter status." in capsys.readouterr().err
    assert rows(url, groups) == []


def test_load_enrolments(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_course(tmp_path)
    batches = write(
        tmp_path, "b.jsonl", {"courseId": "do_c1", "batchId": "b-1", "name": "B", "startDate": "2023-11-01"}
    )
    assert main(["load", "batches", batches]) == 0
    line = {"userId": "u-1", "courseId": "do_c1", "batchId": "b-1", "status": 2, "progress": 1}
    done = {**line, "enrolledDate": 1_690_000_000_000, "completedOn": 1_700_000_000_000}
    file = write(tmp_path, "e.jsonl", line, {**line, "userId": "u-2", "status": None}, done)
    assert main(["load", "enrolments", file]) == 0
    assert "loaded 2 enrolment(s)" in capsys.readouterr().err  # u-1 twice: the later line wins
    loaded = {r["userid"]: r for r in rows(url, user_enrolments)}
    u1 = loaded["u-1"]
    assert (u1["active"], u1["status"], u1["progress"], u1["enrolled_date"], u1["completedon"]) == (
        True,
        2,
        1,
        1_690_000_000_000,
        1_700_000_000_000,
    )
    assert (loaded["u-2"]["status"], loaded["u-2"]["active"]) == (0, True)


def test_enrolment_refusals_name_the_line(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_course(tmp_path)
    file = write(tmp_path, "e.jsonl", {"userId": "u-1", "courseId": "do_c1", "batchId": "nope"})
    assert main(["load", "enrolments", file]) == 1
    assert f"{file}:1: Batch does not exist." in capsys.readouterr().err
    file = write(tmp_path, "e2.jsonl", {"courseId": "do_c1", "batchId": "b"})
    assert main(["load", "enrolments", file]) == 1
    assert f"{file}:1: UserId is mandatory." in capsys.readouterr().err
    file = write(tmp_path, "e3.jsonl", {"userId": "u", "courseId": "do_c1", "batchId": "b", "progress": -1})
    assert main(["load", "enrolments", file]) == 1
    assert f"{file}:1: Invalid value -1 for parameter progress." in capsys.readouterr().err
    assert rows(url, user_enrolments) == []
