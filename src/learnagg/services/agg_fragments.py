"""Rendered member ``agg`` lists of `/v1/group/activity/agg`, kept per `user_activity_agg` row
(docs/api.md#group-aggregates).

A member entry is a function of one row read by the activity query: the member's columns (name, role, status,
createdBy) and the row's three maps (``agg``, ``aggregates``, ``agg_last_updated``), read as their stored JSON text.
A bounded in-process memo, keyed on (group, activity, user, context), holds each entry rendered to JSON bytes with the
row it came from. An entry is served only while the row read now equals that row column for column, so any write to
the row or the member (whoever makes it) is seen by the next read, which renders the entry afresh: invalidation is
exact by construction, and an unchanged row is neither decoded nor encoded again. The entries are spliced into the
answer as ``orjson.Fragment`` values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

from learnagg.domain import group_metrics
from learnagg.domain.group_metrics import MemberRow, Metric

# Bytes of stored text and rendered JSON the memo holds per process: about 10 KB per row of 20 assessments, so the
# default keeps a few thousand rows (docs/api.md#group-aggregates).
MEMO_BYTES = 64 * 1024 * 1024
# Seconds an entry is served before it is rendered again. On PostgreSQL an entry is recognised by the row's xmin, a
# 32-bit transaction id that comes round again only after billions of transactions, and that a physical restore of
# the database sets back; no entry outlives either.
MEMO_MAX_AGE_S = 600.0
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


# Given users, their rows of the activity: (user_id, context_id, version, agg, aggregates, agg_last_updated).
Fetch = Callable[[Sequence[str]], Iterable[tuple[Any, ...]]]


class Rendered(NamedTuple):
    """A member entry rendered to JSON bytes from one row, with the row it came from and what the answer needs."""

    row: tuple[Any, ...]
    entry: bytes
    sort_key: tuple[str, str]
    latest: int | None
    born: float  # time.monotonic() when rendered


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


def render_member(seen: tuple[Any, ...], texts: tuple[Any, ...]) -> Rendered:
    """The member entry of a row (``context_id`` not None): ``{"userId", "name", "role", "status", "createdBy",
    "batchId", "agg"}`` as JSON bytes, and where it sorts among the others.

    Args:
        seen: the row as the members query returns it, kept to recognise it later.
        texts: the same row with the maps' stored text (:class:`RawRow`).

    Raises:
        ValueError: when a stored map is not valid JSON.
    """
    r = RawRow._make(texts)
    metrics, latest = render(decode(r.agg), decode(r.aggregates), decode(r.agg_last_updated))
    batch = group_metrics.batch_id(r.context_id or "")
    entry = group_metrics.member_entry(r, group_metrics.display_name(r.first_name, r.last_name), batch, metrics)
    # The prefix "\x00" keeps a real batch id "" after the null batch of a member without rows
    # (docs/reference/data-model.md#c6).
    return Rendered(seen, orjson.dumps(entry), (r.user_id, "\x00" + batch), latest, time.monotonic())


class FragmentMemo:
    """Rendered member entries by (group_id, activity_id, user_id, context_id), bounded in bytes; the oldest entries
    are dropped first.

    An entry is used only while the row read now equals, column for column, the row it was rendered from, and for
    ``max_age_s`` at most. Safe to share between the serving threads: lookups are single dict reads, and changes
    hold a lock.
    """

    def __init__(self, max_bytes: int = MEMO_BYTES, max_age_s: float = MEMO_MAX_AGE_S) -> None:
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
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

    @property
    def held(self) -> Mapping[tuple[str, ...], Rendered]:
        """The entries by (group_id, activity_id, user_id, context_id); one is valid for a row equal to its ``row``."""
        return self._held

    def get(self, group_id: str, activity_id: str, row: tuple[Any, ...]) -> Rendered | None:
        """The entry rendered from this very row (``context_id`` not None) in the last ``max_age_s``, or None."""
        held = self._held.get((group_id, activity_id, row[0], row[6]))
        fresh = held is not None and held.row == row and held.born >= time.monotonic() - self.max_age_s
        return held if fresh else None

    def render(
        self, group_id: str, activity_id: str, missed: list[tuple[Any, ...]], fetch: Fetch | None
    ) -> list[Rendered | None]:
        """Render the rows the memo does not hold, and keep them: one entry per row, in their order.

        Args:
            group_id: the group (part of the key).
            activity_id: the activity (part of the key).
            missed: rows as read; with ``fetch`` None they carry the maps' text themselves.
            fetch: given the users, their rows of the activity as ``(user_id, context_id, version, agg, aggregates,
                agg_last_updated)``; a missed row whose key it does not return (deleted meanwhile) gets None.

        Raises:
            ValueError: when a stored map is not valid JSON.
        """
        if fetch is None:
            pairs: list[tuple[tuple[Any, ...], tuple[Any, ...]] | None] = [(row, row) for row in missed]
        else:
            fetched = {(r[0], r[1]): r[2:] for r in fetch(sorted({row[0] for row in missed}))}
            pairs = []
            for row in missed:
                got = fetched.get((row[0], row[6]))
                # The row as fetched is the row the entry is kept under.
                pairs.append(None if got is None else ((*row[:7], got[0]), (*row[:7], *got[1:])))
        out: list[Rendered | None] = []
        for pair in pairs:
            if pair is None:
                out.append(None)
                continue
            seen, texts = pair
            fresh = render_member(seen, texts)
            self._put((group_id, activity_id, seen[0], seen[6]), fresh)
            out.append(fresh)
        return out

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
    fetch: Fetch | None = None,
) -> dict[str, Any]:
    """The ``/v1/group/activity/agg`` result without a ``fields`` filter, each member an ``orjson.Fragment``.

    Encodes to the same bytes as :func:`learnagg.domain.group_metrics.activity_agg` over the decoded rows: members
    sorted by (userId, batchId), a member without rows first under a null batch, enrolmentCount over the users with
    a row and its lastUpdatedOn the latest metric time of those rows, or ``now``.

    Args:
        group_id: echoed as ``groupId``; part of the memo key (a member's role belongs to the group).
        activity_id: the activity id (``activity.id``).
        activity_type: the requested type (``activity.type``).
        rows: every active member once per row of the activity, or once without a row: the member's columns and
            ``context_id`` (:class:`RawRow`), then the maps' text, or with ``fetch`` a version of the row that
            changes whenever the row does.
        include_all_members: add members without rows with ``"batchId": null`` and ``"agg": []``.
        now: the request time, the enrolmentCount lastUpdatedOn when no metric has a time.
        memo: the rendered entries.
        fetch: reads the maps' text of rows the memo does not hold (see :meth:`FragmentMemo.render`).

    Raises:
        ValueError: when a stored map is not valid JSON.
    """
    # Entries in the order of the rows, so that members of equal (userId, batchId) keep it (a stable sort, as the
    # whole rendering does).
    keyed: list[tuple[tuple[str, str], bytes] | None] = []
    found: list[Rendered] = []
    missed: list[tuple[Any, ...]] = []
    places: list[int] = []
    held_by_key = memo.held  # read inline: this loop runs once per member of every answer
    oldest = time.monotonic() - memo.max_age_s
    for raw in rows:
        row = tuple(raw)
        ctx = row[6]
        if ctx is None:  # a member without rows
            if include_all_members:
                r = RawRow._make((*row[:7], None, None, None))
                entry = group_metrics.member_entry(r, group_metrics.display_name(r.first_name, r.last_name), None, [])
                keyed.append(((r.user_id, ""), orjson.dumps(entry)))
            continue
        held = held_by_key.get((group_id, activity_id, row[0], ctx))
        if held is None or held.row != row or held.born < oldest:
            missed.append(row)
            places.append(len(keyed))
            keyed.append(None)
        else:
            found.append(held)
            keyed.append((held.sort_key, held.entry))
    if missed:
        for place, rendered in zip(places, memo.render(group_id, activity_id, missed, fetch), strict=True):
            if rendered is not None:
                found.append(rendered)
                keyed[place] = (rendered.sort_key, rendered.entry)
    enrolled = {item.sort_key[0] for item in found}
    stamps = [item.latest for item in found if item.latest is not None]
    entries = [item for item in keyed if item is not None]
    entries.sort(key=itemgetter(0))
    return {
        "groupId": group_id,
        "activity": {
            "id": activity_id,
            "type": activity_type,
            "agg": [{"metric": "enrolmentCount", "lastUpdatedOn": max(stamps, default=now), "value": len(enrolled)}],
        },
        # Each entry is copied once, into the answer (one joined fragment would copy it twice).
        "members": [orjson.Fragment(entry) for _, entry in entries],
    }


def decoded(rows: Iterable[tuple[Any, ...]]) -> list[MemberRow]:
    """The rows with their maps decoded, for the rules that read the metrics themselves (the ``fields`` filter).

    Raises:
        ValueError: when a stored map is not valid JSON.
    """
    return [MemberRow._make((*row[:7], decode(row[7]), decode(row[8]), decode(row[9]))) for row in rows]
