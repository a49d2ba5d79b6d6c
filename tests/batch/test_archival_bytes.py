"""Archive files are pinned byte for byte (docs/batch.md#assessment-archival): a fixed data set, archived on SQLite
and on PostgreSQL, gives exactly these gzip files and checksums, whatever the writer's internals.

The data covers what the writer has to get right: questions in the key order older releases stored and in the
archive's order, odd question shapes (missing and extra keys, non-objects, empty lists, SQL NULL), doubles in
every form (fractions, exponents, negatives), text needing D5 quoting (commas, quotes, line breaks), non-ASCII
text and code-point ordering, null columns, and instants before 1970.
"""

from __future__ import annotations

import gzip
import hashlib
from typing import Any

from sqlalchemy import insert, null, text

from learnagg.adapters.store.tables import archival_metadata, assessment_aggregator
from learnagg.batch.archival import run_archive
from learnagg.domain import archive_csv as ac
from tests.batch.test_archival import at, blobs  # noqa: F401  (fixture)
from tests.conftest import T

STORED_ORDER = (
    *("id", "assess_ts", "max_score", "score", "type", "title"),
    *("description", "duration", "resvalues", "params"),
)


def question(n: int, ts: int, *, order: tuple[str, ...] = STORED_ORDER, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": f"do_q{n}",
        "assess_ts": ts + n * 1000,
        "max_score": 1.0,
        "score": [0.0, 1.0, 0.5, 1 / 3][n % 4],
        "type": "mcq",
        "title": f"Question {n}",
        "description": None,
        "duration": 20.0 + n / 10,
        "resvalues": [{"1": '{"text":"Option A"}'}],
        "params": [{"1": '{"text":"Option A"}'}, {"answer": '{"correct":["1"]}'}],
        **changes,
    }
    return {k: values[k] for k in order if k in values} | {k: v for k, v in values.items() if k not in order}


def row(user: str, content: str, attempt: str, ts: int, questions: Any, **changes: Any) -> dict[str, Any]:
    score = changes.pop("score", 2.5)
    return {
        "user_id": user,
        "course_id": "do_pin_course",
        "batch_id": "pin-batch",
        "content_id": content,
        "attempt_id": attempt,
        "created_on": ts - 7,
        "updated_on": ts,
        "last_attempted_on": ts - 500,
        "total_score": score,
        "total_max_score": 4.0,
        "grand_total": f"{score}/4.0",
        "question": questions,
        **changes,
    }


def pinned_rows() -> list[dict[str, Any]]:
    w1, w2 = at(2023, 3, 7, 9), at(2023, 3, 15, 18)  # two ISO weeks of 2023
    archive_order = ac.QUESTION_KEYS
    out = []
    for u in range(6):
        for c in range(2):
            ts = w1 + u * 3_600_000 + c * 60_000
            out.append(row(f"user-{u}", f"do_content_{c}", f"att-{u}-{c}", ts, [question(n, ts) for n in range(4)]))
    out += [
        # the archive's key order, as later releases may store it
        row("user-7", "do_content_0", "att-7", w1 + 5, [question(n, w1, order=archive_order) for n in range(3)]),
        # doubles of every shape, non-ASCII and quoting inside the question text
        row(
            "émile",
            "do_content_0",
            "x",
            w1 + 9,
            [
                question(1, w1, score=1e-7, max_score=1e15, duration=0.1 + 0.2, title='Say "hi", then\nleave'),
                question(2, w1, score=-2.5e-5, title="ünïcödé ✓ 😀 中文\\path\t\u2028", description="d,e"),
                question(3, w1, resvalues=[{'k,"q"': "v\r\n"}], params=[]),
            ],
            score=-1.25,
        ),
        # odd shapes: missing and extra keys, a non-object item, empty list, JSON null items
        row("zoë", "do_content_1", "odd-1", w1 + 11, [{"id": "only"}, {"extra": 1, **question(1, w1)}, "text", 7]),
        row("zoë", "do_content_1", "odd-2", w1 + 12, []),
        row("zoë", "do_content_1", "odd-3", w1 + 13, [None, {"id": None, "title": None}]),
        # null columns (SQL NULL question), JSON text that is not compact, empty attempt id, text needing D5
        # quoting, an instant before 1970
        row("Zed", "do_content_0", "", w1 + 14, null(), grand_total=None, score=None, last_attempted_on=None),
        row('quote"user', "do,content", "a\nb", w1 + 15, [question(1, w1)], created_on=-86_400_123),
        row("Zed", "do_content_1", "n", w1 + 16, [question(1, w1)], created_on=None, total_max_score=None),
        row("Zed", "do_content_1", "spaced", w1 + 17, null()),  # its question is set as text below
        # the second week, with many questions
        *(row(f"user-{u}", "do_content_9", "w2", w2 + u, [question(n, w2) for n in range(20)]) for u in range(3)),
    ]
    return out


# year-week of each file → (SHA-256 of the gzip file, metadata checksum = SHA-256 of the uncompressed CSV)
PINNED: dict[str, tuple[str, str]] = {
    "2023-10": (
        "4a3b3abef26c16d21ac16beb9dd943c96c52e8b5ed47eddfa5f75f79facead89",
        "e3f73542b9c3b45189973bfe1b5b270efce420bd89a2b63dca13c1fe99105704",
    ),
    "2023-11": (
        "e596103034b59450256b055f3a8c879f7228b1dcfc50d07a239214833da2e5e2",
        "54f4040ec6949e0fe0495c703aabc0b0cfe00bf5af38146c94794ef60b3e3e12",
    ),
}


def test_archive_bytes_are_pinned(app, blobs):  # noqa: F811
    with app.store.write() as conn:
        conn.execute(insert(assessment_aggregator), pinned_rows())
        # JSON text that is not compact (written by another tool): archived as compact JSON all the same
        value = "CAST(:q AS JSONB)" if app.store.backend == "postgresql" else ":q"
        conn.execute(
            text(f"UPDATE assessment_aggregator SET question = {value} WHERE attempt_id = 'spaced'"),
            {"q": '[ {"title": "caf\\u00e9, ok", "id" : "s",  "score": 1.25e0, "duration": 2} ]'},
        )
    summary = run_archive(app, blobs)
    assert (summary.archived, summary.failed) == (2, 0)
    got = {}
    with app.store.read() as conn:
        recorded = {m.blob_url[0]: m.checksum for m in conn.execute(archival_metadata.select())}
    for key in blobs.list_keys():
        with blobs.open_read(key) as f:
            data = f.read()
        assert recorded[key] == hashlib.sha256(gzip.decompress(data)).hexdigest()
        got[key.rsplit("/", 1)[1].removesuffix(f"-{T}.csv.gz")] = (hashlib.sha256(data).hexdigest(), recorded[key])
    assert got == PINNED
