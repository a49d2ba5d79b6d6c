"""SPEC §6.3 D5, §6.4 and §6.5: report cells and rows, one test per rule (no fixtures)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from learnagg.domain import reports
from learnagg.domain.attempt_metrics import merged_view
from learnagg.domain.report_cells import (
    attempted_on,
    batch_id_cell,
    certificate_status,
    compact_json,
    declared_board,
    double_cell,
    duration_cell,
    enrolment_ms,
    merged_value,
    percent_cell,
    progress_percent,
    report_date,
    sanitised_json,
    score_cells,
    score_column,
)
from learnagg.domain.reports import (
    AttemptRows,
    CsvWriter,
    ResponseContext,
    csv_line,
    is_report_assessment,
    learner_response_lines,
    scored_assessments,
)

KOLKATA = "Asia/Kolkata"


# -- D5 CSV -------------------------------------------------------------------------------------------------


def test_csv_quotes_only_fields_with_comma_quote_cr_or_lf():
    assert csv_line(["plain", "a,b", 'say "hi"', "cr\rhere", "lf\nhere", " spaces ", "'single'"]) == (
        'plain,"a,b","say ""hi""","cr\rhere","lf\nhere", spaces ,\'single\'\n'
    )


def test_csv_null_is_an_empty_field_and_empty_text_is_not_quoted():
    assert csv_line(["a", None, "", "b"]) == "a,,,b\n"


def test_csv_writer_writes_rows_and_encoded_lines_in_order():
    rows = [["h1", "h2", "h3"], ["a,b", None, 'q"'], ["x", "", "line\nbreak"], ["é", "日本", "cr\rhere"]]
    out = io.StringIO()
    writer = CsvWriter(out, chunk_lines=2)
    for row in rows:
        writer.write(row)
    writer.write_line("already,encoded\n")
    assert out.getvalue() == "".join(csv_line(r) for r in rows)  # two full chunks written, one line pending
    writer.flush()
    assert out.getvalue().endswith('"cr\rhere"\nalready,encoded\n')
    assert writer.rows == 5


def test_csv_output_reads_back_with_a_standard_reader():
    rows = [["a", 'b"c', "d,e"], ["f\ng", "", "h"], ["i\r\nj", '"', ","]]
    out = io.StringIO()
    writer = CsvWriter(out)
    for row in rows:
        writer.write(row)
    writer.flush()
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == rows


# -- shared cells -------------------------------------------------------------------------------------------


def test_dates_are_in_the_report_timezone():
    ms = 1568891729576  # 2019-09-19 11:15:29.576 UTC = 16:45:29 in Kolkata
    assert report_date(ms, KOLKATA) == "19/09/2019"
    assert attempted_on(ms, KOLKATA) == "2019-09-19 16:45:29"
    assert attempted_on(ms, "UTC") == "2019-09-19 11:15:29"
    late = 1568917800000  # 2019-09-19 18:30 UTC = 2019-09-20 00:00 in Kolkata
    assert report_date(late, KOLKATA) == "20/09/2019"
    assert report_date(late, "UTC") == "19/09/2019"
    assert report_date(None, KOLKATA) == "" and attempted_on(None, KOLKATA) == ""


def test_batch_id_cell_and_score_column():
    assert batch_id_cell("0128") == "BatchId_0128"
    assert score_column("do_1") == "do_1 - Score"


def test_column_lists_follow_spec_order():
    assert len(reports.PROGRESS_COLUMNS) == 20 and len(reports.RESPONSE_COLUMNS) == 18
    assert reports.PROGRESS_COLUMNS[14:] == (
        "Declared Board",
        "Enrolment Date",
        "Completion Date",
        "Certificate Status",
        "Progress",
        "Total Score",
    )
    assert reports.RESPONSE_COLUMNS[-5:] == (
        "Question Duration",
        "Question Score",
        "Question Max Score",
        "Question Options",
        "Question Response",
    )


# -- progress (SPEC §6.4) -----------------------------------------------------------------------------------


def test_declared_board_takes_the_first_element_of_a_json_array_string():
    assert declared_board('["CBSE","State"]') == "CBSE"
    assert declared_board("[]") == ""
    assert declared_board("CBSE") == "CBSE"
    assert declared_board("[not json") == "[not json"
    assert declared_board(None) is None


