"""`learnagg bus repartition`: a used topic gets a new partition count, safely, on the embedded log and on Redis."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from learnagg import bootstrap
from learnagg.adapters.bus import leases
from learnagg.adapters.bus.redis_streams import connect
from learnagg.adapters.store import schema
from learnagg.adapters.store.tables import bus_topic
from learnagg.entrypoints.cli import main
from learnagg.settings import Settings
from learnagg.streams.ownership import wall_ms
from tests.streams.test_partitions import _events
from tests.streams.test_worker_crash import _comparable
from tests.support import TestClock, drain, publish

JOB = "assessment-aggregator"
TOPIC = "dev.telemetry.assess"
_dbs = itertools.cycle(range(1, 16))


@pytest.fixture(params=["db", "redis"])
def bus_url(request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The embedded log, or a flushed Redis database; the CLI run in-process reads both URLs from the environment."""
    url = "db"
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url(next(_dbs))
        client = connect(url)
        client.flushdb()
        client.close()
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    monkeypatch.setenv("LEARNAGG_BUS_URL", url)
    return url


def _app(database_url: str, bus_url: str) -> bootstrap.App:
    """A new application (a running process keeps the partition count it read first)."""
    return bootstrap.build(Settings(database_url=database_url, bus_url=bus_url), clock=TestClock(1_700_000_000_000))


@pytest.fixture
def apps(database_url: str, bus_url: str) -> Iterator[list[bootstrap.App]]:
    """Applications built by the test, closed at its end."""
    built: list[bootstrap.App] = []
    yield built
    for application in built:
        application.close()


def _count(app: bootstrap.App) -> int | None:
    with app.store.read() as conn:
        return conn.execute(select(bus_topic.c.partitions).where(bus_topic.c.topic == TOPIC)).scalar_one_or_none()


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()  # (clear what came before the command: ``capsys.readouterr()``)
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_repartition_one_to_eight_then_publish_and_drain_gives_the_same_results(
    database_url,
    bus_url,
    apps,
    capsys,
    tmp_path,
) -> None:
    first, second = _events(120), [{**e, "assessmentTs": e["assessmentTs"] + 10_000} for e in _events(160)]
    apps.append(before := _app(database_url, bus_url))
    publish(before, "assess", first)
    drain(before)
    assert _count(before) == 1

    assert main(["bus", "repartition", "assess", "--partitions", "8", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"would change {TOPIC}: 1 -> 8 partition(s); partition(s) 1-7 start")
    assert _count(before) == 1
    assert main(["bus", "repartition", "assess", "--partitions", "8"]) == 0
    assert capsys.readouterr().out.startswith(f"{TOPIC}: 1 -> 8 partition(s)")

    apps.append(after := _app(database_url, bus_url))
    publish(after, "assess", second)
    handled = bootstrap.build_worker(after, max_retries=0).start(until_idle=True)
    with after.store.read() as conn:
        lags = after.log.lags(conn, JOB, TOPIC)  # type: ignore[attr-defined]
        spread = {e.partition for e in after.log.read(conn, TOPIC)}  # type: ignore[attr-defined]
    assert _count(after) == 8 and len(lags) == 8 and sum(lags.values()) == 0 and len(spread) >= 4

    apps.append(reference := _app(f"sqlite:///{tmp_path}/reference.db", "db"))
    schema.upgrade(reference.store)
    for events in (first, second):  # the reference: the embedded log, one partition throughout
        publish(reference, "assess", events)
        expected = bootstrap.build_worker(reference, max_retries=0).start(until_idle=True)
    assert handled == expected  # every new event read once, none of the old ones again
    kept = 3 if bus_url == "db" else 2  # on Redis the certificate requests already read are trimmed away
    assert _comparable(after)[:kept] == _comparable(reference)[:kept]


def test_refused_while_a_job_has_unread_events_or_a_worker_holds_a_lease(database_url, bus_url, apps, capsys) -> None:
    apps.append(app := _app(database_url, bus_url))
    publish(app, "assess", _events(10))
    capsys.readouterr()
    assert main(["bus", "repartition", "assess", "--partitions", "8"]) == 1
    assert _error(capsys) == (f"learnagg: error: refused: {JOB} has 10 unread event(s) ({TOPIC}; wait, or use --force)")
    assert main(["bus", "repartition", "assess", "--partitions", "8", "--dry-run"]) == 1
    assert "10 unread event(s)" in _error(capsys)
    assert _count(app) == 1

    drain(app)
    capsys.readouterr()
    with app.store.write() as conn:
        assert leases.acquire(app.store.dialect, conn, JOB, TOPIC, 0, "host:1", wall_ms(), 60_000)
    assert main(["bus", "repartition", "assess", "--partitions", "8"]) == 1
    assert _error(capsys) == (
        f"learnagg: error: refused: host:1 holds the lease of {JOB} partition 0 ({TOPIC}; wait, or use --force)"
    )
    assert main(["bus", "repartition", "assess", "--partitions", "4", "--force"]) == 0
    assert "forced past: host:1 holds the lease" in capsys.readouterr().err
    assert _count(app) == 4


def test_an_unreachable_redis_bus_is_one_line(database_url, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    for url in ("redis://127.0.0.1:9/0", "redis+cluster://127.0.0.1:9"):
        monkeypatch.setenv("LEARNAGG_BUS_URL", url)
        assert main(["bus", "repartition", "assess", "--partitions", "2"]) == 1
        assert _error(capsys).startswith("learnagg: error: Redis unavailable: ")
