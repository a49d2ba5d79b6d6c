"""Rendered member ``agg`` lists of `/v1/group/activity/agg`, kept per `user_activity_agg` row
(docs/api.md#group-aggregates).

A member entry is a function of one row read by the activity query: the member's columns (name, role, status,
createdBy) and the row's three maps (``agg``, ``aggregates``, ``agg_last_updated``), read as their stored JSON text.
A bounded in-process memo, keyed on (group, activity, user, context), holds each entry rendered to JSON bytes with the
row it came from. An entry is served only while the row read now equals that row column for column, so any write to
the row or the member (whoever makes it) is seen by the next read, which renders the entry afresh: invalidation is
exact by construction, and an unchanged row is neither decoded nor encoded again. The entries are spliced into the
answer as one ``orjson.Fragment``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from learnagg.domain import group_metrics
from learnagg.domain.group_metrics import MemberRow, Metric

# Bytes of stored text and rendered JSON the memo holds per process: about 10 KB per row of 20 assessments, so the
# default keeps a few thousand rows (docs/api.md#group-aggregates).
MEMO_BYTES = 64 * 1024 * 1024
_ENTRY_OVERHEAD = 256  # the tuple, the key and the dict slot, roughly


class RawRow(NamedTuple):
    """One active member joined with their name and one row of the activity, the maps as stored JSON text.

    ``context_id`` is None (and the three texts are None) for a member without a row.
    """

    user_id: str
    role: str | None
    status: str | None
    created_by: str | None
    first_name: str | None
    last_name: str | None
    context_id: str | None
    agg: str | None
    aggregates: str | None
    agg_last_updated: str | None


class Rendered(NamedTuple):
    """A member entry rendered to JSON bytes from one row, with the row it came from and what the answer needs."""

    row: tuple[Any, ...]
    entry: bytes
    sort_key: tuple[str, str]
    latest: int | None


def decode(text: str | None) -> Any:
    """A stored map's JSON text as read by the store (null stays None).

    Raises:
        ValueError: when the text is not valid JSON (orjson.JSONDecodeError).
    """
    return None if text is None else orjson.loads(text)


def render(agg: object, aggregates: object, agg_last_updated: object) -> tuple[list[Metric], int | None]:
    """One row's ``agg`` list and its latest metric time (docs/api.md#group-aggregates), from the decoded maps."""
    merged = group_metrics.merged_metrics(agg, aggregates)
    stamps = group_metrics.stamps_map(agg_last_updated)
    return group_metrics.metric_entries(merged, stamps), group_metrics.latest_stamp(merged, stamps)


def render_member(row: tuple[Any, ...]) -> Rendered:
    """The member entry of a row (``context_id`` not None): ``{"userId", "name", "role", "status", "createdBy",
    "batchId", "agg"}`` as JSON bytes, sorted by (userId, batchId) among the others.

    Raises:
        ValueError: when a stored map is not valid JSON.
    """
    r = RawRow._make(row)
    metrics, latest = render(decode(r.agg), decode(r.aggregates), decode(r.agg_last_updated))
    batch = group_metrics.batch_id(r.context_id or "")
    entry = _entry(r, group_metrics.display_name(r.first_name, r.last_name), batch, metrics)
    # The prefix "\x00" keeps a real batch id "" after the null batch of a member without rows
    # (docs/reference/data-model.md#c6).
    return Rendered(row, orjson.dumps(entry), (r.user_id, "\x00" + batch), latest)


class FragmentMemo:
    """Rendered member entries by (group_id, activity_id, user_id, context_id), bounded in bytes; the oldest entries
    are dropped first.

    An entry is used only while the row read now equals, column for column, the row it was rendered from. Safe to
    share between the serving threads: lookups are single dict reads, and changes hold a lock.
    """

    def __init__(self, max_bytes: int = MEMO_BYTES) -> None:
        self.max_bytes = max_bytes
        self._held: dict[tuple[str, ...], Rendered] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    @property
    def size(self) -> int:
        """Bytes held (stored text plus rendered JSON, roughly)."""
        return self._bytes

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._held.clear()
            self._bytes = 0

    def member(self, group_id: str, activity_id: str, row: tuple[Any, ...]) -> Rendered:
        """The rendered entry of a row (``context_id`` not None): from the memo when the row is unchanged.

        Raises:
            ValueError: when a stored map is not valid JSON.
        """
        key = (group_id, activity_id, row[0], row[6])
        held = self._held.get(key)
        if held is not None and held.row == row:
            return held
        fresh = render_member(row)
        self._put(key, fresh)
        return fresh

    def _put(self, key: tuple[str, ...], fresh: Rendered) -> None:
        size = _size(fresh)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._held.pop(key, None)
            if old is not None:
                self._bytes -= _size(old)
            self._held[key] = fresh
            self._bytes += size
            while self._bytes > self.max_bytes:
                oldest = next(iter(self._held))
                self._bytes -= _size(self._held.pop(oldest))


