"""Logs (docs/operations.md "Logs"): one line per record, text or JSON, with the job and request they belong to."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learnagg import bootstrap, logs
from learnagg.entrypoints.api.app import create_app
from learnagg.settings import LogSettings, Settings


@contextmanager
def configured(settings: LogSettings) -> Iterator[None]:
    """Logging configured as the CLI does, undone afterwards."""
    root = logging.getLogger()
    level = root.level
    handler = logs.configure(settings)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_carry_ts_level_logger_msg(capsys: pytest.CaptureFixture[str]) -> None:
    with configured(LogSettings(format="json", level="info")):
        logging.getLogger("learnagg.test").info("hello %s", "world")
        logging.getLogger("learnagg.test").debug("not written below the level")
    [line] = json_lines(capsys.readouterr().err)
    assert set(line) == {"ts", "level", "logger", "msg"}
    assert (line["level"], line["logger"], line["msg"]) == ("INFO", "learnagg.test", "hello world")
    assert line["ts"].endswith("Z") and line["ts"][10] == "T" and len(line["ts"]) == 24


def test_json_record_with_a_traceback_stays_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with configured(LogSettings(format="json")):
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            logging.getLogger("learnagg.test").exception("failed")
    [line] = json_lines(capsys.readouterr().err)
    assert line["msg"] == "failed" and "ValueError: bad" in line["exc"] and "Traceback" in line["exc"]


def test_job_context_is_in_each_record_of_the_job_only(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("learnagg.test")
    with configured(LogSettings(format="json")):
        with logs.job_context("assessment-aggregator"):
            log.warning("inside")
            other = threading.Thread(target=log.warning, args=("another thread",))
            other.start()
            other.join()
        log.warning("outside")
    inside, elsewhere, outside = json_lines(capsys.readouterr().err)
    assert inside["job"] == "assessment-aggregator" and inside["msg"] == "inside"
    assert "job" not in elsewhere and "job" not in outside


def test_text_format_names_the_context(capsys: pytest.CaptureFixture[str]) -> None:
    with configured(LogSettings(format="text")), logs.job_context("activity-aggregate-updater"):
        logging.getLogger("learnagg.test").error("boom")
    err = capsys.readouterr().err
    assert err.endswith(" ERROR learnagg.test [job=activity-aggregate-updater]: boom\n")


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    assert logs.resolve_format(LogSettings(), Terminal()) == "text"  # type: ignore[arg-type]
    assert logs.resolve_format(LogSettings(), open("/dev/null")) == "json"  # noqa: SIM115
    assert logs.resolve_format(LogSettings(format="json"), Terminal()) == "json"  # type: ignore[arg-type]


def test_log_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEARNAGG_LOG__FORMAT", "json")
    monkeypatch.setenv("LEARNAGG_LOG__LEVEL", "warning")
    assert Settings().log == LogSettings(format="json", level="WARNING")


def test_request_records_carry_request_id_and_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A record logged while a request is served (the database error handler, the store being unreachable) names the
    request and its route template."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/missing/x.db", auth={"hs256_secret": "s" * 32})  # type: ignore[arg-type]
    app = bootstrap.build(settings)
    try:
        with configured(LogSettings(format="json")), TestClient(create_app(app), raise_server_exceptions=False) as c:
            token = c.app.state.token_keys.mint("u-1", app.clock(), [])  # type: ignore[attr-defined]
            headers = {"x-authenticated-user-token": token, "X-Request-ID": "req-7"}
            response = c.get("/v1/group/activities/g-1", headers=headers)
    finally:
        app.close()
    assert response.status_code == 500 and response.headers["x-request-id"] == "req-7"
    records = [r for r in json_lines(capsys.readouterr().err) if r["logger"] == "learnagg.api"]
    assert records, "the database error was not logged"
    assert records[0]["request_id"] == "req-7" and records[0]["route"] == "/v1/group/activities/{groupId}"
