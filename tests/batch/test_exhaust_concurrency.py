"""Two exhaust runners at once never produce one request twice; a resubmitted failed request runs again."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from learnagg import bootstrap
from learnagg.batch import exhaust_runner
from learnagg.batch.exhaust_runner import ExhaustRunner
from learnagg.domain import exhaust as dx
from tests.batch.test_archival import BATCH
from tests.batch.test_exhaust_runner import blobs_of, row, run, submit, world


@pytest.fixture
def produced(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, str]]:
    """Counts the report files written per (request, batch), around the real producer."""
    calls: Counter[tuple[str, str]] = Counter()
    real = exhaust_runner.produce_batch
    lock = threading.Lock()

    def counting(*args: Any, **kwargs: Any) -> Any:
        with lock:
            calls[(kwargs["request_id"], kwargs["batch_id"])] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(exhaust_runner, "produce_batch", counting)
    return calls


def test_two_runners_at_once_produce_each_of_20_requests_once(app, settings, clock, produced):
    world(app)
    ids = [submit(app, {"batchId": BATCH}, by=f"admin-{i:02d}") for i in range(20)]
    apps = [bootstrap.build(settings, clock=clock) for _ in range(2)]  # two runners, two connection pools
    summaries: list[exhaust_runner.RunSummary] = []
    start = threading.Barrier(2)

    def go(runner_app: bootstrap.App) -> None:
        start.wait()
        summaries.append(ExhaustRunner(runner_app, blobs_of(runner_app)).run())

    threads = [threading.Thread(target=go, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a in apps:
        a.close()
    assert sorted(produced) == sorted((rid, BATCH) for rid in ids)
    assert set(produced.values()) == {1}
    assert sum(s.succeeded for s in summaries) == 20
    assert all(row(app, rid)["status"] == dx.SUCCESS for rid in ids)


def test_a_runner_holding_an_old_read_does_not_run_a_request_the_other_has_failed(app, settings, clock):
    """Runner B reads the pending requests, runner A runs and fails them all, then B goes on: B runs none again."""
    world(app, attempts=False)
    ids = [submit(app, {"batchId": f"nope-{i}"}, by=f"admin-{i}") for i in range(3)]
    other = bootstrap.build(settings, clock=clock)
    first = True

    def stopping() -> bool:
        nonlocal first
        if first:  # B has read its groups: A runs everything now
            first = False
            assert ExhaustRunner(other, blobs_of(other)).run().failed == 3
        return False

    summary = ExhaustRunner(app, blobs_of(app), stopping=stopping).run()
    other.close()
    assert summary.requests == 0
    assert [row(app, rid)["iteration"] for rid in ids] == [1, 1, 1]  # one attempt each, not two


def test_a_request_failed_three_times_and_resubmitted_is_produced_on_the_next_run(app, produced):
    rid = submit(app, {"batchId": BATCH})  # the batch is not loaded yet: "No data found"
    for _ in range(3):
        assert run(app).failed == 1
    assert (row(app, rid)["status"], row(app, rid)["iteration"]) == (dx.FAILED, 3)
    assert run(app).requests == 0  # three failures: the runner leaves it alone
    world(app)  # the operator loads the data and resubmits the same request the same day
    assert submit(app, {"batchId": BATCH}) == rid
    assert (row(app, rid)["status"], row(app, rid)["iteration"]) == (dx.SUBMITTED, 0)
    assert run(app).succeeded == 1
    assert row(app, rid)["status"] == dx.SUCCESS and produced[(rid, BATCH)] == 1
