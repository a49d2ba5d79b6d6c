"""The CLI as a user runs it for progress: init → load → publish progress → worker → inspect shows SPEC §4.3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE
from learnagg.domain.messages import progress_event
from tests.entrypoints.cli.test_cli_flow import empty_url, learnagg, lines, pg_server_if_needed  # noqa: F401 (fixtures)

C, B = "do_flow_course", "batch-flow"


def _leaf(identifier: str, **extra: Any) -> dict[str, Any]:
    return {"identifier": identifier, "name": identifier, "mimeType": "application/pdf", **extra}


def _unit(identifier: str, children: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": identifier,
        "mimeType": COLLECTION_MIME_TYPE,
        "children": children,
        **extra,
    }


# Unit U1 (L1, optional L2), optional unit U2 (L3), L4 under the course: completion needs L1 and L4.
COURSE = _unit(
    C, [_unit("U1", [_leaf("L1"), _leaf("L2", optional=True)]), _unit("U2", [_leaf("L3")], optional=True), _leaf("L4")]
)


def _jsonl(path: Path, *objects: Any) -> str:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))
    return str(path)


def _progress(user: str, *contents: str, **edata: Any) -> dict[str, Any]:
    event = progress_event(user_id=user, batch_id=B, course_id=C, contents=[(c, 2) for c in contents], now=1)
    event["edata"].update(edata)
    return event


def test_progress_flow_through_the_cli(empty_url, tmp_path):  # noqa: F811 (fixture)
    url = empty_url
    assert learnagg("init", url=url).returncode == 0
    assert learnagg("load", "courses", _jsonl(tmp_path / "c.jsonl", COURSE), url=url).returncode == 0
    batch = {"courseId": C, "batchId": B, "name": "Flow", "startDate": "2023-11-01"}
    assert learnagg("load", "batches", _jsonl(tmp_path / "b.jsonl", batch), url=url).returncode == 0
    enrolments = [{"userId": u, "courseId": C, "batchId": B} for u in ("u-1", "u-2")]
    assert learnagg("load", "enrolments", _jsonl(tmp_path / "e.jsonl", *enrolments), url=url).returncode == 0

    events = _jsonl(
        tmp_path / "p.jsonl",
        _progress("u-1", "L4", "L1", "L2"),
        _progress("u-2", "L3"),
        _progress("u-1", "L4"),  # a replay: deduplicated
        _progress("", "L1"),  # userId missing: failed topic
        _progress("u-3", "L1", action="other"),  # another action: skipped
    )
    published = learnagg("publish", "progress", events, url=url)
    assert published.returncode == 0 and "published 5 event(s)" in published.stderr
    [summary] = lines(learnagg("worker", "--until-idle", url=url))
    counters = summary["jobs"]["activity-aggregate-updater"]
    assert counters["success-event-count"] == 2
    assert counters["dedup-skipped-count"] == 1
    assert counters["skipped-event-count"] == 1
    assert counters["failed-event-count"] == 1
    assert counters["enrolment-complete-count"] == 1 and counters["cert-issue-events-count"] == 1

    u1, u2 = lines(learnagg("inspect", "enrolments", "--course-id", C, url=url))
    assert (u1["userid"], u1["status"], u1["progress"]) == ("u-1", 2, 2)
    assert u1["contentstatus"] == {"L1": 2, "L2": 2, "L4": 2}
    assert isinstance(u1["completedon"], int) and u1["completedon"] == u1["datetime"]
    assert (u2["userid"], u2["status"], u2["progress"], u2["completedon"]) == ("u-2", 1, 0, None)
    assert u2["contentstatus"] == {"L3": 2}

    consumption = lines(learnagg("inspect", "consumption", "--course-id", C, "--user-id", "u-1", url=url))
    assert [(r["contentid"], r["status"], r["viewcount"], r["completedcount"]) for r in consumption] == [
        ("L1", None, 1, 1),
        ("L2", None, 1, 1),
        ("L4", None, 1, 1),
    ]

    [course_row] = lines(learnagg("inspect", "user-activity-agg", "--activity-id", C, "--user-id", "u-1", url=url))
    assert course_row["context_id"] == f"cb:{B}" and course_row["aggregates"] == {"completedCount": 2.0}
    [u1_unit] = lines(learnagg("inspect", "user-activity-agg", "--activity-id", "U1", url=url))
    assert (u1_unit["user_id"], u1_unit["aggregates"]) == ("u-1", {"completedCount": 1.0})
    [u2_unit] = lines(learnagg("inspect", "user-activity-agg", "--activity-id", "U2", url=url))
    assert (u2_unit["user_id"], u2_unit["aggregates"]) == ("u-2", {"completedCount": 1.0})

    [request] = lines(learnagg("inspect", "events", "--topic", "certificate", url=url))
    assert request["object"]["id"] == f"{B}_{C}" and request["edata"]["userIds"] == ["u-1"]
    assert "attemptId" not in request["edata"]
    [bad] = lines(learnagg("inspect", "events", "--topic", "activity.agg.failed", url=url))
    assert bad["metadata"]["validation_error"] == "userId is mandatory"
    assert bad["metadata"]["src"] == "ActivityAggregateUpdater"
