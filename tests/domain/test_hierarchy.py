"""Tests for the course hierarchy parser (SPEC §2.6)."""

from __future__ import annotations

import json
import time

import pytest

from learnagg.domain.hierarchy import (
    COLLECTION_MIME_TYPE,
    ContentMeta,
    CourseNode,
    InvalidHierarchy,
    parse_hierarchy,
)

COLL = COLLECTION_MIME_TYPE
PDF = "application/pdf"


def leaf(ident: str, **extra: object) -> dict:
    return {"identifier": ident, "mimeType": PDF, **extra}


def unit(ident: str, *children: dict, **extra: object) -> dict:
    return {"identifier": ident, "mimeType": COLL, "children": list(children), **extra}


def course(*children: dict, **extra: object) -> dict:
    return {
        "identifier": "do_course",
        "name": "Course",
        "mimeType": COLL,
        "children": list(children),
        **extra,
    }


def test_collection_detected_by_mime_type():
    tree = parse_hierarchy(course(unit("u_empty"), leaf("l1")))
    assert tree.nodes["u_empty"].is_leaf is False
    assert tree.nodes["l1"].is_leaf is True
    assert tree.leaf_nodes() == {"l1"}
    assert tree.units() == ("u_empty",)


def test_collection_detected_by_non_empty_children():
    h = course({"identifier": "u1", "mimeType": PDF, "children": [leaf("l1")]}, leaf("l2", children=[]))
    tree = parse_hierarchy(h)
    assert tree.nodes["u1"].is_leaf is False
    assert tree.nodes["l2"].is_leaf is True
    assert tree.leaf_nodes() == {"l1", "l2"}
    assert tree.leaf_nodes("u1") == {"l1"}


def test_root_is_always_a_collection():
    tree = parse_hierarchy({"identifier": "do_c", "mimeType": PDF})
    assert tree.nodes["do_c"].is_leaf is False
    assert tree.leaf_nodes() == frozenset()
    assert tree.leaf_nodes_count == 0
    assert tree.units() == ()
    assert tree.nodes["do_c"] == CourseNode("do_c", (), False, False, 0)


def test_optional_by_own_flag():
    tree = parse_hierarchy(course(leaf("l1", optional=True), leaf("l2"), leaf("l3", optional="true")))
    assert tree.optional_nodes() == {"l1"}
    assert tree.nodes["l1"].optional is True
    assert tree.nodes["l2"].optional is False
    assert tree.nodes["l3"].optional is False


def test_optional_by_parent_relational_metadata_dict():
    tree = parse_hierarchy(
        course(
            leaf("l1"),
            leaf("l2"),
            relationalMetadata={"l1": {"optional": True}, "l2": {"optional": False}},
        )
    )
    assert tree.optional_nodes() == {"l1"}


def test_optional_by_parent_relational_metadata_json_string():
    meta = json.dumps({"l1": {"optional": True}, "l2": {"name": "x"}})
    tree = parse_hierarchy(course(leaf("l1"), leaf("l2"), relationalMetadata=meta))
    assert tree.optional_nodes() == {"l1"}
    # An unparsable string is ignored rather than rejected.
    assert parse_hierarchy(course(leaf("l1"), relationalMetadata="{not json")).optional_nodes() == frozenset()


def test_optional_unit_makes_leaves_optional_for_root_only():
    h = course(unit("u1", leaf("l1"), unit("u2", leaf("l2")), optional=True), unit("u3", leaf("l3")))
    tree = parse_hierarchy(h)
    assert tree.optional_nodes() == {"l1", "l2"}
    assert tree.nodes["u1"].optional is True
    assert tree.nodes["l1"].optional is True
    # Only collections strictly below X count, so u1's own flag does not apply to X = u1.
    assert tree.optional_nodes("u1") == frozenset()
    assert tree.required("u1") == {"l1", "l2"}
    assert tree.required() == {"l3"}


def test_leaf_shared_by_optional_and_required_unit_is_not_optional_for_root():
    h = course(unit("u_opt", leaf("shared"), leaf("only_opt"), optional=True), unit("u_req", leaf("shared")))
    tree = parse_hierarchy(h)
    assert tree.optional_nodes() == {"only_opt"}
    assert tree.nodes["shared"].optional is False
    assert tree.required() == {"shared"}


def test_leaf_optional_on_every_path_is_optional():
    h = course(unit("u1", leaf("shared", optional=True)), unit("u2", leaf("shared")), optional=False)
    h["children"][1]["relationalMetadata"] = {"shared": {"optional": True}}
    tree = parse_hierarchy(h)
    assert tree.optional_nodes() == {"shared"}
    assert tree.optional_nodes("u2") == {"shared"}


def test_required_is_leaf_nodes_minus_optional_nodes():
    h = course(unit("u1", leaf("l1"), leaf("l2", optional=True)), leaf("l3"), leaf("l4", optional=True))
    tree = parse_hierarchy(h)
    assert tree.leaf_nodes() == {"l1", "l2", "l3", "l4"}
    assert tree.required() == {"l1", "l3"}
    assert tree.required("u1") == {"l1"}
    assert tree.required() == tree.leaf_nodes() - tree.optional_nodes()


