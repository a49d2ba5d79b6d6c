"""Group member consent rules (docs/threat-model.md): who joins as `invited`, and what members may set themselves."""

from __future__ import annotations

import pytest

from learnagg.domain.platform import (
    ACTIVE,
    INACTIVE,
    INVITED,
    GroupChanges,
    NewMember,
    apply_member_changes,
    consent_status,
    joining_status,
)


@pytest.mark.parametrize(
    ("current", "invite", "status"),
    [
        (None, True, INVITED),  # a new member added by someone else
        (INACTIVE, True, INVITED),  # a removed member added again
        (INVITED, True, INVITED),
        (ACTIVE, True, ACTIVE),  # never downgraded
        (None, False, ACTIVE),  # a platform admin, the member themselves, or consent off
        (INACTIVE, False, ACTIVE),
        (INVITED, False, ACTIVE),
    ],
)
def test_joining_status(current: str | None, invite: bool, status: str) -> None:
    assert joining_status(current, invite=invite) == status


def test_added_members_are_invited_except_the_caller() -> None:
    changes = GroupChanges(add=[NewMember("u-1"), NewMember("me", "admin"), NewMember("u-2", "admin")])
    current = {"u-2": ("member", ACTIVE)}
    touched = apply_member_changes(current, changes, invite=True, present={"me"})
    assert touched == {"u-1": ("member", INVITED), "me": ("admin", ACTIVE), "u-2": ("admin", ACTIVE)}


def test_edit_and_remove_apply_to_invited_members() -> None:
    current = {"u-1": ("member", INVITED), "u-2": ("member", INVITED), "u-3": ("member", INACTIVE)}
    changes = GroupChanges(edit=[NewMember("u-1", "admin"), NewMember("u-3", "admin")], remove=["u-2", "u-3"])
    assert apply_member_changes(current, changes, invite=True) == {
        "u-1": ("admin", INVITED),
        "u-2": ("member", INACTIVE),
    }


@pytest.mark.parametrize(
    ("current", "wanted", "result"),
    [
        (INVITED, ACTIVE, ACTIVE),  # accept
        (INVITED, INACTIVE, INACTIVE),  # decline
        (ACTIVE, INACTIVE, INACTIVE),  # leave
        (ACTIVE, ACTIVE, ACTIVE),  # unchanged
        (INACTIVE, INACTIVE, INACTIVE),  # unchanged
        (INACTIVE, ACTIVE, None),  # removed or left: a new invitation is needed
        (None, ACTIVE, None),  # no membership
        (None, INACTIVE, None),
        ("", ACTIVE, None),  # a row without a status
        ("", INACTIVE, ""),
    ],
)
def test_consent_status(current: str | None, wanted: str, result: str | None) -> None:
    assert consent_status(current, wanted) == result