def test_certificate_status_is_issued_when_either_list_is_non_empty():
    assert certificate_status([{"name": "c"}], None) == "Issued"
    assert certificate_status(None, [{"name": "c"}]) == "Issued"
    assert certificate_status([], []) == ""
    assert certificate_status(None, None) == ""


def test_enrolment_date_falls_back_to_the_legacy_text():
    assert enrolment_ms(1700000000000, "2019-09-19 11:15:29:576+0000", KOLKATA) == 1700000000000
    assert enrolment_ms(None, "2019-09-19 11:15:29:576+0000", KOLKATA) == 1568891729576
    assert report_date(enrolment_ms(None, "2019-09-19", KOLKATA), KOLKATA) == "19/09/2019"
    assert enrolment_ms(None, "someday", KOLKATA) is None


def test_progress_counts_completed_required_entries_over_leaf_nodes_count():
    status = {"a": 2, "b": 2, "c": 1, "opt": 2}
    assert progress_percent(status, {"opt"}, 6, None) == 33  # floor(2/6*100 + 0.5)
    assert progress_percent(status, set(), 6, None) == 50  # optional not excluded: 3/6
    assert progress_percent({"a": 2, "b": 2.0, "c": "2", "d": True}, set(), 8, None) == 25  # only numbers equal 2


def test_progress_rounds_half_up():
    assert progress_percent({"a": 2}, set(), 8, None) == 13  # 12.5 → 13
    assert progress_percent({"a": 2}, set(), 3, None) == 33  # 33.33… → 33
    assert progress_percent({"a": 2, "b": 2}, set(), 3, None) == 67  # 66.66… → 67


def test_progress_is_0_without_leaves_and_100_when_all_or_completedon():
    assert progress_percent({"a": 2}, set(), 0, None) == 0
    assert progress_percent({"a": 2}, set(), None, None) == 0
    assert progress_percent({"a": 2, "b": 2, "c": 2}, set(), 2, None) == 100  # k ≥ N
    assert progress_percent({}, set(), 5, 1700000000000) == 100  # completedon forces 100
    assert progress_percent(None, set(), 5, None) == 0


def test_score_percent_uses_ceil_in_spec_order():
    assert percent_cell(0.07, 1.0) == "8%"  # 0.07*100/1 = 7.000000000000001
    assert percent_cell(1.33, 2.0) == "67%"  # 66.5 → 67
    assert percent_cell(1.0, 2.0) == "50%"
    assert percent_cell(1.0, 0.0) == "" and percent_cell(1.0, None) == "" and percent_cell(1.0, -1.0) == ""


def test_total_score_sums_scored_assessments_in_hierarchy_order():
    aggregates = {"score:a": 0.07, "max_score:a": 1.0, "score:b": 1.0, "max_score:b": 3.0}
    total, cells = score_cells(None, aggregates, ("a", "b", "c"), ("a", "b", "c"))
    assert total == "27%"  # 1.07/4*100 = 26.75 → 27
    assert cells == ["8%", "34%", ""]
    total, cells = score_cells(None, {"score:a": 0.07, "max_score:a": 1.0}, ("a",), ("a",))
    assert (total, cells) == ("8%", ["8%"])  # 0.07/1*100 → 8%


def test_column_divides_after_multiplying_and_total_multiplies_after_dividing():
    total, cells = score_cells(None, {"score:a": 0.27, "max_score:a": 3.0}, ("a",), ("a",))
    assert cells == ["9%"]  # 0.27*100/3 = 9.0
    assert total == "10%"  # 0.27/3*100 = 9.000000000000002


def test_total_score_sums_in_hierarchy_order():
    aggregates = {"score:a": 0.1, "score:b": 0.2, "score:c": 0.3}
    aggregates |= {"max_score:a": 1.0, "max_score:b": 1.0, "max_score:c": 1.0}
    assert score_cells(None, aggregates, ("a", "b", "c"), ())[0] == "21%"  # 0.6000000000000001/3*100
    assert score_cells(None, aggregates, ("c", "b", "a"), ())[0] == "20%"  # 0.6/3*100


def test_total_score_is_empty_without_scores_or_max():
    assert score_cells(None, None, ("a",), ("a",)) == ("", [""])
    assert score_cells(None, {"score:a": 1.0}, ("a",), ("a",)) == ("", [""])  # absent max counts as 0.0
    assert score_cells(None, {"max_score:a": 1.0}, ("a",), ("a",)) == ("", [""])