def test_ancestors_of_shared_leaf():
    h = course(unit("u1", unit("u1a", leaf("shared"))), unit("u2", leaf("shared")), leaf("top"))
    tree = parse_hierarchy(h)
    assert tree.ancestors("shared") == {"do_course", "u1", "u1a", "u2"}
    assert tree.ancestors("top") == {"do_course"}
    assert tree.ancestors("u1a") == {"do_course", "u1"}
    assert tree.nodes["shared"].parent_ids == ("u1a", "u2")
    assert tree.leaf_nodes("u1") == {"shared"}


def test_positions_and_order_use_first_occurrence():
    h = course(unit("u1", leaf("a"), leaf("b")), unit("u2", leaf("a"), leaf("c")), leaf("b"))
    tree = parse_hierarchy(h)
    assert tree.order == ("do_course", "u1", "a", "b", "u2", "c")
    assert list(tree.nodes) == list(tree.order)
    positions = {k: n.position for k, n in tree.nodes.items()}
    # Positions index the pre-order walk itself, repeats included: 0 course, 1 u1, 2 a, 3 b, 4 u2, 5 a, 6 c.
    assert positions == {"do_course": 0, "u1": 1, "a": 2, "b": 3, "u2": 4, "c": 6}
    assert tree.nodes["b"].parent_ids == ("u1", "do_course")
    assert tree.nodes["do_course"].parent_ids == ()
    assert tree.units() == ("u1", "u2")
    assert set(tree.contents) == set(tree.order)


def test_leaf_nodes_count_includes_optional_leaves():
    h = course(unit("u1", leaf("l1"), leaf("l2", optional=True), optional=True), unit("u2", leaf("l1")))
    tree = parse_hierarchy(h)
    assert tree.leaf_nodes_count == 2


def test_total_questions_parsing():
    values: list[object] = [
        5,
        3.9,
        "7",
        " 2.8 ",
        "1e2",
        0,
        "0",
        -1.5,
        "abc",
        True,
        None,
        float("inf"),
        "1e400",
    ]
    h = course(*[leaf(f"l{i}", totalQuestions=v) for i, v in enumerate(values)], leaf("absent"))
    tree = parse_hierarchy(h)
    got = [tree.contents[f"l{i}"].total_questions for i in range(len(values))]
    assert got == [5, 3, 7, 2, 100, 0, 0, -1, None, None, None, None, None]
    assert tree.contents["absent"].total_questions is None


def test_content_metadata_and_course_fields():
    root = course(
        leaf("l1", name="Quiz", contentType="SelfAssess", objectType="QuestionSet", primaryCategory="Practice"),
        channel="org1",
    )
    tree = parse_hierarchy(root)
    assert tree.contents["l1"] == ContentMeta("l1", "Quiz", "SelfAssess", "QuestionSet", "Practice", PDF, None)
    assert tree.contents["do_course"].mime_type == COLL
    assert (tree.course_id, tree.name, tree.status, tree.channel) == ("do_course", "Course", "Live", "org1")
    assert parse_hierarchy(course(status="Retired")).status == "Retired"


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([], "not an object"),
        ({"name": "x"}, "no identifier"),
        ({"identifier": "  "}, "no identifier"),
        (course("oops"), "not an object"),
        (course({"name": "x"}), "no identifier"),
        (course(leaf("l1", children="x")), "not a list"),
        ({"identifier": "do_course", "children": {}}, "not a list"),
        (course(unit("u1", unit("u2", leaf("u1")))), "cycle"),
        (course(leaf("do_course")), "cycle"),
    ],
    ids=[
        "not-object",
        "root-missing-id",
        "root-blank-id",
        "child-not-object",
        "child-no-id",
        "child-children-not-list",
        "root-children-not-list",
        "cycle",
        "root-as-child",
    ],
)
def test_invalid_hierarchy(obj: object, reason: str):
    with pytest.raises(InvalidHierarchy, match=reason) as info:
        parse_hierarchy(obj)
    assert "\n" not in str(info.value)


def _chain(levels: int) -> dict:
    node: dict = leaf(f"n{levels - 1}")
    for i in range(levels - 2, -1, -1):
        node = unit(f"n{i}", node)
    return node


def test_invalid_hierarchy_nesting_deeper_than_64_levels():
    tree = parse_hierarchy(_chain(64))
    assert tree.leaf_nodes() == {"n63"}
    assert len(tree.ancestors("n63")) == 63
    with pytest.raises(InvalidHierarchy, match="deeper than 64"):
        parse_hierarchy(_chain(65))


def test_unknown_x_gives_empty_sets():
    tree = parse_hierarchy(course(unit("u1", leaf("l1"))))
    for x in ("nope", "l1"):
        assert tree.leaf_nodes(x) == frozenset()
        assert tree.optional_nodes(x) == frozenset()
        assert tree.required(x) == frozenset()
    assert tree.ancestors("nope") == frozenset()
    assert tree.ancestors("do_course") == frozenset()


def test_large_tree_parses_fast():
    units = [unit(f"u{u}", *[leaf(f"l{u}_{i}") for i in range(100)]) for u in range(100)]
    start = time.perf_counter()
    tree = parse_hierarchy(course(*units))
    assert time.perf_counter() - start < 1.0
    assert tree.leaf_nodes_count == 10_000
    assert len(tree.units()) == 100
