"""`learnagg publish`: all or nothing per file, the bad line named, a BOM skipped, lines split on newlines only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.entrypoints.cli import main
from learnagg.settings import Settings


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite file, named by LEARNAGG_DATABASE_URL for in-process runs of the CLI."""
    database = f"sqlite:///{tmp_path}/publish.db"
    store = Store(database)
    schema.upgrade(store)
    store.dispose()
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database)
    return database


def _payloads(url: str, topic: str = "dev.telemetry.assess") -> list[str]:
    app = bootstrap.build(Settings(database_url=url))
    try:
        with app.store.read() as conn:
            return [e.payload for e in app.log.read(conn, topic)]
    finally:
        app.close()


def _event(n: int) -> bytes:
    return json.dumps({"assessmentTs": n, "userId": f"u-{n}"}).encode()


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_a_bad_byte_after_the_first_chunk_publishes_nothing_and_names_the_line(url, tmp_path, capsys):
    lines = [_event(n) for n in range(1, 6001)]
    lines[5500] = b'{"userId": "caf\xe9"}'  # Latin-1, not UTF-8: line 5,501
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    assert main(["publish", "assess", str(path)]) == 1
    assert _one_line_error(capsys) == f"learnagg: error: {path}:5501: not valid UTF-8 (byte 16 of the line)"
    assert _payloads(url) == []

    lines[5500] = _event(5501)
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["publish", "assess", str(path)]) == 0
    assert "published 6000 event(s) to dev.telemetry.assess" in capsys.readouterr().err
    assert _payloads(url) == [line.decode() for line in lines]  # each event once, in file order


def test_a_nul_character_is_refused_with_its_line(url, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_bytes(_event(1) + b"\n\n" + b'{"userId": "a\x00b"}\n')
    assert main(["publish", "assess", str(path)]) == 1
    assert _one_line_error(capsys).startswith(f"learnagg: error: {path}:3: NUL character")
    assert _payloads(url) == []


def test_a_byte_order_mark_is_skipped(url, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _event(1) + b"\n" + _event(2) + b"\n")
    assert main(["publish", "assess", str(path)]) == 0
    assert _payloads(url) == [_event(1).decode(), _event(2).decode()]


def test_a_carriage_return_inside_a_line_does_not_split_the_event(url, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    # A raw CR between JSON tokens is whitespace; CRLF line ends are stripped as before.
    path.write_bytes(b'{"assessmentTs": 1,\r"userId": "u-1"}\r\n' + _event(2) + b"\r\n\r\n")
    assert main(["publish", "assess", str(path)]) == 0
    payloads = _payloads(url)
    assert payloads == ['{"assessmentTs": 1,\r"userId": "u-1"}', _event(2).decode()]
    assert json.loads(payloads[0]) == {"assessmentTs": 1, "userId": "u-1"}


def test_progress_events_are_keyed_by_user_and_invalid_json_is_left_for_the_job(url, tmp_path, capsys):
    path = tmp_path / "progress.jsonl"
    path.write_bytes(b'{"edata": {"userId": "u-7"}}\nnot json\n')
    assert main(["publish", "progress", str(path)]) == 0
    app = bootstrap.build(Settings(database_url=url))
    try:
        with app.store.read() as conn:
            events = app.log.read(conn, app.topics.progress)
    finally:
        app.close()
    assert [(e.key, e.payload) for e in events] == [("u-7", '{"edata": {"userId": "u-7"}}'), (None, "not json")]


def test_standard_input_with_a_bom_and_a_bad_line(url, tmp_path):
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url}
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "publish", "assess", "-"]
    ok = subprocess.run(cmd, env=env, input=b"\xef\xbb\xbf" + _event(1) + b"\r\n", capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert _payloads(url) == [_event(1).decode()]

    bad = subprocess.run(cmd, env=env, input=_event(2) + b"\n\xff\n", capture_output=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.decode().strip() == "learnagg: error: stdin:2: not valid UTF-8 (byte 1 of the line)"
    assert _payloads(url) == [_event(1).decode()]
