"""One poison event never stops a job (docs/event-log.md "Poison events"): it is isolated, failed, and the rest applied.

The first tests place each hostile value found in the wild between two valid attempts and run the real assessment
aggregator. The input bounds of the assessment parser may reject some of them as validation errors (a message naming
the rule) and the others reach the store and fail there (``internal error: …``): either way the valid events are
aggregated and the poison is in the failed topic with a reason. The later tests exercise the isolation machinery
itself with a job built here, whose handler fails for marked events, on both backends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, text

from learnagg import bootstrap
from learnagg.adapters.bus.outbox import Outbox, OutboxLog
from learnagg.bench.demo_data import batch_event
from learnagg.domain.assess_event import InvalidEvent
from learnagg.streams.consumer import JobConsumer, Worker
from learnagg.streams.handler import BatchResult, Incoming, JobSpec
from tests.support import activity_rows, attempts, bus_env, course, drain, load, publish, topic_events

C, B, A = "do_course", "batch-1", "do_a1"


def _answer(qid: str = "q1", score: Any = 1, **item: Any) -> dict[str, Any]:
    return {
        "eid": "ASSESS",
        "ets": 5,
        "edata": {"score": score, "duration": 1, "item": {"id": qid, "maxscore": 1, **item}},
    }


def _attempt(user: str, attempt_id: str, **overrides: Any) -> dict[str, Any]:
    event = batch_event(
        course_id=C, batch_id=B, user_id=user, content_id=A, attempt_id=attempt_id, ts=1_000, events=[_answer()]
    )
    event.update(overrides)
    return event


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


POISONS: dict[str, dict[str, Any]] = {
    "assessmentTs 2^63": {"assessmentTs": 2**63},
    "score 1e26": {"events": [_answer(score=1e26)]},
    "maxscore 1e26": {"events": [_answer(maxscore=1e26)]},
    "score '1e999'": {"events": [_answer(score="1e999")]},
    "params 500 deep": {"events": [_answer(params=_nested(500))]},
    "resvalues 500 deep": {
        "events": [{"eid": "ASSESS", "ets": 5, "edata": {"score": 1, "resvalues": _nested(500), "item": {"id": "q1"}}}]
    },
    "NUL in userId": {"userId": "u-\u0000-x"},
    "NUL in title": {"events": [_answer(title="what\u0000is")]},
}


def _identity(failed: dict[str, Any]) -> dict[str, Any]:
    """The original event of a failed envelope (kept as is, or as raw text when it could not be re-encoded)."""
    return orjson.loads(failed["raw"]) if "raw" in failed else failed


@pytest.mark.parametrize("name", list(POISONS))
def test_a_poison_event_between_two_valid_ones_is_failed_and_the_rest_aggregated(app, name):
    load(app, course(C, [A]))
    poison = _attempt("u-poison", "at-poison", **POISONS[name])
    # The standard library encodes nesting deeper than orjson accepts.
    publish(app, "assess", [_attempt("u-1", "at-1"), json.dumps(poison), _attempt("u-2", "at-2")])

    worker = drain(app, ["assessment-aggregator"])  # returns normally: the job did not stop

    failed = topic_events(app, "telemetry.assess.failed")
    if not failed and name.startswith("NUL") and app.store.backend == "sqlite":
        # SQLite stores NUL characters: only the parser's input bounds would refuse the event.
        assert {r["user_id"] for r in attempts(app)} >= {"u-1", "u-2"}
        return
    assert [r["user_id"] for r in attempts(app)] == ["u-1", "u-2"]
    assert {r["user_id"] for r in activity_rows(app, activity_id=C)} == {"u-1", "u-2"}
    [envelope] = failed
    assert _identity(envelope)["attemptId"] == "at-poison"
    meta = envelope["metadata"]
    assert meta["src"] == "AssessmentAggregator"
    assert isinstance(meta["validation_error"], str) and meta["validation_error"]
    assert len(meta["validation_error"]) <= 500
    assert worker.consumers[0].counters["failed"] == 1


def test_the_worker_command_drains_a_poison_and_exits_0(app, tmp_path, monkeypatch):
    from learnagg.entrypoints.cli import main

    load(app, course(C, [A]))
    publish(
        app, "assess", [_attempt("u-1", "at-1"), _attempt("u-p", "at-p", assessmentTs=2**63), _attempt("u-2", "a2")]
    )
    bus_env(app, monkeypatch)
    monkeypatch.setenv("LEARNAGG_WORKER__RETRY_DELAY", "0")
    assert main(["worker", "--until-idle", "--job", "assessment-aggregator"]) == 0
    assert [r["user_id"] for r in attempts(app)] == ["u-1", "u-2"]
    assert len(topic_events(app, "telemetry.assess.failed")) == 1


# --- the isolation machinery, with a job built for the test ---------------------------------------------------


def _parse(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict) or "n" not in raw:
        raise InvalidEvent("no n")
    if raw.get("parse") == "recursion":
        raise RecursionError("maximum recursion depth exceeded")
    return raw


class _MarkedHandler:
    """Writes each event's ``n`` to the output topic; fails in the way an event's ``fail`` field names."""

    def __init__(self, app: bootstrap.App) -> None:
        self.app = app
        self.calls = 0

    def handle(self, conn: Connection, batch: Sequence[Incoming[dict[str, Any]]]) -> BatchResult:
        self.calls += 1
        result = BatchResult()
        for item in batch:
            n = item.message["n"]
            # The write comes first, so a failing event leaves something to roll back.
            self.app.log.append(conn, self.app.topics.name("test.out"), [(KEY, str(n))], 0)
            fail = item.message.get("fail")
            if fail == "value":
                raise ValueError(f"bad event {n}\nsecond line")
            if fail == "bigint":  # a real database error that aborts the transaction on PostgreSQL
                conn.execute(text("UPDATE consumer_offset SET seq = :v WHERE consumer = 'nobody'"), {"v": 2**63})
            if fail == "long":
                raise KeyError("x" * 2000)
            if fail == "reported":
                result.failures.append((item, "reported by the handler"))
                continue
            result.counters["success"] += 1
            result.changed_users.add(f"u{n}")
        return result


KEY = "one-learner"  # the test job's input and output: one partition, so one order on every bus
SPEC = JobSpec(
    name="marked-test-job",
    input_suffix="test.in",
    failed_suffix="test.failed",
    src="MarkedTestJob",
    parse=_parse,
    counter_names={},
    make_handler=_MarkedHandler,
)


def _consumer(app: bootstrap.App, batch_size: int = 100) -> JobConsumer:
    """The job as `bootstrap` builds one: its handler emits through the outbox, relayed after each commit."""
    emitter = OutboxLog(app.log, Outbox(app.store.dialect))
    return JobConsumer(
        spec=SPEC,
        handler=_MarkedHandler(replace(app, log=emitter)),
        emitter=emitter,
        store=app.store,
        log_=app.log,
        topics=app.topics,
        clock=app.clock,
        batch_size=batch_size,
        retry_delay=0,
    )


def _outputs(app: bootstrap.App) -> list[int]:
    return [int(e) for e in topic_events(app, "dev.test.out")]


def _failed(app: bootstrap.App) -> dict[int | str, str]:
    """Reasons by ``n``, or by the raw text of a message that is not JSON."""
    out: dict[int | str, str] = {}
    for envelope in topic_events(app, "dev.test.failed"):
        key = envelope["raw"] if envelope.get("raw") == "{not json" else _identity(envelope)["n"]
        out[key] = envelope["metadata"]["validation_error"]
    return out


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_failing_events_are_isolated_and_the_others_applied_in_order(app, batch_size):
    events: list[Any] = [{"n": n} for n in range(12)]
    events[2]["fail"] = "value"
    events[3]["fail"] = "bigint"
    events[7]["fail"] = "reported"
    events[8]["fail"] = "long"
    events[10]["parse"] = "recursion"
    events.insert(5, "{not json")
    publish(app, "dev.test.in", events, key=KEY)
    consumer = _consumer(app, batch_size)

    Worker([consumer], max_retries=0).start(until_idle=True)

    assert _outputs(app) == [0, 1, 4, 5, 6, 7, 9, 11]  # 7 is a failure the handler reports itself
    reasons = _failed(app)
    assert reasons.pop("{not json") == "event is not a JSON object"
    assert sorted(reasons) == [2, 3, 7, 8, 10]  # type: ignore[type-var]
    assert reasons[2] == "internal error: ValueError: bad event 2"
    assert reasons[3].startswith("internal error: ")
    assert reasons[7] == "reported by the handler"
    assert reasons[8].startswith("internal error: KeyError: 'xxx") and len(reasons[8]) == 500
    assert reasons[10] == "internal error: RecursionError: maximum recursion depth exceeded"
    assert [e["metadata"]["src"] for e in topic_events(app, "dev.test.failed")] == ["MarkedTestJob"] * 6
    assert consumer.counters["success"] == 7 and consumer.counters["failed"] == 6
    assert consumer.counters["poison"] == 4
    with app.store.read() as conn:
        assert app.log.lag(conn, SPEC.name, "dev.test.in") == 0


def test_a_batch_without_poison_is_handled_in_one_call(app):
    publish(app, "dev.test.in", [{"n": n} for n in range(10)], key=KEY)
    consumer = _consumer(app)
    assert consumer.run_once() == 10
    assert consumer.handler.calls == 1  # type: ignore[attr-defined]
    assert _outputs(app) == list(range(10))


def test_isolation_reports_changed_users_of_applied_events_only(app):
    seen: list[set[str]] = []
    publish(app, "dev.test.in", [{"n": 1}, {"n": 2, "fail": "value"}, {"n": 3}], key=KEY)
    consumer = _consumer(app)
    consumer.after_commit = lambda result: seen.append(set(result.changed_users))
    consumer.run_once()
    assert seen == [{"u1", "u3"}]


def test_a_failed_envelope_that_cannot_be_encoded_keeps_the_raw_text(app):
    deep = {"n": 1, "fail": "value", "deep": _nested(400)}
    publish(app, "dev.test.in", [json.dumps(deep), {"n": 2}], key=KEY)
    _consumer(app).run_once()
    [envelope] = topic_events(app, "dev.test.failed")
    assert orjson.loads(envelope["raw"]) == deep
    assert envelope["metadata"]["validation_error"] == "internal error: ValueError: bad event 1"
    assert _outputs(app) == [2]
