"""Course hierarchy parsing and derived sets: leaves, optional nodes, ancestors and order
(docs/reference/data-model.md#hierarchy)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from learnagg.domain.numbers import truncated_int

COLLECTION_MIME_TYPE = "application/vnd.ekstep.content-collection"

MAX_DEPTH = 64
"""Deepest allowed nesting; the root is level 1."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EMPTY: frozenset[str] = frozenset()
_LEAVE = object()  # walk-stack marker: the node's subtree is done


class InvalidHierarchy(Exception):
    """A hierarchy that cannot be loaded; str(exc) is a one-line reason."""


@dataclass(frozen=True, slots=True)
class ContentMeta:
    """Global per-content metadata (docs/reference/data-model.md#hierarchy `content` table)."""

    content_id: str
    name: str | None
    content_type: str | None
    object_type: str | None
    primary_category: str | None
    mime_type: str | None
    total_questions: int | None


@dataclass(frozen=True, slots=True)
class CourseNode:
    """One node of a course (docs/reference/data-model.md#hierarchy `course_node` row)."""

    node_id: str
    parent_ids: tuple[str, ...]
    is_leaf: bool
    optional: bool
    position: int


class CourseTree:
    """A parsed course hierarchy with its derived sets; build it with `parse_hierarchy`."""

    __slots__ = (
        "_ancestors",
        "_leaves",
        "_optional",
        "channel",
        "contents",
        "course_id",
        "name",
        "nodes",
        "order",
        "status",
    )

    def __init__(
        self,
        *,
        course_id: str,
        name: str | None,
        status: str,
        channel: str | None,
        nodes: dict[str, CourseNode],
        contents: dict[str, ContentMeta],
        order: tuple[str, ...],
        leaves: dict[str, frozenset[str]],
        optional: dict[str, frozenset[str]],
        ancestors: dict[str, frozenset[str]],
    ) -> None:
        """Store an already-derived tree; `parse_hierarchy` is the normal way to get one."""
        self.course_id = course_id
        self.name = name
        self.status = status
        self.channel = channel
        self.nodes = nodes
        self.contents = contents
        self.order = order
        self._leaves = leaves
        self._optional = optional
        self._ancestors = ancestors

    def leaf_nodes(self, x: str | None = None) -> frozenset[str]:
        """Leaves under collection `x` (the root when None); empty for a leaf or an unknown id."""
        return self._leaves.get(self.course_id if x is None else x, _EMPTY)

    def optional_nodes(self, x: str | None = None) -> frozenset[str]:
        """Leaves under `x` that are optional on every path from `x` (docs/reference/data-model.md#hierarchy); empty for
        unknown ids."""
        return self._optional.get(self.course_id if x is None else x, _EMPTY)

    def required(self, x: str | None = None) -> frozenset[str]:
        """`leaf_nodes(x) - optional_nodes(x)`: the leaves that count towards completion of `x`."""
        return self.leaf_nodes(x) - self.optional_nodes(x)

    def ancestors(self, leaf: str) -> frozenset[str]:
        """Every collection on any path from the root to `leaf`, the root included; empty if unknown."""
        return self._ancestors.get(leaf, _EMPTY)

    def units(self) -> tuple[str, ...]:
        """Collections other than the root, in hierarchy order."""
        nodes = self.nodes
        return tuple(n for n in self.order if n != self.course_id and not nodes[n].is_leaf)

    @property
    def leaf_nodes_count(self) -> int:
        """Number of distinct leaves of the course, optional leaves included."""
        return len(self.leaf_nodes())


class _Occ:
    """One occurrence of a node in the JSON tree (a node id may occur several times)."""

    __slots__ = ("children", "collection", "marked", "node_id", "parent", "raw", "relmeta")

    def __init__(self, node_id: str, parent: int, raw: dict, marked: bool) -> None:
        self.node_id = node_id
        self.parent = parent
        self.raw = raw
        self.marked = marked
        self.children: list[int] = []
        self.collection = False
        self.relmeta: dict | None = None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _identifier(raw: dict) -> str | None:
    ident = raw.get("identifier")
    if not isinstance(ident, str) or not ident.strip():
        return None
    return ident


