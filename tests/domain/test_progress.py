"""SPEC §4.3 pure rules: progress event checks (P1–P3), dedup keys (P4), status merge (P6), completion (P7–P9)."""

from __future__ import annotations

import hashlib

import pytest

from learnagg.domain.assess_event import InvalidEvent
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE, parse_hierarchy
from learnagg.domain.messages import progress_event
from learnagg.domain.progress import (
    SKIP_ACTION,
    SKIP_NO_CONTENTS,
    Completion,
    completion,
    dedup_key,
    enrolment_change,
    is_completed_status,
    is_live_key,
    merged_statuses,
    parse_progress_event,
)

T = 1_700_000_000_000


def event(contents: list[tuple[str, object]], **edata: object) -> dict:
    raw = progress_event(user_id="u1", batch_id="b1", course_id="c1", contents=[], now=T)
    raw["edata"]["contents"] = [{"contentId": c, "status": s} for c, s in contents]
    raw["edata"].update(edata)
    return raw


def leaf(identifier: str, **extra: object) -> dict:
    return {"identifier": identifier, "mimeType": "application/pdf", **extra}


def unit(identifier: str, children: list[dict], **extra: object) -> dict:
    return {"identifier": identifier, "mimeType": COLLECTION_MIME_TYPE, "children": children, **extra}


# course c1: unit u1 (l1, l2 optional), optional unit u2 (l3, l4), l5 directly under the course
TREE = parse_hierarchy(
    unit(
        "c1",
        [
            unit("u1", [leaf("l1"), leaf("l2", optional=True)]),
            unit("u2", [leaf("l3"), unit("u3", [leaf("l4")])], optional=True),
            leaf("l5"),
        ],
    )
)


# --- P1 action ---


@pytest.mark.parametrize("action", ["batch-enrolment-update", "BATCH-Enrolment-Update"])
def test_p1_action_is_case_insensitive(action):
    parsed = parse_progress_event(event([("l1", 2)], action=action))
    assert parsed.skip is None and parsed.content_ids == ("l1",)


@pytest.mark.parametrize("action", ["batch-enrolment-sync", None, 3, ""])
def test_p1_other_action_is_skipped_before_identifier_checks(action):
    raw = event([("l1", 2)], action=action, userId="")
    assert parse_progress_event(raw).skip == SKIP_ACTION


def test_p1_missing_edata_is_skipped():
    assert parse_progress_event({"eid": "BE_JOB_REQUEST"}).skip == SKIP_ACTION


# --- P2 identifiers ---


def test_not_an_object_fails():
    with pytest.raises(InvalidEvent, match="event is not a JSON object"):
        parse_progress_event([1])


@pytest.mark.parametrize(
    ("edata", "reason"),
    [
        ({"courseId": None}, "courseId is mandatory"),
        ({"courseId": "  ", "batchId": ""}, "courseId is mandatory"),
        ({"batchId": 12}, "batchId is mandatory"),
        ({"userId": ""}, "userId is mandatory"),
    ],
)
def test_p2_identifiers_must_be_non_empty_strings(edata, reason):
    with pytest.raises(InvalidEvent) as info:
        parse_progress_event(event([("l1", 2)], **edata))
    assert info.value.reason == reason


# --- P3 contents ---


def test_p3_keeps_completed_contents_with_ids_distinct_in_order():
    raw = event([("l2", 2), ("l1", 1), ("", 2), ("  ", 2), ("l3", 2.0), ("l2", 2), ("l4", "2"), ("l5", True)])
    raw["edata"]["contents"] += [{"status": 2}, "l9", {"contentId": 7, "status": 2}]
    assert parse_progress_event(raw).content_ids == ("l2", "l3")


def test_p3_numeric_status_rules():
    assert is_completed_status(2) and is_completed_status(2.0)
    assert not any(is_completed_status(v) for v in ("2", True, 2.5, 1, None, [2]))


@pytest.mark.parametrize("contents", [[], [("l1", 1)], [("l1", "2")]])
def test_p3_no_completed_content_skips(contents):
    assert parse_progress_event(event(contents)).skip == SKIP_NO_CONTENTS


def test_p3_contents_not_a_list_skips():
    raw = event([])
    raw["edata"]["contents"] = {"contentId": "l1", "status": 2}
    assert parse_progress_event(raw).skip == SKIP_NO_CONTENTS


# --- P4 dedup key ---


def test_p4_dedup_key_is_upper_case_md5_of_the_joined_ids():
    expected = hashlib.md5(b"c1|b1|u1|l1|2").hexdigest().upper()
    assert dedup_key("c1", "b1", "u1", "l1") == expected
    assert len(expected) == 32 and expected == expected.upper()
    assert dedup_key("c1", "b1", "ü", "l1") == hashlib.md5("c1|b1|ü|l1|2".encode()).hexdigest().upper()


def test_p4_key_counts_until_it_expires():
    assert is_live_key(T + 1, T)
    assert not is_live_key(T, T) and not is_live_key(None, T)


# --- P6 merge ---


def test_p6_merged_map_reads_null_as_one_and_inputs_at_two():
    stored = {"a": None, "b": 0, "c": 1, "d": 2}
    assert merged_statuses(stored, ["c", "e"]) == {"a": 1, "b": 0, "c": 2, "d": 2, "e": 2}
    assert merged_statuses({"x": 3}, ["x"]) == {"x": 3}  # the maximum of input and stored


# --- P7 / P8 completion ---


def test_p7_optional_leaves_and_optional_unit_do_not_count_for_the_course():
    assert TREE.required() == {"l1", "l5"}
    done = completion(TREE, {"l2": 2, "l3": 2, "l4": 2, "l1": 1}, with_units=False)
    assert done == Completion(0, False, {})
    assert completion(TREE, {"l1": 2, "l5": 2}, with_units=False).complete


def test_p8_units_are_ancestors_of_merged_contents_counting_their_own_required_leaves():
    done = completion(TREE, {"l4": 2, "l2": 2, "l1": 1}, with_units=True)
    # u2 is optional for the course, but its own leaves count for it; l2 is optional inside u1
    assert done.units == {"u1": 0, "u2": 1, "u3": 1}
    assert done.progress == 0


def test_p8_contents_outside_the_tree_have_no_units():
    assert completion(TREE, {"gone": 2}, with_units=True).units == {}


def test_p7_course_with_only_optional_leaves_is_complete_at_once():
    tree = parse_hierarchy(unit("c2", [leaf("o1", optional=True)]))
    assert completion(tree, {"x": 1}, with_units=True) == Completion(0, True, {})


# --- P9 enrolment ---


def test_p9_missing_or_completed_enrolment_is_left_unchanged():
    done = Completion(2, True, {})
    assert enrolment_change(exists=False, stored_status=None, done=done, merged={}, now=T) is None
    assert enrolment_change(exists=True, stored_status=2, done=done, merged={}, now=T) is None


def test_p9_complete_sets_status_two_and_completedon():
    change = enrolment_change(exists=True, stored_status=1, done=Completion(2, True, {}), merged={"l1": 2}, now=T)
    assert change is not None
    assert change.columns() == {"status": 2, "progress": 2, "contentstatus": {"l1": 2}, "datetime": T, "completedon": T}


@pytest.mark.parametrize("stored", [None, 0, 1])
def test_p9_otherwise_in_progress_without_completedon(stored):
    change = enrolment_change(exists=True, stored_status=stored, done=Completion(1, False, {}), merged={"l1": 2}, now=T)
    assert change is not None
    assert change.columns() == {"status": 1, "progress": 1, "contentstatus": {"l1": 2}, "datetime": T}
