"""Decoding a batch of log events and the failed-topic envelopes of the events a job refuses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from learnagg.adapters.bus.log import LogEvent
from learnagg.domain.assess_event import InvalidEvent
from learnagg.domain.messages import failed_event
from learnagg.streams import phases
from learnagg.streams.handler import Incoming
from learnagg.streams.retry import internal_error_reason

NOT_AN_OBJECT = "event is not a JSON object"
Failure = tuple[int, str, Any, str]  # (position, payload as received, decoded payload or None, reason)


def parse_batch(
    parse: Callable[[object], Any], events: Sequence[LogEvent]
) -> tuple[list[Incoming[Any]], list[Failure], list[Failure]]:
    """Decode and validate: the messages, the invalid events, and those whose parsing raised an internal error."""
    parsed: list[Incoming[Any]] = []
    failures: list[Failure] = []
    internal: list[Failure] = []
    for ev in events:
        try:
            raw = orjson.loads(ev.payload)
        except orjson.JSONDecodeError:
            failures.append((ev.seq, ev.payload, None, NOT_AN_OBJECT))
            continue
        phases.lap(phases.DECODE)
        try:
            message = parse(raw)
        except InvalidEvent as exc:
            failures.append((ev.seq, ev.payload, raw, exc.reason))
            continue
        except Exception as exc:  # RecursionError on deep nesting, OverflowError, …: this event only
            internal.append((ev.seq, ev.payload, raw, internal_error_reason(exc)))
            continue
        phases.lap(phases.VALIDATE)
        parsed.append(Incoming(ev.payload, raw, message, ev.seq))
    return parsed, failures, internal


def envelope(seq: int, raw_text: str, raw: Any, reason: str, *, src: str, now: int, where: str) -> str:
    """The failed-topic message, ``metadata.failed_id`` = ``<where>:<seq>`` (``where`` = ``<job>:<partition>``).

    The raw text form is used when the decoded event cannot be encoded again.
    """
    failed_id = f"{where}:{seq}"
    try:
        return orjson.dumps(failed_event(raw_text, raw, reason, src, now, failed_id)).decode()
    except TypeError:  # orjson.JSONEncodeError: nesting beyond orjson's limit, an integer beyond 64 bits
        return orjson.dumps(failed_event(raw_text, None, reason, src, now, failed_id)).decode()