def _size(item: Rendered) -> int:
    return _ENTRY_OVERHEAD + len(item.entry) + sum(len(v) for v in item.row if isinstance(v, str))


MEMO = FragmentMemo()


def activity_agg(
    group_id: str,
    activity_id: str,
    activity_type: str,
    rows: Iterable[tuple[Any, ...]],
    *,
    include_all_members: bool,
    now: int,
    memo: FragmentMemo = MEMO,
) -> dict[str, Any]:
    """The ``/v1/group/activity/agg`` result without a ``fields`` filter, ``members`` one ``orjson.Fragment`` (or
    ``[]``).

    Encodes to the same bytes as :func:`learnagg.domain.group_metrics.activity_agg` over the decoded rows: members
    sorted by (userId, batchId), a member without rows first under a null batch, enrolmentCount over the users with
    a row and its lastUpdatedOn the latest metric time of those rows, or ``now``.

    Args:
        group_id: echoed as ``groupId``; part of the memo key (a member's role belongs to the group).
        activity_id: the activity id (``activity.id``).
        activity_type: the requested type (``activity.type``).
        rows: :class:`RawRow` columns, every active member once per row of the activity, or once without a row.
        include_all_members: add members without rows with ``"batchId": null`` and ``"agg": []``.
        now: the request time, the enrolmentCount lastUpdatedOn when no metric has a time.
        memo: the rendered entries.

    Raises:
        ValueError: when a stored map is not valid JSON.
    """
    keyed: list[tuple[tuple[str, str], bytes]] = []
    enrolled: set[str] = set()
    latest: int | None = None
    member = memo.member
    for raw in rows:
        row = tuple(raw)
        if row[6] is None:  # a member without rows
            if include_all_members:
                r = RawRow._make(row)
                entry = _entry(r, group_metrics.display_name(r.first_name, r.last_name), None, [])
                keyed.append(((r.user_id, ""), orjson.dumps(entry)))
            continue
        rendered = member(group_id, activity_id, row)
        enrolled.add(row[0])
        if rendered.latest is not None and (latest is None or rendered.latest > latest):
            latest = rendered.latest
        keyed.append((rendered.sort_key, rendered.entry))
    keyed.sort(key=_first)
    stamp = now if latest is None else latest
    return {
        "groupId": group_id,
        "activity": {
            "id": activity_id,
            "type": activity_type,
            "agg": [{"metric": "enrolmentCount", "lastUpdatedOn": stamp, "value": len(enrolled)}],
        },
        # An empty list stays a list: the cache stores only results with members (docs/api.md#group-aggregates).
        "members": orjson.Fragment(b"[" + b",".join([entry for _, entry in keyed]) + b"]") if keyed else [],
    }


def _first(item: tuple[tuple[str, str], bytes]) -> tuple[str, str]:
    return item[0]


def _entry(row: RawRow, name: str, batch: str | None, agg: object) -> dict[str, Any]:
    return {
        "userId": row.user_id,
        "name": name,
        "role": row.role,
        "status": row.status,
        "createdBy": row.created_by,
        "batchId": batch,
        "agg": agg,
    }


def decoded(rows: Iterable[tuple[Any, ...]]) -> list[MemberRow]:
    """The rows with their maps decoded, for the rules that read the metrics themselves (the ``fields`` filter).

    Raises:
        ValueError: when a stored map is not valid JSON.
    """
    return [MemberRow._make((*row[:7], decode(row[7]), decode(row[8]), decode(row[9]))) for row in rows]