_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _total_questions(value: object) -> int | None:
    """A number or numeric string truncated towards zero; None if absent, non-numeric or outside int64.

    Values beyond 32 bits are clamped to fit the column: the question-count guard (docs/jobs/assessment.md#a6) behaves
    the same, since no attempt has two billion questions and non-positive counts are unknown either way.
    """
    count = truncated_int(value)
    return None if count is None else max(_INT32_MIN, min(_INT32_MAX, count))


def _relational_metadata(raw: dict) -> dict | None:
    value = raw.get("relationalMetadata")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _marked_by_parent(relmeta: dict | None, child_id: str) -> bool:
    if relmeta is None:
        return False
    entry = relmeta.get(child_id)
    if isinstance(entry, str):
        try:
            entry = json.loads(entry)
        except ValueError:
            return False
    return isinstance(entry, dict) and entry.get("optional") is True


def _merge(acc: set[str], other: set[str]) -> set[str]:
    """Union two owned sets by growing the larger one (small-to-large keeps deep trees cheap)."""
    if len(other) > len(acc):
        acc, other = other, acc
    acc |= other
    return acc


def _walk(obj: dict, root_id: str) -> list[_Occ]:
    """Pre-order walk of the JSON tree into occurrences, validating structure as it goes."""
    occs: list[_Occ] = []
    path: set[str] = set()
    # Entries: (raw, parent occ, depth, index in parent) to enter, or (_LEAVE, occ index, 0, 0) to leave.
    stack: list[tuple[object, int, int, int]] = [(obj, -1, 1, 0)]
    while stack:
        raw, parent, depth, index = stack.pop()
        if raw is _LEAVE:
            path.discard(occs[parent].node_id)
            continue
        if parent < 0:
            assert isinstance(raw, dict)
            node_id = root_id
            marked = False
        else:
            parent_occ = occs[parent]
            where = f"child {index} of {parent_occ.node_id!r}"
            if not isinstance(raw, dict):
                raise InvalidHierarchy(f"{where} is not an object")
            ident = _identifier(raw)
            if ident is None:
                raise InvalidHierarchy(f"{where} has no identifier")
            if ident in path:
                raise InvalidHierarchy(f"cycle: {ident!r} is its own ancestor")
            if depth > MAX_DEPTH:
                raise InvalidHierarchy(f"hierarchy nests deeper than {MAX_DEPTH} levels at {ident!r}")
            node_id = ident
            marked = raw.get("optional") is True or _marked_by_parent(parent_occ.relmeta, node_id)
        children = raw.get("children")
        if children is not None and not isinstance(children, list):
            raise InvalidHierarchy(f"children of {node_id!r} is not a list")
        occ = _Occ(node_id, parent, raw, marked)
        occ.collection = parent < 0 or bool(children) or raw.get("mimeType") == COLLECTION_MIME_TYPE
        at = len(occs)
        occs.append(occ)
        if parent >= 0:
            occs[parent].children.append(at)
        if children:
            occ.relmeta = _relational_metadata(raw)
            path.add(node_id)
            stack.append((_LEAVE, at, 0, 0))
            for i in range(len(children) - 1, -1, -1):
                stack.append((children[i], at, depth + 1, i))
    return occs


