"""Group aggregate rules without a database (SPEC §5.4, §5.5)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from learnagg.domain.attempt_metrics import merged_view
from learnagg.domain.group_metrics import (
    ActivitySummary,
    AggRow,
    BestScore,
    MemberRow,
    activity_agg,
    activity_metrics,
    batch_id,
    content_order,
    display_name,
    keep_metric,
    latest_stamp,
    merged_metrics,
    metric_entries,
    score_stats,
    stamps_map,
    summarise,
    timestamp,
)

NOW = 1_700_000_000_000


def member(user: str, ctx: str | None = "cb:b-1", first: str | None = None, **maps: Any) -> MemberRow:
    return MemberRow(
        user, "member", "active", "u-1", first, None, ctx, maps.get("agg"), maps.get("aggregates"), maps.get("stamps")
    )


def row(user: str, ctx: str, aggregates: dict[str, Any], stamps: dict[str, Any] | None = None) -> AggRow:
    return AggRow(user, ctx, None, aggregates, stamps)


@pytest.mark.parametrize(
    ("first", "last", "name"),
    [
        ("Asha", "Rao", "Asha Rao"),
        ("Ravi", None, "Ravi"),
        ("Ravi", "null", "Ravi"),
        ("null", "Rao", "Rao"),
        (None, None, ""),
        (" Asha ", " ", "Asha"),
        ("Null", None, "Null"),  # only the exact literal "null" counts as empty
    ],
)
def test_display_name_trims_and_ignores_null(first: str | None, last: str | None, name: str) -> None:
    assert display_name(first, last) == name


def test_batch_id_drops_the_context_prefix() -> None:
    assert batch_id("cb:b-1") == "b-1"
    assert batch_id("other") == "other"


def test_timestamp_accepts_numbers_only() -> None:
    assert [timestamp(v) for v in (5, 5.9, True, "5", None, float("inf"))] == [5, 5, None, None, None, None]


_values = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.sampled_from(["1", " 2.5 ", "x", ""]),
    st.none(),
)
_maps = st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b", "score:c"]), _values, max_size=3))


@given(_maps, _maps)
def test_merged_metrics_equals_merged_view(agg: dict[str, Any] | None, aggregates: dict[str, Any] | None) -> None:
    assert merged_metrics(agg, aggregates) == merged_view(agg, aggregates)


def test_merged_metrics_aggregates_win_and_non_maps_count_as_empty() -> None:
    assert merged_metrics({"completedCount": 1, "x": 2}, {"x": 0.5}) == {"completedCount": 1.0, "x": 0.5}
    assert merged_metrics(["not", "a", "map"], "text") == {}
    assert merged_metrics({"huge": 10**400}, None) == {}  # not a double: skipped as merged_view does


def test_metric_entries_are_sorted_with_their_times() -> None:
    merged = {"score:b": 1.0, "completedCount": 2.0, "attempts_count:b": 1.0}
    assert metric_entries(merged, {"score:b": 9}) == [
        {"metric": "attempts_count:b", "value": 1.0, "lastUpdatedOn": None},
        {"metric": "completedCount", "value": 2.0, "lastUpdatedOn": None},
        {"metric": "score:b", "value": 1.0, "lastUpdatedOn": 9},
    ]


def test_stamps_are_integers_or_none() -> None:
    assert stamps_map({"a": 5, "b": 6}) == {"a": 5, "b": 6}
    assert stamps_map({"a": 5.5, "b": "6", "c": True}) == {"a": 5, "b": None, "c": None}
    assert stamps_map(None) == {} and stamps_map([1]) == {}


def test_latest_stamp_counts_keys_of_the_merged_view_only() -> None:
    assert latest_stamp({"a": 1.0, "b": 1.0}, {"a": 5, "b": None}) == 5
    assert latest_stamp({"a": 1.0}, {"a": 5, "z": 9}) == 5
    assert latest_stamp({}, {"z": 9}) is None
    assert latest_stamp({"a": 1.0}, {}) is None


def test_activity_agg_sorts_by_user_then_batch_with_null_first() -> None:
    rows = [
        member("u-2", "cb:b-2", aggregates={"x": 1.0}, stamps={"x": 5}),
        member("u-1", "cb:b-9", "Asha"),
        member("u-3", None),
        member("u-1", "cb:", "Asha"),
        member("u-2", "cb:b-1"),
    ]
    result = activity_agg("g", "c", "Course", rows, include_all_members=True, now=NOW)
    assert [(m["userId"], m["batchId"]) for m in result["members"]] == [
        ("u-1", ""),
        ("u-1", "b-9"),
        ("u-2", "b-1"),
        ("u-2", "b-2"),
        ("u-3", None),
    ]
    assert result["activity"] == {
        "id": "c",
        "type": "Course",
        "agg": [{"metric": "enrolmentCount", "lastUpdatedOn": 5, "value": 2}],
    }
    assert [m["userId"] for m in activity_agg("g", "c", "T", rows, include_all_members=False, now=NOW)["members"]] == [
        "u-1",
        "u-1",
        "u-2",
        "u-2",
    ]


def test_activity_agg_without_times_uses_now() -> None:
    result = activity_agg("g", "c", "Course", [member("u-3", None)], include_all_members=False, now=NOW)
    assert result == {
        "groupId": "g",
        "activity": {
            "id": "c",
            "type": "Course",
            "agg": [{"metric": "enrolmentCount", "lastUpdatedOn": NOW, "value": 0}],
        },
        "members": [],
    }


def test_summarise_picks_the_highest_score_tie_to_lowest_context() -> None:
    summary = summarise(
        [
            row("u-1", "cb:b-2", {"score:c": 1.0, "max_score:c": 4.0}, {"score:c": 30}),
            row("u-1", "cb:b-1", {"score:c": 1.0, "max_score:c": 2.0}, {"score:c": 10}),
            row("u-1", "cb:b-0", {"score:c": 0.5, "max_score:c": 1.0}, {"score:c": 99, "completedCount": 100}),
            row("u-2", "cb:b-1", {"completedCount": 1.0}),
        ]
    )
    assert summary.enrolled == 2
    assert summary.last_updated == 99  # only keys of the merged view count (completedCount at 100 is not one)
    assert summary.best == {"c": {"u-1": BestScore(1.0, 2.0, "cb:b-1", 10)}}


def test_content_order_hierarchy_first_then_ids() -> None:
    assert content_order(["x", "m", "b", "a", "z"], {"z": 1, "a": 4, "m": 7, "other": 0}) == ["z", "a", "m", "b", "x"]


def test_score_stats_round_and_skip_percentages_without_max() -> None:
    best = {
        "u-2": BestScore(1.0, 3.0, "cb:b", 5),
        "u-1": BestScore(1.0, None, "cb:b", None),
        "u-3": BestScore(0.0, 0.0, "cb:b", 7),
    }
    assert score_stats("c", best) == [
        {"metric": "score:c:count", "value": 3, "lastUpdatedOn": 7},
        {"metric": "score:c:min", "value": 0.0, "lastUpdatedOn": 7},
        {"metric": "score:c:max", "value": 1.0, "lastUpdatedOn": 7},
        {"metric": "score:c:avg", "value": 0.67, "lastUpdatedOn": 7},
        {"metric": "score:c:avgPercentage", "value": 33.33, "lastUpdatedOn": 7},
    ]
    assert [m["metric"] for m in score_stats("c", {"u": BestScore(2.0, 0.0, "cb:b", None)})][-1] == "score:c:avg"


def test_keep_metric_matches_whole_names_or_prefixes() -> None:
    assert keep_metric("anything", None)
    assert keep_metric("score:c:avg", ["score"]) and keep_metric("score:c:avg", ["score:c:avg"])
    assert not keep_metric("score:c:avgPercentage", ["score:c:avg"])
    assert not keep_metric("completedCount", ["completed"]) and not keep_metric("completedCount", [])


def test_activity_metrics_in_spec_order() -> None:
    summary = ActivitySummary(
        3, None, {"b": {"u": BestScore(1.0, 2.0, "cb:x", 4)}, "a": {"u": BestScore(2.0, 2.0, "", 3)}}
    )
    metrics = activity_metrics(summary, completed_count=1, positions={"b": 0, "a": 1}, fields=None, now=NOW)
    assert [(m["metric"], m["value"], m["lastUpdatedOn"]) for m in metrics[:3]] == [
        ("enrolmentCount", 3, NOW),
        ("completedCount", 1, NOW),
        ("completionPercentage", 33.33, NOW),
    ]
    assert [m["metric"] for m in metrics[3:] if m["metric"].endswith(":count")] == ["score:b:count", "score:a:count"]
    empty = activity_metrics(
        ActivitySummary(0, None, {}), completed_count=2, positions={}, fields=["completion"], now=1
    )
    assert empty == []
    zero = activity_metrics(
        ActivitySummary(0, None, {}), completed_count=2, positions={}, fields=["completionPercentage"], now=1
    )
    assert zero == [{"metric": "completionPercentage", "value": 0.0, "lastUpdatedOn": 1}]
