"""Pure platform rules (SPEC §2.3, §2.4, §5.9): batch status, display names, enrolment refusals, member changes."""

from __future__ import annotations

from datetime import date

import pytest

from learnagg.domain.identity import Caller
from learnagg.domain.platform import (
    GroupChanges,
    NewGroup,
    NewMember,
    acts_as,
    apply_member_changes,
    batch_dates_refusal,
    board_text,
    cert_templates,
    default_batch_status,
    default_user,
    display_name,
    enrol_refusal,
    group_members,
    patch_activities,
    read_parts,
    unenrol_refusal,
    unique_activities,
    user_columns,
)

TODAY = date(2023, 11, 14)
YESTERDAY = date(2023, 11, 13)
TOMORROW = date(2023, 11, 15)


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        (TOMORROW, None, 0),  # start after today: upcoming
        (TOMORROW, TOMORROW, 0),
        (TODAY, None, 1),  # starts today: ongoing
        (YESTERDAY, TODAY, 1),  # ends today: still ongoing
        (YESTERDAY, None, 1),
        (date(2023, 1, 1), YESTERDAY, 2),  # end before today: ended
    ],
)
def test_default_batch_status_follows_the_dates(start, end, status):
    assert default_batch_status(start, end, TODAY) == status


def test_batch_dates_must_be_in_order():
    assert batch_dates_refusal(TODAY, TOMORROW, TODAY) is None
    assert batch_dates_refusal(TODAY, YESTERDAY, None) == ("endDate", "2023-11-13")
    assert batch_dates_refusal(TODAY, None, YESTERDAY) == ("enrollmentEndDate", "2023-11-13")
    assert batch_dates_refusal(YESTERDAY, TODAY, TOMORROW) == ("enrollmentEndDate", "2023-11-15")
    assert batch_dates_refusal(None, None, TOMORROW) is None


def test_display_name_trims_and_treats_null_as_empty():
    assert display_name("Asha", "Rao") == "Asha Rao"
    assert display_name(" Asha ", None) == "Asha"
    assert display_name("null", "Rao") == "Rao"
    assert display_name(None, "null") == ""


def test_board_list_is_kept_as_a_json_array_string():
    assert board_text(["CBSE", "ICSE"]) == '["CBSE", "ICSE"]'
    assert board_text("CBSE") == "CBSE"
    assert board_text(None) is None
    assert user_columns({"board": ["A"], "firstName": "x", "unknown": 1}) == {"board": '["A"]', "first_name": "x"}


def test_cert_template_fields_become_text():
    templates = {"t1": {"name": "Cert", "criteria": {"enrollment": {"status": 2}}, "signatoryList": [1]}}
    assert cert_templates(templates) == {
        "t1": {"name": "Cert", "criteria": '{"enrollment":{"status":2}}', "signatoryList": "[1]"}
    }
    assert cert_templates(None) is None


def test_acting_for_oneself_or_a_managed_user_needs_no_admin():
    parent = Caller("parent", requested_for="child")
    assert acts_as(parent, "child") and acts_as(parent, "parent")
    assert not acts_as(Caller("u-1"), "u-2")
    assert default_user(parent, None) == default_user(parent, " ") == "child"
    assert default_user(parent, "u-9") == "u-9"


def enrol_code(status=1, end=None, enrollment_end=None, active=None):
    return enrol_refusal(
        status=status, end_date=end, enrollment_end_date=enrollment_end, enrolment_active=active, today=TODAY
    )


def test_enrol_refusals_in_reference_order():
    assert enrol_code() is None
    assert enrol_code(active=False) is None  # an inactive row is reactivated
    assert enrol_code(status=2, enrollment_end=YESTERDAY, active=True) == "BATCH_ENDED"
    assert enrol_code(end=YESTERDAY) == "BATCH_ENDED"
    assert enrol_code(end=TODAY) is None  # the end day itself still accepts enrolments
    assert enrol_code(enrollment_end=YESTERDAY, active=True) == "ENROLLMENT_ENDED"
    assert enrol_code(enrollment_end=TODAY) is None
    assert enrol_code(active=True) == "USER_ALREADY_ENROLLED_COURSE"


def unenrol_code(status=1, end=None, active=True, enrolment_status=0):
    return unenrol_refusal(
        status=status, end_date=end, enrolment_active=active, enrolment_status=enrolment_status, today=TODAY
    )


def test_unenrol_refusals():
    assert unenrol_code() is None
    assert unenrol_code(active=None) == "USER_NOT_ENROLLED_COURSE"
    assert unenrol_code(active=False) == "USER_NOT_ENROLLED_COURSE"
    assert unenrol_code(enrolment_status=2) == "USER_ALREADY_COMPLETED_COURSE"
    assert unenrol_code(status=2, active=None) == "BATCH_ENDED"  # the batch is checked first, as in the reference
    assert unenrol_code(end=YESTERDAY) == "BATCH_ENDED"


def test_creator_is_an_active_admin_and_members_are_unique():
    group = NewGroup(
        "g", "G", created_by="u-1", members=[NewMember("u-3"), NewMember("u-2"), NewMember("u-3", "admin")]
    )
    assert group_members(group) == [NewMember("u-1", "admin"), NewMember("u-2"), NewMember("u-3", "admin")]
    assert group_members(NewGroup("g", "G", created_by=None)) == []
    # A loaded group may list its creator, e.g. as a member who left.
    listed = NewGroup("g", "G", created_by="u-1", members=[NewMember("u-1", "member", "inactive")])
    assert group_members(listed) == [NewMember("u-1", "member", "inactive")]


def test_member_changes_add_then_edit_then_remove():
    current = {"a": ("member", "active"), "b": ("admin", "inactive"), "c": ("member", "active")}
    changes = GroupChanges(
        add=[NewMember("b", "member"), NewMember("n", "admin")],
        edit=[NewMember("a", "admin"), NewMember("ghost", "admin")],
        remove=["c", "n", "ghost"],
    )
    assert apply_member_changes(current, changes) == {
        "b": ("member", "active"),  # reactivated with the new role
        "n": ("admin", "inactive"),  # added, then removed in the same request
        "a": ("admin", "active"),
        "c": ("member", "inactive"),
    }


def test_edit_and_remove_ignore_users_who_are_not_active_members():
    current = {"b": ("admin", "inactive")}
    changes = GroupChanges(edit=[NewMember("b", "member")], remove=["b", "x"])
    assert apply_member_changes(current, changes) == {}
    assert changes.members_changed and not changes.activities_changed


def test_activities_keep_their_order():
    current = [{"id": "c1", "type": "Course"}, {"id": "c2", "type": "Course"}]
    add = [{"id": "c3", "type": "Course"}, {"id": "c1", "type": "Other"}]
    assert patch_activities(current, add, ["c2"]) == [{"id": "c1", "type": "Other"}, {"id": "c3", "type": "Course"}]
    assert patch_activities(None, [], []) == []
    assert unique_activities([{"id": "a", "type": "Course"}, {"id": "a", "type": "X"}]) == [
        {"id": "a", "type": "Course"}
    ]


def test_group_read_parts():
    assert read_parts(None) == {"members", "activities"}
    assert read_parts("members") == {"members"}
    assert read_parts(" activities ,nope") == {"activities"}
    assert read_parts("") == frozenset()
