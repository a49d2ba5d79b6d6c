"""Archive rows rendered many at a time (docs/batch.md#assessment-archival): the exact text of
`archive_csv.archive_line` for a whole chunk with the least work per row.

Every function here gives the same bytes as the row-at-a-time functions of `archive_csv` (the archive format is
pinned by tests); only the cost differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from learnagg.domain.archive_csv import (
    _STORED_KEYS,
    DAY_MS,
    QUESTION_KEYS,
    Dumps,
    Loads,
    _day_text,
    archive_line,
    question_json,
)

_QUOTE, _QUOTES = '"', '""'
# The key order PostgreSQL's jsonb gives an object's keys (shorter first, then bytewise): its text of a question.
JSONB_KEYS = tuple(sorted(QUESTION_KEYS, key=lambda k: (len(k), k.encode())))


def archive_question(text: str, dumps: Dumps, loads: Loads) -> str:
    """`archive_csv.question_json` of a question's stored JSON text, with the cheapest path for each key order.

    Questions stored in the archive's order need no reordering; those in the order of older releases get two
    keys moved; jsonb's order is rebuilt. Anything else (other keys, a non-object item, not a list) takes
    `question_json` itself.
    """
    parsed = loads(text)
    if type(parsed) is not list:
        return _question_json(text, dumps, loads)
    for i, q in enumerate(parsed):
        if type(q) is not dict:
            return _question_json(text, dumps, loads)
        keys = tuple(q)
        if keys == QUESTION_KEYS:
            continue
        if keys == _STORED_KEYS:
            q["description"] = q.pop("description")
            q["duration"] = q.pop("duration")
        elif keys == JSONB_KEYS:
            parsed[i] = {k: q[k] for k in QUESTION_KEYS}
        else:
            return _question_json(text, dumps, loads)
    return dumps(parsed)


def _question_json(text: str, dumps: Dumps, loads: Loads) -> str:
    return cast(str, question_json(text, dumps, loads))  # text in, text out


def created_on_text(ms: int) -> str:
    """`archive_csv.format_created_on` of an integer (``yyyy-MM-dd HH:mm:ss.SSS``, UTC)."""
    day, rest = divmod(ms, DAY_MS)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day_text(day)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}"


def archive_lines(rows: Sequence[Sequence[Any]], dumps: Dumps, loads: Loads) -> str:
    """The D5 lines of many `assessment_aggregator` rows (values in `archive_csv.COLUMNS` order, the question as
    stored JSON text or None): exactly ``"".join(archive_line(r, dumps, loads) for r in rows)``.

    The common row (text keys, integer instants, double scores) is formatted with one f-string; whether any of
    its unquoted fields needs D5 quoting is checked once for the whole chunk, which is rendered row by row by
    `archive_line` when one does.
    """
    heads: list[str] = []
    questions: list[str] = []
    for values in rows:
        c, b, u, ct, at, cr, g, la, mx, sc, up, q = values
        if (
            type(cr) is not int
            or type(la) is not int
            or type(up) is not int
            or type(mx) is not float
            or type(sc) is not float
            or type(q) is not str
        ):
            return "".join([archive_line(r, dumps, loads) for r in rows])
        heads.append(f"{c},{b},{u},{ct},{at},{created_on_text(cr)},{g or ''},{la},{mx!r},{sc!r},{up}")
        questions.append(q)
    joined = "\n".join(heads)
    if (
        joined.count(",") != 10 * len(heads)
        or joined.count("\n") != len(heads) - 1
        or '"' in joined
        or "\r" in joined
        or not _all_text(rows)
    ):
        return "".join([archive_line(r, dumps, loads) for r in rows])
    out: list[str] = []
    for head, q in zip(heads, questions, strict=True):
        text = archive_question(q, dumps, loads)
        if '"' in text or "," in text:
            out.append(f'{head},"{text.replace(_QUOTE, _QUOTES)}"\n')
        else:
            out.append(f"{head},{text}\n")
    return "".join(out)


def _all_text(rows: Sequence[Sequence[Any]]) -> bool:
    """Every key column and grand total is text (or a null grand total): the f-string wrote them as D5 does."""
    for r in rows:
        if not (type(r[0]) is type(r[1]) is type(r[2]) is type(r[3]) is type(r[4]) is str):
            return False
        if r[6] is not None and type(r[6]) is not str:
            return False
    return True