def test_scores_merge_legacy_agg_with_aggregates_winning():
    agg = {"score:a": 1, "max_score:a": 4, "score:b": 2, "max_score:b": 2}
    aggregates = {"score:a": 3.0}
    total, cells = score_cells(agg, aggregates, ("a", "b"), ("a", "b"))
    assert cells == ["75%", "100%"]  # score:a = 3.0 (aggregates) over max 4 (agg)
    assert total == "84%"  # 5/6*100 = 83.33… → 84


def test_non_assessment_scores_are_not_summed():
    total, cells = score_cells(
        None, {"score:x": 1.0, "max_score:x": 1.0, "score:a": 0.0, "max_score:a": 1.0}, ("a",), ()
    )
    assert (total, cells) == ("0%", [])


def test_merged_value_is_the_merged_view_entry():
    agg = {"score:a": 1, "score:b": 2, "score:c": "3", "score:d": "x", "score:e": 5, "score:f": 10**400}
    aggregates = {"score:a": 0.5, "score:b": "oops", "score:d": 4.0, "score:e": None, "score:g": "1e3", "n": True}
    view = merged_view(agg, aggregates)
    for key in [*agg, *aggregates, "absent"]:
        assert merged_value(agg, aggregates, key) == view.get(key), key
    assert merged_value(None, None, "score:a") is None


def test_scored_assessments_reads_the_merged_view():
    assert scored_assessments({"score:a": 1}, {"score:b": 1.0, "max_score:c": 1.0}, ["a", "b", "c"]) == {"a", "b"}
    assert scored_assessments(None, {"score:a": "oops"}, ["a"]) == set()


def test_report_assessment_by_content_type_or_object_type_and_category():
    kw = {"content_types": ["SelfAssess"], "object_types": ["QuestionSet"], "primary_categories": ["Practice"]}
    assert is_report_assessment("SelfAssess", None, None, **kw)
    assert is_report_assessment("Resource", "QuestionSet", "Practice", **kw)
    assert not is_report_assessment("Resource", "QuestionSet", "Exam", **kw)
    assert not is_report_assessment(None, "QuestionSet", None, **{**kw, "primary_categories": []})


# -- response (SPEC §6.5) -----------------------------------------------------------------------------------

GOLDEN_RESVALUES = [{"1": '{"text":"World Health Organizaton\\n"}'}]


def test_sanitising_the_golden_response():
    assert sanitised_json(GOLDEN_RESVALUES) == "[{'1':'{'text':'World Health Organizaton'}'}]"


def test_sanitising_drops_newline_pairs_then_backslashes_then_swaps_quotes():
    assert sanitised_json(["a\nb"]) == "['ab']"  # a real LF is serialised as \n, then removed
    assert sanitised_json(["back\\slash"]) == "['backslash']"
    assert sanitised_json([{"k": "é 日本"}]) == "[{'k':'é 日本'}]"  # no ASCII escaping
    assert sanitised_json([]) == "[]"
    assert sanitised_json(None) is None


def test_sanitising_serialises_compactly():
    assert sanitised_json([{"a": "1", "b": "2"}]) == "[{'a':'1','b':'2'}]"
    assert compact_json({"a": [1, "x"]}) == json.dumps({"a": [1, "x"]}, separators=(",", ":"))


def test_duration_rounds_half_up_and_is_written_as_a_double():
    assert duration_cell(14) == "14.0"
    assert duration_cell(13.5) == "14.0"
    assert duration_cell(2.4999) == "2.0"
    assert duration_cell(0.5) == "1.0"
    assert duration_cell(2.675) == "3.0"
    assert duration_cell(None) is None
    assert duration_cell("x") is None


def test_scores_are_written_as_doubles():
    assert double_cell(1) == "1.0"
    assert double_cell(0.33) == "0.33"
    assert double_cell(1.33) == "1.33"
    assert double_cell(None) is None


CTX = ResponseContext("do_c", "Course", "b-1", "Batch", "UTC")


def learner_response_rows(*args: object) -> list[list[str]]:
    """The learner's lines read back as cells (null cells read back as "")."""
    text = "".join(learner_response_lines(*args))  # type: ignore[arg-type]
    return list(csv.reader(io.StringIO(text, newline="")))


