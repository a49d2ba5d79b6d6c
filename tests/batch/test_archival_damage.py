"""Damaged and hostile archives on SQLite and PostgreSQL: deletion fails that file with one reason, nothing else."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update

from learnagg.adapters.store.tables import archival_metadata
from learnagg.batch.archival import ArchivalScope, run_archive
from learnagg.batch.archival_delete import run_delete
from learnagg.domain import archive_csv as ac
from tests.batch.test_archival import blobs, corrupt_not_gzip, corrupt_truncate, metadata, sample, seed, snapshot
from tests.support import attempts

__all__ = ["blobs"]  # the fixture


def corrupt_bad_line(path: Path) -> None:
    text = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(text + b"c,b,u\n"))


@pytest.mark.parametrize(
    ("damage", "checksum", "reason"),
    [
        (corrupt_not_gzip, True, "corrupt archive: Not a gzipped file"),
        (corrupt_truncate, True, "corrupt archive: Compressed file ended"),
        (corrupt_truncate, False, "corrupt archive after line 1: Compressed file ended"),
        (corrupt_bad_line, False, "corrupt archive: line 3: 3 fields, expected 12"),
    ],
    ids=["not-gzip", "truncated", "truncated-no-checksum", "bad-line-no-checksum"],
)
def test_a_damaged_archive_reason_has_one_corrupt_archive_prefix(app, blobs, damage, checksum, reason):
    """Regression: the stored reason read ``corrupt archive: corrupt archive: …``."""
    seed(app, sample())
    run_archive(app, blobs, ArchivalScope(batch_ids=("batch-2",)))
    [key] = blobs.list_keys()
    damage(Path(blobs.path(key)))
    if not checksum:
        with app.store.write() as conn:
            conn.execute(update(archival_metadata).values(checksum=None, row_count=None))
    summary = run_delete(app, blobs)
    [m] = metadata(app)
    assert summary.failures[0]["error"] == m["err_message"]
    assert m["err_message"].startswith(reason) and m["err_message"].count("corrupt archive") == 1


def with_field(column: str, value: str) -> Callable[[Path], None]:
    """A damage that sets one field of the archive's data row (before the quoted question) to ``value``."""

    def damage(path: Path) -> None:
        header, data, *rest = gzip.decompress(path.read_bytes()).decode().split("\n")
        head, sep, question = data.partition(',"')
        fields = head.split(",")
        fields[ac.COLUMNS.index(column)] = value
        path.write_bytes(gzip.compress("\n".join([header, ",".join(fields) + sep + question, *rest]).encode()))

    return damage


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("updated_on", "0001-01-01T00:00:00+14:00", "line 2: timestamp out of range"),
        ("updated_on", "99999999999999999999", "line 2: timestamp out of range: '99999999999999999999'"),
        ("created_on", "9223372036854775808", "line 2: timestamp out of range"),
        ("total_score", "1e999", "line 2: number out of range: '1e999'"),
        ("total_score", "1e300", "line 2: number out of range: '1e300'"),
        ("total_score", "nan", "line 2: not a number: 'nan'"),
        ("total_max_score", "\u0661\u0662", "line 2: not a number"),
        ("total_max_score", "1_0", "line 2: not a number: '1_0'"),
        ("user_id", "abe\x00", "line 2: NUL character"),
    ],
    ids=["ts-before-year-1", "ts-digits", "ts-int64", "inf", "huge", "nan", "arabic-digits", "underscore", "nul"],
)
def test_a_hostile_archive_without_checksum_fails_its_deletion_and_nothing_else(app, blobs, column, value, reason):
    """Regression: such a line crashed the whole delete run (OverflowError, database error) or was accepted."""
    seed(app, sample())
    run_archive(app, blobs, ArchivalScope(batch_ids=("batch-2",)))
    [key] = blobs.list_keys()
    with_field(column, value)(Path(blobs.path(key)))
    with app.store.write() as conn:
        conn.execute(update(archival_metadata).values(checksum=None, row_count=None))
    before = snapshot(app)
    summary = run_delete(app, blobs)
    [m] = metadata(app)
    assert (summary.failed, m["deletion_status"]) == (1, "FAILED")
    assert m["err_message"].startswith(f"corrupt archive: {reason}")
    assert len(attempts(app)) == 19 and snapshot(app) == before