def parse_hierarchy(obj: object) -> CourseTree:
    """Parse a course hierarchy object and derive its nodes, contents and sets (docs/reference/data-model.md#hierarchy).

    A node id may occur several times (e.g. a leaf shared by two units). An id is a collection if
    any of its occurrences is one; metadata comes from its first occurrence.

    Args:
        obj: The `hierarchy` object of `POST /v1/course/hierarchy/load`, as decoded JSON.

    Returns:
        The parsed tree.

    Raises:
        InvalidHierarchy: if the object is not a loadable hierarchy.
    """
    if not isinstance(obj, dict):
        raise InvalidHierarchy("hierarchy is not an object")
    root_id = _identifier(obj)
    if root_id is None:
        raise InvalidHierarchy("hierarchy has no identifier")
    occs = _walk(obj, root_id)

    collections: set[str] = {o.node_id for o in occs if o.collection}
    first: dict[str, int] = {}
    parents: dict[str, dict[str, None]] = {}
    marked_collections: set[str] = set()
    ancestors: dict[str, frozenset[str]] = {}
    # Ids on the root path of each parent occurrence, including the parent itself (shared, not copied).
    paths: dict[int, frozenset[str]] = {}
    for at, occ in enumerate(occs):
        node_id = occ.node_id
        first.setdefault(node_id, at)
        plist = parents.setdefault(node_id, {})
        if occ.parent >= 0:
            plist.setdefault(occs[occ.parent].node_id, None)
            if occ.marked and node_id in collections:
                marked_collections.add(node_id)
            above = paths[occ.parent]
            ancestors[node_id] = ancestors[node_id] | above if node_id in ancestors else above
        if occ.children:
            paths[at] = (paths[occ.parent] if occ.parent >= 0 else _EMPTY) | {node_id}

    # Bottom-up: children always come after their parent in pre-order. Each collection occurrence gets
    # its leaves and its "non-optional" leaves (some path from it has no marked node strictly below it).
    occ_sets: dict[int, tuple[set[str], set[str]]] = {}
    leaves: dict[str, frozenset[str]] = {}
    nonopt: dict[str, frozenset[str]] = {}
    for at in range(len(occs) - 1, -1, -1):
        occ = occs[at]
        if occ.node_id not in collections:
            continue
        mine: set[str] = set()
        mine_nonopt: set[str] = set()
        for c in occ.children:
            child = occs[c]
            if child.node_id in collections:
                sub_leaves, sub_nonopt = occ_sets.pop(c)
                mine = _merge(mine, sub_leaves)
                if not child.marked:
                    mine_nonopt = _merge(mine_nonopt, sub_nonopt)
            else:
                mine.add(child.node_id)
                if not child.marked:
                    mine_nonopt.add(child.node_id)
        occ_sets[at] = (mine, mine_nonopt)
        node_id = occ.node_id
        if node_id in leaves:
            leaves[node_id] |= mine
            nonopt[node_id] |= mine_nonopt
        else:
            leaves[node_id] = frozenset(mine)
            nonopt[node_id] = frozenset(mine_nonopt)

    # nonopt is a subset of leaves, so equal sizes mean nothing is optional.
    optional_sets = {k: _EMPTY if len(v) == len(nonopt[k]) else v - nonopt[k] for k, v in leaves.items()}
    root_optional = optional_sets[root_id]

    order = tuple(sorted(first, key=first.__getitem__))
    nodes: dict[str, CourseNode] = {}
    contents: dict[str, ContentMeta] = {}
    for node_id in order:
        is_leaf = node_id not in collections
        optional = node_id in root_optional if is_leaf else node_id in marked_collections
        nodes[node_id] = CourseNode(node_id, tuple(parents[node_id]), is_leaf, optional, first[node_id])
        raw = occs[first[node_id]].raw
        contents[node_id] = ContentMeta(
            content_id=node_id,
            name=_text(raw.get("name")),
            content_type=_text(raw.get("contentType")),
            object_type=_text(raw.get("objectType")),
            primary_category=_text(raw.get("primaryCategory")),
            mime_type=_text(raw.get("mimeType")),
            total_questions=_total_questions(raw.get("totalQuestions")),
        )

    status = obj.get("status")
    return CourseTree(
        course_id=root_id,
        name=_text(obj.get("name")),
        status=status if isinstance(status, str) and status.strip() else "Live",
        channel=_text(obj.get("channel")),
        nodes=nodes,
        contents=contents,
        order=order,
        leaves=leaves,
        optional=optional_sets,
        ancestors=ancestors,
    )
