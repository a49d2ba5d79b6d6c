"""Tests for attempt history parsing, merge, grading and rendering (SPEC §2.1, S2–S7)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnagg.domain.attempt_metrics import (
    GRADING_METHODS,
    AttemptHistory,
    AttemptRecord,
    content_metrics,
    latest_attempt_id,
    merge_attempts,
    merged_view,
    parse_agg_details,
    render_agg_details,
)

GOLDEN_ENTRY = (
    '{"attempt_id":"8cd87e24df268ad09a8b0060c0a40271","content_id":"do_212686723743318016173",'
    '"score":1.33,"max_score":2.0,"last_attempted_on":1568891729576,"type":"attempt_metrics"}'
)

# 2019-09-19 11:15:29 UTC
SEP19_UTC_MS = 1568891729000
SEP9_UTC_MS = SEP19_UTC_MS - 10 * 86_400_000


def _entry(**fields: object) -> str:
    base: dict[str, object] = {"attempt_id": "a1", "content_id": "c1", "score": 1, "max_score": 2}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def _rec(
    attempt_id: str, score: float = 1.0, max_score: float = 2.0, ts: int | None = None, content_id: str = "c1"
) -> AttemptRecord:
    return AttemptRecord(attempt_id, content_id, score, max_score, ts)


def _parse_one_ts(entry: str, zone: str = "UTC") -> int | None:
    history = parse_agg_details([entry], zone)
    assert history.opaque == ()
    (record,) = history.records
    return record.last_attempted_on


def _local_ms(zone: str, *args: int) -> int:
    return int(datetime(*args, tzinfo=ZoneInfo(zone)).timestamp()) * 1000


# --- parsing: written shape and legacy shapes -----------------------------------------------------


def test_written_shape_parses_epoch_ms_and_doubles():
    history = parse_agg_details([GOLDEN_ENTRY])
    assert history == AttemptHistory(
        records=(
            AttemptRecord("8cd87e24df268ad09a8b0060c0a40271", "do_212686723743318016173", 1.33, 2.0, 1568891729576),
        ),
        opaque=(),
    )
    assert isinstance(history.records[0].max_score, float)


def test_none_entries_parse_as_empty_history():
    assert parse_agg_details(None) == AttemptHistory(records=(), opaque=())
    assert parse_agg_details([]) == AttemptHistory(records=(), opaque=())


def test_numeric_string_score_and_max_score_are_accepted():
    (record,) = parse_agg_details([_entry(score=" 0.5 ", max_score="1e1")]).records
    assert (record.score, record.max_score) == (0.5, 10.0)


def test_legacy_shape_a_with_leading_zero_utc():
    assert _parse_one_ts(_entry(last_attempted_on="Sep 09, 2019, 11:15:29 AM")) == SEP9_UTC_MS


def test_legacy_shape_a_without_leading_zero_utc():
    assert _parse_one_ts(_entry(last_attempted_on="Sep 9, 2019, 11:15:29 AM")) == SEP9_UTC_MS
    assert _parse_one_ts(_entry(last_attempted_on="Sep 19, 2019, 11:15:29 AM")) == SEP19_UTC_MS


def test_legacy_shape_a_with_narrow_no_break_space_utc():
    assert _parse_one_ts(_entry(last_attempted_on="Sep 19, 2019, 11:15:29\u202fAM")) == SEP19_UTC_MS
    assert _parse_one_ts(_entry(last_attempted_on="Sep 9, 2019, 11:15:29\u202fPM")) == _local_ms(
        "UTC", 2019, 9, 9, 23, 15, 29
    )


def test_legacy_shape_a_in_non_utc_zone():
    entries = [
        _entry(attempt_id="a1", last_attempted_on="Sep 19, 2019, 11:15:29 AM"),
        _entry(attempt_id="a2", last_attempted_on="Sep 9, 2019, 11:15:29\u202fPM"),
    ]
    records = parse_agg_details(entries, "Asia/Kolkata").records
    assert records[0].last_attempted_on == SEP19_UTC_MS - 19_800_000  # UTC+05:30
    assert records[1].last_attempted_on == _local_ms("Asia/Kolkata", 2019, 9, 9, 23, 15, 29)


def test_legacy_shape_a_in_zone_with_daylight_saving():
    summer = _parse_one_ts(_entry(last_attempted_on="Jul 4, 2020, 12:00:00 PM"), "America/New_York")
    winter = _parse_one_ts(_entry(last_attempted_on="Jan 4, 2020, 12:00:00 PM"), "America/New_York")
    assert summer == int(datetime(2020, 7, 4, 16, tzinfo=UTC).timestamp()) * 1000
    assert winter == int(datetime(2020, 1, 4, 17, tzinfo=UTC).timestamp()) * 1000


def test_legacy_shape_a_twelve_am_is_midnight_and_twelve_pm_is_noon():
    midnight = _local_ms("UTC", 2020, 1, 1, 0)
    assert _parse_one_ts(_entry(last_attempted_on="Jan 1, 2020, 12:00:00 AM")) == midnight
    assert _parse_one_ts(_entry(last_attempted_on="Jan 1, 2020, 12:30:00 AM")) == midnight + 1_800_000
    assert _parse_one_ts(_entry(last_attempted_on="Jan 1, 2020, 12:00:00 PM")) == midnight + 43_200_000


def test_legacy_shape_a_uses_english_month_names_for_every_month():
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    for number, name in enumerate(months, start=1):
        expected = _local_ms("UTC", 2021, number, 5, 1, 2, 3)
        assert _parse_one_ts(_entry(last_attempted_on=f"{name} 5, 2021, 1:02:03 AM")) == expected


def test_legacy_shape_a_without_comma_after_year_java8():
    assert _parse_one_ts(_entry(last_attempted_on="Sep 19, 2019 11:15:29 AM")) == SEP19_UTC_MS


def test_unreadable_last_attempted_on_gives_none_but_keeps_record():
    for value in ["yesterday", "Sep 31, 2019, 11:15:29 AM", "Foo 1, 2019, 11:15:29 AM", True, [1], {}]:
        assert _parse_one_ts(_entry(last_attempted_on=value)) is None


def test_legacy_shape_b_attempted_on_epoch_seconds():
    assert _parse_one_ts(_entry(last_attempted_on=..., attempted_on=1568891729)) == SEP19_UTC_MS
    assert _parse_one_ts(_entry(last_attempted_on=..., attempted_on=1568891729.576)) == 1568891729576
    assert _parse_one_ts(_entry(last_attempted_on=..., attempted_on="1568891729")) == SEP19_UTC_MS
    assert _parse_one_ts(_entry(last_attempted_on=None, attempted_on=1568891729)) == SEP19_UTC_MS


def test_last_attempted_on_takes_precedence_over_attempted_on():
    assert _parse_one_ts(_entry(last_attempted_on=1000, attempted_on=1568891729)) == 1000


def test_missing_dates_give_none():
    assert _parse_one_ts(_entry(last_attempted_on=...)) is None
    assert _parse_one_ts(_entry(last_attempted_on=..., attempted_on="soon")) is None


def test_every_opaque_case_kept_verbatim_after_the_others():
    good = _entry(attempt_id="z", content_id="c9")
    opaque_cases = [
        "{not json",
        "[1, 2]",
        '"a string"',
        "null",
        "42",
        _entry(attempt_id=...),
        _entry(content_id=...),
        _entry(attempt_id=""),
        _entry(content_id="   "),
        _entry(attempt_id=7),
        _entry(content_id=None),
        _entry(score="abc"),
        _entry(score=True),
        _entry(score=None),
        _entry(score=...),
        _entry(max_score=[2]),
        _entry(max_score=...),
        '{"attempt_id":"a1","content_id":"c1","score":NaN,"max_score":2}',
        '{"attempt_id":"a1","content_id":"c1","score":1e999,"max_score":2}',
    ]
    history = parse_agg_details([opaque_cases[0], good, *opaque_cases[1:]])
    assert [r.attempt_id for r in history.records] == ["z"]
    assert history.opaque == tuple(opaque_cases)
    rendered = render_agg_details(history.records, history.opaque)
    assert rendered[1:] == opaque_cases
    assert json.loads(rendered[0])["attempt_id"] == "z"


def test_integer_last_attempted_on_is_epoch_ms_within_int64_only():
    assert _parse_one_ts(_entry(last_attempted_on=2**63 - 1)) == 2**63 - 1
    assert _parse_one_ts(_entry(last_attempted_on=-5)) == -5
    assert _parse_one_ts(_entry(last_attempted_on=2**63)) is None
    assert _parse_one_ts(_entry(last_attempted_on=1.5e3)) == 1500  # a double takes the general rule


def test_unknown_legacy_zone_raises():
    with pytest.raises(ValueError, match="time zone"):
        parse_agg_details([], "Mars/Olympus_Mons")


# --- merge (S3) -----------------------------------------------------------------------------------


def test_merge_later_source_wins():
    history = [_rec("a1", 1.0), _rec("a2", 2.0), _rec("a1", 9.0, content_id="c2")]
    extra = [_rec("a2", 3.0)]
    live = [_rec("a2", 4.0), _rec("a3", 5.0)]
    merged = merge_attempts(history, extra, live)
    assert merged == {
        ("c1", "a1"): _rec("a1", 1.0),
        ("c1", "a2"): _rec("a2", 4.0),
        ("c2", "a1"): _rec("a1", 9.0, content_id="c2"),
        ("c1", "a3"): _rec("a3", 5.0),
    }
    assert merge_attempts(history, live, extra)[("c1", "a2")].score == 3.0


# --- grading (S4) ---------------------------------------------------------------------------------


def test_best_takes_highest_score_and_its_max_score():
    records = [_rec("a1", 1.0, 2.0), _rec("a2", 3.0, 5.0), _rec("a3", 2.0, 4.0)]
    metrics = content_metrics(records, "best")
    assert (metrics["score:c1"], metrics["max_score:c1"]) == (3.0, 5.0)


def test_best_is_the_default_method():
    records = [_rec("a1", 1.0, 2.0), _rec("a2", 3.0, 5.0)]
    assert content_metrics(records) == content_metrics(records, "best")


def test_best_tie_takes_lowest_attempt_id():
    records = [_rec("b", 3.0, 7.0), _rec("a", 3.0, 6.0), _rec("c", 3.0, 8.0)]
    assert content_metrics(records, "best")["max_score:c1"] == 6.0


def test_latest_takes_greatest_last_attempted_on():
    records = [_rec("a1", 1.0, 2.0, 300), _rec("a2", 2.0, 3.0, 100), _rec("a3", 5.0, 6.0, None)]
    metrics = content_metrics(records, "latest")
    assert (metrics["score:c1"], metrics["max_score:c1"]) == (1.0, 2.0)


def test_latest_tie_takes_lowest_attempt_id():
    records = [_rec("b", 1.0, 2.0, 300), _rec("a", 2.0, 3.0, 300)]
    assert content_metrics(records, "latest")["score:c1"] == 2.0


def test_latest_with_only_none_dates_takes_lowest_attempt_id():
    records = [_rec("b", 1.0, 2.0, None), _rec("a", 2.0, 3.0, None)]
    assert content_metrics(records, "latest")["score:c1"] == 2.0


def test_first_takes_smallest_last_attempted_on():
    records = [_rec("a1", 1.0, 2.0, 300), _rec("a2", 2.0, 3.0, 100), _rec("a3", 5.0, 6.0, 200)]
    metrics = content_metrics(records, "first")
    assert (metrics["score:c1"], metrics["max_score:c1"]) == (2.0, 3.0)


def test_first_none_date_counts_as_oldest():
    records = [_rec("a1", 1.0, 2.0, 100), _rec("a2", 2.0, 3.0, None)]
    assert content_metrics(records, "first")["score:c1"] == 2.0


def test_first_tie_takes_lowest_attempt_id():
    records = [_rec("b", 1.0, 2.0, None), _rec("a", 2.0, 3.0, None), _rec("c", 4.0, 3.0, 5)]
    assert content_metrics(records, "first")["score:c1"] == 2.0


def test_average_sums_in_attempt_id_order_without_rounding():
    # (0.0 + 1.0) + 1e16 loses the 1.0; any other order keeps it.
    records = [_rec("b", 1e16, 1.0), _rec("c", -1e16, 1.0), _rec("a", 1.0, 1.0)]
    metrics = content_metrics(records, "average")
    assert metrics["score:c1"] == 0.0
    assert metrics["max_score:c1"] == 1.0
    thirds = content_metrics([_rec("a", 1.0, 1.0), _rec("b", 1.0, 1.0), _rec("c", 0.0, 1.0)], "average")
    assert thirds["score:c1"] == 2.0 / 3.0


def test_attempts_count_is_a_double_per_content():
    records = [_rec("a1"), _rec("a2"), _rec("a1", content_id="c2")]
    metrics = content_metrics(records)
    assert metrics["attempts_count:c1"] == 2.0
    assert metrics["attempts_count:c2"] == 1.0
    assert isinstance(metrics["attempts_count:c1"], float)
    names = ("score", "max_score", "attempts_count")
    assert set(metrics) == {f"{name}:{c}" for name in names for c in ("c1", "c2")}


def test_no_records_give_no_metrics():
    assert content_metrics([]) == {}


def test_unknown_grading_method_raises():
    with pytest.raises(ValueError, match="grading method"):
        content_metrics([_rec("a1")], "median")
    with pytest.raises(ValueError):
        content_metrics([], "Best")


# --- latest attempt (S7) --------------------------------------------------------------------------


def test_latest_attempt_id_with_one_content():
    records = [_rec("a1", ts=100), _rec("a3", ts=None), _rec("a2", ts=300)]
    assert latest_attempt_id(records) == "a2"
    assert latest_attempt_id([_rec("b", ts=300), _rec("a", ts=300)]) == "a"
    assert latest_attempt_id([_rec("b", ts=None), _rec("a", ts=None)]) == "a"


def test_latest_attempt_id_with_two_contents_is_empty():
    assert latest_attempt_id([_rec("a1", ts=100), _rec("a2", ts=300, content_id="c2")]) == ""
    assert latest_attempt_id([]) == ""


# --- merged view (§2.1) ---------------------------------------------------------------------------


def test_merged_view_with_none_maps():
    assert merged_view(None, None) == {}
    assert merged_view({"completedCount": 3}, None) == {"completedCount": 3.0}
    assert merged_view(None, {"score:c1": 1.5}) == {"score:c1": 1.5}
    assert isinstance(merged_view({"completedCount": 3}, None)["completedCount"], float)


def test_merged_view_aggregates_win():
    view = merged_view({"completedCount": 3, "score:c1": 1}, {"score:c1": 1.33, "max_score:c1": 2.0})
    assert view == {"completedCount": 3.0, "score:c1": 1.33, "max_score:c1": 2.0}


def test_merged_view_skips_non_numeric_values():
    view = merged_view({"a": "x", "b": True, "c": "4"}, {"a": None, "d": [1], "c": 5})
    assert view == {"c": 5.0}


# --- rendering (S5) and the golden example (§3.6) -------------------------------------------------


def test_golden_render():
    record = AttemptRecord(
        attempt_id="8cd87e24df268ad09a8b0060c0a40271",
        content_id="do_212686723743318016173",
        score=1.33,
        max_score=2,  # type: ignore[arg-type]  # an integer still renders as a double
        last_attempted_on=1568891729576,
    )
    assert render_agg_details([record]) == [GOLDEN_ENTRY]
    assert content_metrics([record]) == {
        "score:do_212686723743318016173": 1.33,
        "max_score:do_212686723743318016173": 2.0,
        "attempts_count:do_212686723743318016173": 1.0,
    }
    assert latest_attempt_id([record]) == "8cd87e24df268ad09a8b0060c0a40271"


def test_render_sorts_by_content_then_attempt_and_writes_null_dates():
    records = [_rec("b", content_id="c1"), _rec("a", content_id="c2"), _rec("a", content_id="c1", ts=5)]
    rendered = render_agg_details(records, ["opaque!"], entry_type="custom")
    assert [(json.loads(e)["content_id"], json.loads(e)["attempt_id"]) for e in rendered[:3]] == [
        ("c1", "a"),
        ("c1", "b"),
        ("c2", "a"),
    ]
    assert rendered[1] == (
        '{"attempt_id":"b","content_id":"c1","score":1.0,"max_score":2.0,"last_attempted_on":null,"type":"custom"}'
    )
    assert rendered[3] == "opaque!"


def test_render_keeps_non_ascii_characters():
    (entry,) = render_agg_details([_rec("é", content_id="内容")])
    assert '"attempt_id":"é","content_id":"内容"' in entry


# --- properties -----------------------------------------------------------------------------------

_ids = st.text(min_size=1, max_size=8).filter(lambda s: s.strip() != "")
_records = st.builds(
    AttemptRecord,
    attempt_id=_ids,
    content_id=st.sampled_from(["c1", "c2", "c\u00e9"]) | _ids,
    score=st.floats(allow_nan=False, allow_infinity=False),
    max_score=st.floats(allow_nan=False, allow_infinity=False),
    last_attempted_on=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
_unique_records = st.lists(_records, max_size=12).map(lambda rs: list(merge_attempts(rs).values()))


@settings(max_examples=100)
@given(records=_unique_records, method=st.sampled_from(GRADING_METHODS), data=st.data())
def test_content_metrics_does_not_depend_on_record_order(records, method, data):
    shuffled = data.draw(st.permutations(records))
    assert content_metrics(shuffled, method) == content_metrics(records, method)
    assert latest_attempt_id(shuffled) == latest_attempt_id(records)


@settings(max_examples=100)
@given(records=_unique_records)
def test_parse_render_round_trips_records_exactly(records):
    history = parse_agg_details(render_agg_details(records))
    expected = sorted(records, key=lambda r: (r.content_id, r.attempt_id))
    assert history.opaque == ()
    assert list(history.records) == expected
    for got, want in zip(history.records, expected, strict=True):
        assert repr(got.score) == repr(want.score)
        assert repr(got.max_score) == repr(want.max_score)
