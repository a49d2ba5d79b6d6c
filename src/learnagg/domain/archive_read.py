"""Reading archived assessment files back (docs/batch.md#assessment-archival, before deletion): rows, count
and checksum."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import IO, Any

from learnagg.domain.archive_csv import COLUMNS, FLUSH_CHARS, ArchiveDigest, to_epoch_ms

# Epoch ms that a date can hold: 0001-01-01 to 9999-12-31 UTC. Anything outside is refused, never stored.
MIN_TIMESTAMP_MS = -62_135_596_800_000
MAX_TIMESTAMP_MS = 253_402_300_799_999
# Scores and max scores beyond this magnitude are refused, as in every other input (docs/threat-model.md).
MAX_ABS_DOUBLE = 1e15
_DOUBLE_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)

# The reference's legacy text timestamps, `yyyy-MM-dd HH:mm:ss:SSSZ` (docs/reference/data-model.md#enrolment), which
# fromisoformat cannot read.
_LEGACY_TS = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}):(\d{3})(Z|[+-]\d{2}:?\d{2})?")


# How a message about damaged bytes (not gzip, truncated, bad compressed data) begins.
CORRUPT = "corrupt archive"


class ArchiveFormatError(ValueError):
    """An archive that cannot be read: not gzip, truncated, a wrong header or a bad line (with its number)."""


@dataclass(frozen=True, slots=True)
class ArchivedRow:
    """One archived attempt as read back; ``question`` is the raw JSON text (see `parse_question`)."""

    course_id: str
    batch_id: str
    user_id: str
    content_id: str
    attempt_id: str
    created_on: int | None
    grand_total: str | None
    last_attempted_on: int | None
    total_max_score: float | None
    total_score: float | None
    updated_on: int | None
    question: str | None


def parse_timestamp(text: str | None) -> int | None:
    """Epoch ms from an archived field: epoch-ms digits or a text timestamp (naive text is UTC); empty is None.

    Accepted text: ISO 8601 with a space or ``T`` (``2021-11-29 10:00:00.123``, ``…Z``, ``…+05:30``, ``…+0530``),
    a bare date, and the reference's ``yyyy-MM-dd HH:mm:ss:SSSZ``.

    Raises:
        ValueError: for any other text, and for an instant outside years 1 to 9999 (UTC).
    """
    if not text:
        return None
    if text.isdigit() and text.isascii():
        return _in_range(int(text), text)
    t = text.strip()
    if not t:
        return None
    digits = t[1:] if t[0] == "-" else t
    if digits.isascii() and digits.isdigit():
        return _in_range(int(t), text)
    legacy = _LEGACY_TS.fullmatch(t)
    if legacy:
        day, clock, millis, zone = legacy.groups()
        t = f"{day} {clock}.{millis}{zone or ''}"
    try:
        moment = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"not a timestamp: {text!r}") from None
    try:
        ms = to_epoch_ms(moment)
    except OverflowError:  # 0001-01-01T00:00+14:00 and the like: before year 1 in UTC
        raise ValueError(f"timestamp out of range: {text!r}") from None
    return _in_range(ms, text)


def _in_range(ms: int, text: str) -> int:
    if MIN_TIMESTAMP_MS <= ms <= MAX_TIMESTAMP_MS:
        return ms
    shown = text if len(text) <= 40 else text[:40] + "…"
    raise ValueError(f"timestamp out of range: {shown!r}")


def parse_double(text: str | None) -> float | None:
    """A double from an archived field (ASCII digits only); empty is None.

    Raises:
        ValueError: when the text is not a decimal number, or is not finite with magnitude at most 1e15.
    """
    if not text or not text.strip():
        return None
    shown = text if len(text) <= 40 else text[:40] + "…"
    if _DOUBLE_TEXT.fullmatch(text) is None:  # float() would take "١٢", "1_000", "nan" and "inf"
        raise ValueError(f"not a number: {shown!r}")
    value = float(text)
    if not -MAX_ABS_DOUBLE <= value <= MAX_ABS_DOUBLE:
        raise ValueError(f"number out of range: {shown!r}")
    return value


def parse_question(text: str | None) -> list[Any] | None:
    """The archived ``question`` JSON array as Python objects; empty is None.

    Raises:
        ValueError: when the text is not a JSON array.
    """
    if text is None or not text.strip():
        return None
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError("question is not a JSON array")
    return value


def _general_fields(record: str) -> list[str]:
    try:
        return next(csv.reader([record], strict=True))
    except csv.Error as exc:
        raise ValueError(f"bad CSV quoting: {exc}") from None


def _fields(record: str, question_last: bool, questions: bool) -> list[str]:
    """Split one complete record; the common archive line (quotes only in the last field) avoids the csv module.

    Without ``questions`` the quoted last field of such a line is returned empty, not unquoted (deletion never
    reads it; the checksum already covers its bytes).
    """
    if '"' not in record:
        return record.split(",")
    if question_last:
        head, sep, last = record.partition(',"') if record.count(",", 0, record.find('"')) == 11 else ("", "", "")
        if sep and '"' not in head and last.endswith('"'):
            if not questions:
                return [*head.split(","), ""]
            inner = last[:-1]
            if '"' not in inner.replace('""', ""):
                return [*head.split(","), inner.replace('""', '"')]
    return _general_fields(record)


class ArchiveReader:
    """Iterate the rows of an archive from a binary stream, counting them and hashing the uncompressed bytes.

    The header names the columns (any order; all 12 required, others ignored). Records end at an LF outside
    quotes (D5); a trailing CR is dropped. After a complete iteration `digest` gives the row count and the
    checksum to compare with `archival_metadata`.

    Raises (while iterating):
        ArchiveFormatError: not gzip, truncated, bad UTF-8, a wrong header, or a bad line (with its line number).
    """

    def __init__(self, stream: IO[bytes], *, questions: bool = True) -> None:
        """Read from ``stream`` (not closed here); ``questions=False`` leaves `ArchivedRow.question` and
        `ArchivedRow.created_on` None, unread (what deletion needs of a file whose bytes were verified)."""
        self._questions = questions
        self._gz = gzip.GzipFile(fileobj=stream, mode="rb")
        self._hash = hashlib.sha256()
        self.rows = 0
        self._done = False

    @property
    def digest(self) -> ArchiveDigest:
        """The row count and checksum; only meaningful once every row has been read."""
        if not self._done:
            raise RuntimeError("the archive has not been read to its end")
        return ArchiveDigest(self.rows, self._hash.hexdigest())

    def _lines(self) -> Iterator[str]:
        """The text lines (without LF); the hash sees every decompressed byte."""
        carry = b""
        while True:
            block = self._gz.read(FLUSH_CHARS)
            if not block:
                break
            self._hash.update(block)
            block = carry + block
            cut = block.rfind(b"\n") + 1
            carry = block[cut:]
            if cut:
                yield from block[: cut - 1].decode("utf-8").split("\n")
        if carry:
            yield carry.decode("utf-8")

    def _records(self) -> Iterator[tuple[int, str]]:
        """Complete records with their first line number: an LF inside quotes continues the record."""
        pending: list[str] = []
        quotes = 0
        start = 0
        for number, line in enumerate(self._lines(), start=1):
            if not pending:
                start = number
            pending.append(line)
            quotes += line.count('"')
            if quotes == 0 and not line.strip("\r"):  # a blank line is no record (as for csv.reader)
                pending = []
                continue
            if quotes % 2 == 0:
                record = pending[0] if len(pending) == 1 else "\n".join(pending)
                pending = []
                quotes = 0
                yield start, record[:-1] if record.endswith("\r") else record
        if pending:
            raise ArchiveFormatError(f"line {start}: a quoted field is not closed")

    def __iter__(self) -> Iterator[ArchivedRow]:
        """The rows in file order."""
        number = 1
        try:
            records = self._records()
            first = next(records, None)
            if first is None:
                raise ArchiveFormatError("line 1: empty archive (no header)")
            header = _general_fields(first[1])
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ArchiveFormatError(f"line 1: header lacks {', '.join(missing)}")
            index = None if tuple(header) == COLUMNS else [header.index(c) for c in COLUMNS]
            width = len(header)
            for number, record in records:
                if "\x00" in record:  # no database text holds NUL (PostgreSQL refuses it)
                    raise ArchiveFormatError(f"line {number}: NUL character")
                fields = _fields(record, index is None, self._questions)
                if len(fields) != width:
                    raise ArchiveFormatError(f"line {number}: {len(fields)} fields, expected {width}")
                try:
                    row = _archived_row(fields if index is None else [fields[i] for i in index], self._questions)
                except ValueError as exc:
                    raise ArchiveFormatError(f"line {number}: {exc}") from None
                if not self._questions and row.question is not None:
                    row = replace(row, question=None)
                self.rows += 1
                yield row
        except (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
            raise ArchiveFormatError(f"{CORRUPT} after line {number}: {exc}") from exc
        self._done = True


def _archived_row(f: list[str], full: bool = True) -> ArchivedRow:
    course_id, batch_id, user_id, content_id = f[0], f[1], f[2], f[3]
    if not (course_id and batch_id and user_id and content_id):
        name = next(n for n, v in zip(COLUMNS, f, strict=False) if not v)
        raise ValueError(f"empty {name}")
    return ArchivedRow(
        course_id,
        batch_id,
        user_id,
        content_id,
        f[4],
        parse_timestamp(f[5]) if full else None,
        f[6] or None,
        parse_timestamp(f[7]),
        parse_double(f[8]),
        parse_double(f[9]),
        parse_timestamp(f[10]),
        f[11] or None,
    )


def read_digest(stream: IO[bytes]) -> ArchiveDigest:
    """Read a whole archive, checking every line, and return its row count and checksum.

    Raises:
        ArchiveFormatError: when the archive cannot be read.
    """
    reader = ArchiveReader(stream)
    for _ in reader:
        pass
    return reader.digest


def read_checksum(stream: IO[bytes]) -> str:
    """The checksum of an archive's uncompressed bytes, without parsing them (a fast byte-for-byte check).

    Equal checksums mean the very bytes that were written, hence the same rows and row count.

    Raises:
        ArchiveFormatError: not gzip, or truncated.
    """
    digest = hashlib.sha256()
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as gz:
            while block := gz.read(FLUSH_CHARS):
                digest.update(block)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveFormatError(f"{CORRUPT}: {exc}") from exc
    return digest.hexdigest()
