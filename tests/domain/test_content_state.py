"""SPEC §5.6–5.8 pure rules: merging content items, batch checks, orderings, best score, outgoing messages."""

from __future__ import annotations

import re

import pytest

from learnagg.domain.content_state import (
    ContentState,
    ContentUpdate,
    assessment_event,
    batch_refusal,
    best_score,
    content_update,
    merge_content,
    most_recently_accessed,
    newest_first_key,
    scored_contents,
)
from learnagg.domain.messages import progress_event

NOW = 1_700_000_000_000


def item(status: int, **kw: object) -> ContentUpdate:
    return ContentUpdate("do_c", "b-1", "do_a", status, **kw)  # type: ignore[arg-type]


def row(status: int | None, progress: int | None = 10, access: int | None = 100, completed: int | None = None):
    return ContentState(status, progress, access, completed, 50, '{"p":1}')


# --- step 5: new rows ---


def test_new_row_completed_gets_status_2_progress_100_and_completion_now():
    assert merge_content(None, item(3, progress=40), NOW) == ContentState(2, 100, NOW, NOW, NOW, None)


def test_new_row_completed_keeps_input_completion_and_access_times():
    merged = merge_content(None, item(2, last_access_time=5, last_completed_time=7), NOW)
    assert (merged.last_access_time, merged.last_completed_time) == (5, 7)


def test_new_row_incomplete_forces_progress_0_and_keeps_status():
    merged = merge_content(None, item(1, progress=40, last_completed_time=7, progress_details='{"a":1}'), NOW)
    assert merged == ContentState(1, 0, NOW, None, NOW, '{"a":1}')


# --- step 4: existing rows ---


def test_status_never_decreases_and_progress_is_the_max():
    merged = merge_content(row(2, progress=100, completed=90), item(1, progress=30), NOW)
    assert (merged.status, merged.progress, merged.last_completed_time) == (2, 100, 90)


def test_higher_incomplete_status_is_kept_with_the_larger_progress():
    merged = merge_content(row(0, progress=50), item(1, progress=30), NOW)
    assert (merged.status, merged.progress) == (1, 50)
    assert merge_content(row(1, progress=20), item(1, progress=30), NOW).progress == 30


def test_missing_progress_keeps_the_stored_progress():
    assert merge_content(row(1, progress=20), item(1), NOW).progress == 20


def test_completion_sets_status_2_progress_100_and_the_later_completion_time():
    assert merge_content(row(1, completed=None), item(2), NOW).last_completed_time == NOW
    assert merge_content(row(1, completed=None), item(5, last_completed_time=70), NOW).last_completed_time == 70
    merged = merge_content(row(2, completed=90), item(2, last_completed_time=70), NOW)
    assert (merged.status, merged.progress, merged.last_completed_time) == (2, 100, 90)


def test_null_stored_status_counts_as_0():
    assert merge_content(row(None), item(0), NOW).status == 0


def test_last_access_time_is_the_later_and_last_updated_is_now():
    assert merge_content(row(1, access=100), item(1, last_access_time=50), NOW).last_access_time == 100
    assert merge_content(row(1, access=100), item(1, last_access_time=150), NOW).last_access_time == 150
    assert merge_content(row(1, access=None), item(1), NOW).last_access_time is None
    assert merge_content(row(1), item(1), NOW).last_updated_time == NOW


def test_progressdetails_replaced_only_when_sent():
    assert merge_content(row(1), item(1), NOW).progress_details == '{"p":1}'
    assert merge_content(row(1), item(1, progress_details="[1]"), NOW).progress_details == "[1]"


# --- parsing items ---


def test_content_update_resolves_collection_id_dates_and_details():
    parsed = content_update(
        {
            "collectionId": "do_c",
            "batchId": "b-1",
            "contentId": "do_a",
            "status": 1,
            "userId": " ",
            "lastAccessTime": "2023-11-14 22:13:20:000+0000",
            "progressdetails": {"b": [1, "é"]},
        }
    )
    assert parsed == ContentUpdate("do_c", "b-1", "do_a", 1, None, None, NOW, None, '{"b":[1,"é"]}')


def test_assessment_event_overwrites_user_and_every_actor_and_resolves_aliases():
    raw = {
        "collectionId": "do_c",
        "contextId": "b-1",
        "userId": "someone",
        "extra": 1,
        "events": [{"actor": {"id": "x", "type": "User"}}, {"eid": "ASSESS"}, "not an object"],
    }
    event = assessment_event(raw, "u-1")
    assert event["courseId"] == "do_c" and event["batchId"] == "b-1" and event["userId"] == "u-1"
    assert event["extra"] == 1
    assert event["events"] == [
        {"actor": {"id": "u-1", "type": "User"}},
        {"eid": "ASSESS", "actor": {"id": "u-1"}},
        "not an object",
    ]
    assert raw["events"][0]["actor"]["id"] == "x"  # the request is not mutated


# --- batch checks, orderings, best score ---


@pytest.mark.parametrize(
    ("known", "status", "expected"),
    [
        (False, None, "BATCH_NOT_EXISTS"),
        (True, 0, "NOT_A_ON_GOING_BATCH"),
        (True, 2, "NOT_A_ON_GOING_BATCH"),
        (True, None, "NOT_A_ON_GOING_BATCH"),
        (True, 1, None),
    ],
)
def test_batch_refusal(known, status, expected):
    assert batch_refusal(known, status) == expected


def test_newest_first_null_oldest_tie_lowest_attempt_id():
    attempts = [(5, "b"), (None, "a"), (9, "z"), (5, "a")]
    assert sorted(attempts, key=lambda a: newest_first_key(*a)) == [(9, "z"), (5, "a"), (5, "b"), (None, "a")]


def test_most_recently_accessed_later_item_wins_a_tie():
    a, b, c = row(1, access=5), row(1, access=9), row(2, access=9)
    assert most_recently_accessed([("a", a), ("b", b), ("c", c)]) == ("c", c)
    assert most_recently_accessed([]) is None


def test_best_score_from_merged_metrics():
    merged = {"score:do_a": 1.33, "max_score:do_a": 2.0, "attempts_count:do_a": 2.0, "score:do_b": 1.0}
    assert best_score(merged, {"score:do_a": 77}, "do_a") == {
        "score": 1.33,
        "maxScore": 2.0,
        "attemptsCount": 2.0,
        "lastUpdatedOn": 77,
    }
    assert best_score(merged, None, "do_b") == {
        "score": 1.0,
        "maxScore": None,
        "attemptsCount": None,
        "lastUpdatedOn": None,
    }
    assert best_score(merged, {}, "do_x") is None
    assert scored_contents(merged) == {"do_a", "do_b"}


def test_progress_event_shape():
    event = progress_event(
        user_id="u-1", batch_id="b-1", course_id="do_c", contents=[("do_a", 2), ("do_b", 1)], now=NOW
    )
    assert re.fullmatch(rf"LP\.{NOW}\.[0-9a-f-]{{36}}", event.pop("mid"))
    assert event == {
        "eid": "BE_JOB_REQUEST",
        "ets": NOW,
        "actor": {"id": "Course Batch Updater", "type": "System"},
        "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}},
        "object": {"id": "b-1_u-1", "type": "CourseBatchEnrolment"},
        "edata": {
            "userId": "u-1",
            "batchId": "b-1",
            "courseId": "do_c",
            "contents": [{"contentId": "do_a", "status": 2}, {"contentId": "do_b", "status": 1}],
            "action": "batch-enrolment-update",
            "iteration": 1,
        },
    }
