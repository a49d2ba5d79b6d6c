"""`/v1/group/activity/agg` serves memoised member entries: the same bytes as the rules rendered whole, and never an
entry older than the row (docs/api.md#group-aggregates)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, update

from learnagg.adapters.store.tables import group_member, user_activity_agg, users
from learnagg.domain import group_metrics
from learnagg.domain.group_metrics import MemberRow
from learnagg.domain.platform import ACTIVE
from tests.entrypoints.api.group_data import add_group, add_member, add_row, add_user, spec_example
from tests.entrypoints.api.support import Api, ok

ACTIVITY = "/v1/group/activity/agg"
REQUEST = {"groupId": "g-1", "activityId": "do_c1", "activityType": "Course"}


def _oracle_members(api: Api, include_all_members: bool = False) -> bytes:
    """The members rendered whole from the maps as the store decodes them (the rendering before memoised entries)."""
    m, u, a = group_member.c, users.c, user_activity_agg.c
    rows_join = (a.activity_type == "Course") & (a.activity_id == "do_c1") & (a.user_id == m.user_id)
    stmt = (
        select(m.user_id, m.role, m.status, m.created_by, u.first_name, u.last_name)
        .add_columns(a.context_id, a.agg, a.aggregates, a.agg_last_updated)
        .select_from(group_member.outerjoin(users, u.id == m.user_id).outerjoin(user_activity_agg, rows_join))
        .where(m.group_id == "g-1", m.status == ACTIVE)
    )
    with api.app.store.read() as conn:
        rows = [MemberRow._make(r) for r in conn.execute(stmt)]
    result = group_metrics.activity_agg(
        "g-1", "do_c1", "Course", rows, include_all_members=include_all_members, now=api.app.clock()
    )
    return b'"members":' + orjson.dumps(result["members"])


def _answer(api: Api, **extra: Any) -> bytes:
    response = api.as_user("u-1").post(ACTIVITY, {**REQUEST, **extra})
    assert response.status_code == 200, response.text
    return response.content


def test_answers_equal_the_whole_rendering_byte_for_byte(api: Api) -> None:
    spec_example(api.app)
    add_member(api.app, "u-3")
    add_user(api.app, "u-3", "Zoë", "Ünal 🙂")
    add_member(api.app, "u-4")  # no row: listed only with includeAllMembers
    add_row(
        api.app,
        "u-3",
        "b-é",
        agg={"completedCount": 2, "score:ü": 9_007_199_254_740_993},
        aggregates={"score:ü": 1e300, "max_score:ü": 2.0, "score:do_a1": 0.1, "big": 18_446_744_073_709_551_615},
        stamps={"score:ü": 1637748000000, "big": None},
    )
    add_row(api.app, "u-3", "b-2", aggregates={"completedCount": 3.0})
    for include_all_members in (False, True, False):  # the second and third answers come from the memo
        body = _answer(api, includeAllMembers=include_all_members)
        assert _oracle_members(api, include_all_members) in body


def test_a_row_written_after_an_answer_is_answered_afresh(api: Api) -> None:
    spec_example(api.app)
    before = ok(api.as_user("u-1").post(ACTIVITY, REQUEST))["members"]
    assert before[0]["agg"][3] == {"metric": "score:do_a1", "value": 1.33, "lastUpdatedOn": 1637748000000}
    a = user_activity_agg.c
    with api.app.store.write() as conn:
        row = (a.user_id == "u-1") & (a.context_id == "cb:b-1")
        conn.execute(update(user_activity_agg).where(row).values(aggregates={"score:do_a1": 2.5}))
    assert _oracle_members(api) in _answer(api)
    (entry,) = [m for m in ok(api.as_user("u-1").post(ACTIVITY, REQUEST))["members"] if m["userId"] == "u-1"]
    assert entry["agg"] == [
        {"metric": "score:do_a1", "value": 2.5, "lastUpdatedOn": 1637748000000},
    ]


def test_a_renamed_member_or_a_new_role_is_answered_afresh(api: Api) -> None:
    spec_example(api.app)
    _answer(api)
    with api.app.store.write() as conn:
        conn.execute(update(users).where(users.c.id == "u-2").values(first_name="Ravi", last_name="Kumar"))
        conn.execute(update(group_member).where(group_member.c.user_id == "u-2").values(role="admin"))
    members = ok(api.as_user("u-1").post(ACTIVITY, REQUEST))["members"]
    assert [(m["name"], m["role"]) for m in members] == [("Asha Rao", "admin"), ("Ravi Kumar", "admin")]


def test_the_same_member_in_two_groups_keeps_each_groups_role(api: Api) -> None:
    spec_example(api.app)
    add_group(api.app, "g-2")
    add_member(api.app, "u-1", group_id="g-2", role="member")
    assert ok(api.as_user("u-1").post(ACTIVITY, REQUEST))["members"][0]["role"] == "admin"
    assert ok(api.as_user("u-1").post(ACTIVITY, {**REQUEST, "groupId": "g-2"}))["members"][0]["role"] == "member"
    assert ok(api.as_user("u-1").post(ACTIVITY, REQUEST))["members"][0]["role"] == "admin"
