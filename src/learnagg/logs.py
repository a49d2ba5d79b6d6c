"""Logging for every command: one line per record on standard error, as text or JSON, with job and request context.

``configure`` is called once by each entry point (the CLI, each ``serve --workers`` process). The job a record
belongs to and the HTTP request being served are kept in context variables, so any logger anywhere gets them without
passing them around: :func:`job_context` around a job's work, :func:`request_context` around a request
(docs/operations.md "Logs").
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TextIO

from learnagg.settings import LogSettings

CONTEXT_FIELDS = ("job", "request_id", "route")
_CHATTY_LIBRARIES = ("alembic", "httpx")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The request being served: its id, and how to read its route template (known only once routing has run)."""

    request_id: str
    route: Callable[[], str | None]


_job: ContextVar[str | None] = ContextVar("learnagg_log_job", default=None)
_request: ContextVar[RequestContext | None] = ContextVar("learnagg_log_request", default=None)


@contextmanager
def job_context(name: str) -> Iterator[None]:
    """Records logged inside carry ``job=name``."""
    token = _job.set(name)
    try:
        yield
    finally:
        _job.reset(token)


def bind_request(request_id: str, route: Callable[[], str | None]) -> Token[RequestContext | None]:
    """From now on in this context, records carry ``request_id`` and, once known, the ``route`` template."""
    return _request.set(RequestContext(request_id, route))


def unbind_request(token: Token[RequestContext | None]) -> None:
    """Undo :func:`bind_request`."""
    _request.reset(token)


@contextmanager
def request_context(request_id: str, route: Callable[[], str | None]) -> Iterator[None]:
    """Records logged inside carry ``request_id`` and, once known, the ``route`` template."""
    token = bind_request(request_id, route)
    try:
        yield
    finally:
        unbind_request(token)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    request = _request.get()
    return request.request_id if request is not None else None


class ContextFilter(logging.Filter):
    """Adds ``job``, ``request_id`` and ``route`` to every record (None where they do not apply).

    A value given by the caller (``extra={"job": …}``) is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the context; never drops a record."""
        request = _request.get()
        values = {
            "job": _job.get(),
            "request_id": request.request_id if request is not None else None,
            "route": request.route() if request is not None else None,
        }
        for key, value in values.items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


def _context(record: logging.LogRecord) -> dict[str, str]:
    return {key: str(value) for key in CONTEXT_FIELDS if (value := getattr(record, key, None)) is not None}


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds: ``2024-05-01T10:20:30.123Z``."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, the context keys that apply, and ``exc``
    (the traceback) when the record carries one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (newlines inside values are escaped)."""
        out: dict[str, str] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_context(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger> [job=… request_id=… route=…]: <msg>``; a traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as readable text."""
        context = " ".join(f"{k}={v}" for k, v in _context(record).items())
        head = f"{_timestamp(record)} {record.levelname} {record.name}"
        text = f"{head} [{context}]: {record.getMessage()}" if context else f"{head}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (tests and embedders swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignored: the stream is always the current standard error."""


def resolve_format(settings: LogSettings, stream: TextIO | None = None) -> str:
    """``text`` or ``json``: ``auto`` is text when the stream (standard error) is a terminal."""
    if settings.format != "auto":
        return settings.format
    target = stream if stream is not None else sys.stderr
    isatty = getattr(target, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def configure(settings: LogSettings) -> logging.Handler:
    """Send every record (of learnagg and of the libraries it uses) to standard error, formatted per ``settings``.

    Calling it again replaces the handler it installed before; handlers installed by others are left alone.

    Returns:
        The installed handler.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if resolve_format(settings) == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.level)
    # Libraries that log routine steps at INFO (each schema check, each HTTP call) speak only from WARNING on,
    # unless asked for DEBUG: a command's standard error stays its own messages.
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if settings.level == "DEBUG" else logging.WARNING)
    return handler


def configure_from_settings() -> logging.Handler:
    """:func:`configure` from the ``log`` settings of the environment and config file.

    Settings that do not load leave logging at its defaults: the command reports them itself when it reads them.
    """
    from learnagg.settings import load_settings

    try:
        settings = load_settings().log
    except (ValueError, OSError):  # pydantic's ValidationError and a TOML syntax error are ValueErrors
        settings = LogSettings()
    return configure(settings)


def unconfigure() -> None:
    """Remove what :func:`configure` installed (for embedders and tests that run several commands in one process)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET)
