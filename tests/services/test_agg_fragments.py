"""The spliced member entries of `/v1/group/activity/agg` encode to the same bytes as the rules rendered whole.

The oracle is :func:`learnagg.domain.group_metrics.activity_agg` over the decoded rows, encoded by orjson as the
envelope encodes it: the rendering the answer had before entries were memoised.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnagg.domain import group_metrics
from learnagg.services import agg_fragments
from learnagg.services.agg_fragments import FragmentMemo

GROUP, ACTIVITY, NOW = "g-1", "do_c1", 1_700_000_000_000

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)
metric_key = st.one_of(
    st.sampled_from(["completedCount", "score:do_a1", "max_score:do_a1", "attempts_count:do_a1", "score:ü🙂"]),
    text,
)
number = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: float(round(f))),  # doubles without a fraction
    st.integers(-(2**63), 2**64 - 1),
    st.integers(2**64, 2**80),  # decoded as doubles
)
value = st.one_of(number, st.none(), st.booleans(), st.sampled_from(["1.5", "7", "x", ""]))
stamp = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),  # 1e300 is a time past orjson's integers: both fail alike
    st.none(),
    st.booleans(),
    text,
)
a_map = st.one_of(
    st.none(),
    st.dictionaries(metric_key, number, max_size=5),
    st.dictionaries(metric_key, value, max_size=4),
    st.sampled_from([[], 3, "text", {}]),  # stored JSON that is not an object counts as empty
)
stamps_map = st.one_of(st.none(), st.dictionaries(metric_key, stamp, max_size=5))
column = st.one_of(st.none(), st.sampled_from(["admin", "member", "active", "u-1", "null", "", "Ünï 🙂"]))
# Stored JSON text as each backend gives it back: compact (SQLite), spaced (PostgreSQL's jsonb), ASCII-escaped.
spelling = st.sampled_from(["compact", "spaced", "ascii"])


def _stored(value: object, how: str) -> str | None:
    if value is None:
        return None
    if how == "compact":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(value, ensure_ascii=how == "ascii")


@st.composite
def member_rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """What the activity query returns: each member once per row, or once with nulls when they have none."""
    rows: list[tuple[Any, ...]] = []
    users = draw(st.lists(st.sampled_from(["u-1", "u-2", "u-10", "U-3", "é", ""]), unique=True, max_size=5))
    for user in users:
        member = (user, draw(column), draw(column), draw(column), draw(column), draw(column))
        contexts = draw(st.lists(st.sampled_from(["cb:b-1", "cb:b-2", "cb:", "b-1", "cb:é"]), unique=True, max_size=3))
        if not contexts:
            rows.append((*member, None, None, None, None))
        for ctx in contexts:
            how = draw(spelling)
            maps = (draw(a_map), draw(a_map), draw(stamps_map))
            rows.append((*member, ctx, *(_stored(m, how) for m in maps)))
    return draw(st.permutations(rows))


def _oracle(rows: list[tuple[Any, ...]], include_all_members: bool) -> bytes:
    decoded = agg_fragments.decoded(rows)
    result = group_metrics.activity_agg(
        GROUP, ACTIVITY, "Course", decoded, include_all_members=include_all_members, now=NOW
    )
    return orjson.dumps(result)


def _fast(rows: list[tuple[Any, ...]], include_all_members: bool, memo: FragmentMemo) -> bytes:
    result = agg_fragments.activity_agg(
        GROUP, ACTIVITY, "Course", rows, include_all_members=include_all_members, now=NOW, memo=memo
    )
    return orjson.dumps(result)


def _versioned(rows: list[tuple[Any, ...]], include_all_members: bool, memo: FragmentMemo) -> bytes:
    """As on PostgreSQL: the members query gives a version of each row, the text is fetched for the rows missed."""
    version = {(r[0], r[6]): repr(r[7:]) for r in rows if r[6] is not None}  # changes whenever the row does

    def fetch(users: Any) -> list[tuple[Any, ...]]:
        return [(r[0], r[6], version[r[0], r[6]], *r[7:]) for r in rows if r[0] in users and r[6] is not None]

    seen = [(*r[:7], version.get((r[0], r[6]))) for r in rows]
    result = agg_fragments.activity_agg(
        GROUP, ACTIVITY, "Course", seen, include_all_members=include_all_members, now=NOW, memo=memo, fetch=fetch
    )
    return orjson.dumps(result)


SHARED = FragmentMemo(max_bytes=64 * 1024)  # across examples: the same keys come back with other rows
SHARED_VERSIONS = FragmentMemo(max_bytes=64 * 1024)


@settings(max_examples=300, deadline=None)
@given(rows=member_rows(), include_all_members=st.booleans())
def test_spliced_entries_equal_the_whole_rendering(rows: list[tuple[Any, ...]], include_all_members: bool) -> None:
    try:
        expected = _oracle(rows, include_all_members)
    except TypeError:  # a value orjson cannot encode: the answer fails the same way (500 INTERNAL_ERROR)
        with pytest.raises(TypeError):
            _fast(rows, include_all_members, FragmentMemo())
        return
    fresh = FragmentMemo()
    assert _fast(rows, include_all_members, fresh) == expected  # rendered
    assert _fast(rows, include_all_members, fresh) == expected  # from the memo
    assert _fast(rows, include_all_members, SHARED) == expected  # a memo holding other rows under the same keys
    assert _versioned(rows, include_all_members, SHARED_VERSIONS) == expected
    assert _versioned(rows, include_all_members, SHARED_VERSIONS) == expected


def test_a_row_deleted_between_the_two_reads_is_left_out() -> None:
    rows = [_row('{"score:a":1.0}'), ("u-2", "member", "active", "u-1", "R", None, "cb:b-1", None, "{}", None)]
    seen = [(*r[:7], "v1") for r in rows]

    def fetch(users: Any) -> list[tuple[Any, ...]]:
        return [(r[0], r[6], "v1", *r[7:]) for r in rows[1:]]

    result = agg_fragments.activity_agg(
        GROUP, ACTIVITY, "Course", seen, include_all_members=False, now=NOW, memo=FragmentMemo(), fetch=fetch
    )
    assert orjson.dumps(result) == _oracle(rows[1:], False)


def _row(aggregates: str | None, *, role: str = "member", first: str = "Asha") -> tuple[Any, ...]:
    return ("u-1", role, "active", "u-1", first, "Rao", "cb:b-1", None, aggregates, '{"score:a":5}')


def test_a_changed_row_is_rendered_again() -> None:
    memo = FragmentMemo()
    first = _fast([_row('{"score:a":1.0}')], False, memo)
    for changed in (_row('{"score:a":2.0}'), _row('{"score:a":1.0}', role="admin"), _row('{"score:a":1.0}', first="A")):
        assert _fast([changed], False, memo) == _oracle([changed], False) != first
    assert len(memo) == 1  # one key, its entry replaced


def test_an_entry_older_than_the_age_bound_is_rendered_again() -> None:
    row = _row('{"score:a":1.0}')
    young, old = FragmentMemo(), FragmentMemo(max_age_s=0.0)
    for memo in (young, old):
        _fast([row], False, memo)
    assert young.get(GROUP, ACTIVITY, row) is not None
    time.sleep(0.001)
    assert old.get(GROUP, ACTIVITY, row) is None  # the next answer renders it again
    assert _fast([row], False, old) == _oracle([row], False)


def test_the_memo_stays_within_its_bound() -> None:
    memo = FragmentMemo(max_bytes=4096)
    for index in range(50):
        rows = [(f"u-{index}", "member", "active", "u-1", "A", "B", "cb:b", None, '{"score:a":1.5}', None)]
        assert _fast(rows, False, memo) == _oracle(rows, False)
    assert 0 < memo.size <= 4096 and len(memo) < 50


def test_a_stored_map_that_is_not_json_fails_the_read() -> None:
    with pytest.raises(ValueError):
        _fast([_row("{not json")], False, FragmentMemo())