def _q(qid: str, **extra: object) -> dict[str, object]:
    return {"id": qid, "type": "mcq", "title": f"T {qid}", "description": "", "duration": 4, "score": 1.0,
            "max_score": 1.0, "params": [], "resvalues": [], **extra}  # fmt: skip


def test_one_row_per_question_with_every_column():
    attempt = AttemptRows("do_a", "att-1", 1568891729576, 1, [_q("q1", resvalues=GOLDEN_RESVALUES)], live=True)
    [row] = learner_response_rows(CTX, "u-1", [attempt], {"do_a": "Quiz"}.get)
    assert row == [
        "do_c", "Course", "BatchId_b-1", "Batch", "u-1", "do_a", "Quiz", "att-1", "2019-09-19 11:15:29",
        "q1", "mcq", "T q1", "", "4.0", "1.0", "1.0", "[]", "[{'1':'{'text':'World Health Organizaton'}'}]",
    ]  # fmt: skip


def test_attempt_without_questions_gives_one_row_with_empty_question_fields():
    for questions in (None, []):
        [row] = learner_response_rows(CTX, "u-1", [AttemptRows("do_a", "att-1", None, 1, questions, True)], {}.get)
        assert row[:9] == ["do_c", "Course", "BatchId_b-1", "Batch", "u-1", "do_a", "", "att-1", ""]
        assert row[9:] == [""] * 9


def test_live_row_wins_over_archived_for_the_same_question():
    archived = AttemptRows("do_a", "att-1", 1000, 5, [_q("q1", score=0.0), _q("q2")], live=False)
    live = AttemptRows("do_a", "att-1", 2000, 1, [_q("q1", score=1.0)], live=True)
    for order in ([archived, live], [live, archived]):
        rows = learner_response_rows(CTX, "u-1", order, {}.get)
        assert [(r[9], r[14], r[8]) for r in rows] == [
            ("q1", "1.0", "1970-01-01 00:00:02"),  # live
            ("q2", "1.0", "1970-01-01 00:00:01"),  # only archived
        ]


def test_latest_archived_copy_wins_between_archived_copies():
    old = AttemptRows("do_a", "att-1", 1000, 5, [_q("q1", score=0.0)], live=False)
    new = AttemptRows("do_a", "att-1", 1000, 9, [_q("q1", score=1.0)], live=False)
    for order in ([old, new], [new, old]):
        [row] = learner_response_rows(CTX, "u-1", order, {}.get)
        assert row[14] == "1.0"


def test_rows_sorted_by_questionset_attempt_and_question_id():
    attempts = [
        AttemptRows("do_b", "att-1", 1, 1, [_q("q2"), _q("q1")], True),
        AttemptRows("do_a", "att-9", 1, 1, [_q("q1")], True),
        AttemptRows("do_a", "att-2", 1, 1, [_q("Z"), _q("a")], True),
        AttemptRows("do_a", "att-3", 1, 1, [], True),
    ]
    rows = learner_response_rows(CTX, "u-1", attempts, {}.get)
    assert [(r[5], r[7], r[9]) for r in rows] == [
        ("do_a", "att-2", "Z"),  # code-point order: upper case first
        ("do_a", "att-2", "a"),
        ("do_a", "att-3", ""),
        ("do_a", "att-9", "q1"),
        ("do_b", "att-1", "q1"),
        ("do_b", "att-1", "q2"),
    ]


def test_injected_dumps_gives_the_same_cells():
    values = [[{"1": '{"text":"a\\n"}'}], ["é", "\u2028", "\x1f", 'q"'], [{"k": ["v", "w"]}]]
    pytest.importorskip("orjson")
    import orjson

    for value in values:
        assert sanitised_json(value, lambda v: orjson.dumps(v).decode()) == sanitised_json(value)


def test_duration_half_up_equals_rounding_the_shortest_decimal_text():
    from decimal import ROUND_HALF_UP, Decimal
    from random import Random

    rng = Random(5)
    values = [k / 2 for k in range(-50, 50)] + [0.49999999999999994, 2.5000000000000004, -0.5, 1e15 + 0.5]
    values += [rng.uniform(-1000, 1000) for _ in range(2000)] + [rng.randint(0, 999) / 10 for _ in range(500)]
    for x in values:
        expected = float(Decimal(repr(x)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert duration_cell(x) == repr(expected), x
