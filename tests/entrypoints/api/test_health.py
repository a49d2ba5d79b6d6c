"""Health (docs/operations.md "Health"): live, ready (store, bus, Redis, every job of the process); request ids."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from learnagg import bootstrap
from learnagg.entrypoints.api.app import create_app
from learnagg.settings import LogSettings, Settings
from learnagg.streams.handler import BatchResult, Handler, Incoming
from learnagg.streams.loop import LoopService
from learnagg.streams.supervisor import JobSupervisor
from tests.entrypoints.api.support import Api, ok
from tests.support import attempts, course, golden_event, load, publish
from tests.test_logs import configured, json_lines

COURSE = "do_2128415652377067521125"
CONTENT = "do_212686723743318016173"
JOB = "assessment-aggregator"


def test_live_and_ready_answer_ok_when_everything_answers(api: Api) -> None:
    live = api.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok", "checks": {}})
    ready = api.get("/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "checks": {"store": "ok", "bus": "ok"}})


def test_health_keeps_its_envelope_and_means_ready(api: Api) -> None:
    result = ok(api.get("/health"))
    assert result == {"healthy": True, "checks": [{"name": "store", "healthy": True}, {"name": "log", "healthy": True}]}


def test_request_id_is_answered_kept_when_plain_and_replaced_when_hostile(api: Api) -> None:
    fresh = api.get("/health/live").headers["x-request-id"]
    assert len(fresh) == 32 and int(fresh, 16) >= 0
    assert api.get("/health/live", headers={"X-Request-ID": "req-42.a"}).headers["x-request-id"] == "req-42.a"
    hostile = api.get("/health/live", headers={"X-Request-ID": "a b\tc" + "x" * 200}).headers["x-request-id"]
    assert len(hostile) == 32 and " " not in hostile


# --- a job loop that dies -------------------------------------------------------------------------------------


class LoopKilled(BaseException):
    """Escapes every ``except Exception`` of the consumer loop: the loop itself dies, as with a bug in it."""


class KillOnce:
    """The job's real handler, except that its first call raises :class:`LoopKilled`."""

    def __init__(self, real: Handler[Any], kills: list[int]) -> None:
        self.real = real
        self.kills = kills

    def handle(self, conn: Connection, batch: Sequence[Incoming[Any]]) -> BatchResult:
        if not self.kills:
            self.kills.append(1)
            raise LoopKilled("injected: the loop dies")
        return self.real.handle(conn, batch)


def _factories(app: bootstrap.App, kills: list[int]) -> dict[str, Callable[[], LoopService]]:
    def assessment() -> LoopService:
        worker = bootstrap.build_worker(app, [JOB], own_process=False)
        [consumer] = worker.consumers
        consumer.handler = KillOnce(consumer.handler, kills)
        return worker

    factories: dict[str, Callable[[], LoopService]] = {JOB: assessment}
    factories["activity-aggregate-updater"] = lambda: bootstrap.build_worker(
        app, ["activity-aggregate-updater"], own_process=False
    )
    return factories


@pytest.fixture
def fast(settings: Settings) -> Settings:
    settings.worker.poll_interval = 0.02
    return settings


def _wait_for(client: TestClient, path: str, status: int, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        if response.status_code == status:
            return response
        assert time.monotonic() < deadline, f"{path} stayed {response.status_code}: {response.text}"
        time.sleep(0.01)


def test_a_job_loop_killed_in_its_handler_fails_readiness_naming_it_until_restarted(
    fast: Settings, app: bootstrap.App, capsys: pytest.CaptureFixture[str]
) -> None:
    load(app, course(COURSE, [CONTENT]))
    publish(app, "assess", [golden_event()])
    kills: list[int] = []
    supervisor = JobSupervisor(_factories(app, kills), restart_delay=1.5, restart_max_delay=3.0)
    with configured(LogSettings(format="json")), TestClient(create_app(app, supervisor)) as client:
        supervisor.start()
        try:
            failing = _wait_for(client, "/health/ready", 503).json()
            assert failing["status"] == "failing"
            assert failing["checks"][f"job:{JOB}"].startswith("down: LoopKilled: injected: the loop dies; restarting")
            assert failing["checks"]["job:activity-aggregate-updater"] == "ok"
            assert failing["checks"]["store"] == failing["checks"]["bus"] == "ok"
            legacy = client.get("/health")
            assert legacy.status_code == 503
            [entry] = [c for c in legacy.json()["result"]["checks"] if c["name"] == f"job:{JOB}"]
            assert entry["healthy"] is False and entry["error"].startswith("down: LoopKilled")

            recovered = _wait_for(client, "/health/ready", 200).json()
            assert recovered["checks"][f"job:{JOB}"] == "ok"
            assert supervisor.restarts(JOB) == 1
            # The restarted loop handles the event the dead one had rolled back.
            deadline = time.monotonic() + 20
            while not attempts(app):
                assert time.monotonic() < deadline, "the restarted job did not handle the event"
                time.sleep(0.02)
        finally:
            supervisor.stop()
            supervisor.join(10)
    assert kills == [1]
    assert attempts(app)[0]["total_score"] == 1.33
    [died] = [r for r in json_lines(capsys.readouterr().err) if r["msg"].startswith("job loop died")]
    assert (died["level"], died["job"], died["logger"]) == ("ERROR", JOB, "learnagg.streams.supervisor")
    assert "Traceback" in died["exc"] and "LoopKilled: injected: the loop dies" in died["exc"]
    assert supervisor.status() == {JOB: "stopped", "activity-aggregate-updater": "stopped"}


# --- the store or Redis down ----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def unreachable(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[bootstrap.App]:
    """An App whose database cannot be opened (a missing folder, a closed port)."""
    url = f"sqlite:///{tmp_path}/missing/x.db" if request.param == "sqlite" else "postgresql+psycopg://u@127.0.0.1:9/x"
    app = bootstrap.build(Settings(database_url=url, auth={"hs256_secret": "s" * 32}))  # type: ignore[arg-type]
    yield app
    app.close()


def test_store_down_fails_readiness_but_not_liveness(unreachable: bootstrap.App) -> None:
    with TestClient(create_app(unreachable), raise_server_exceptions=False) as client:
        assert client.get("/health/live").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "failing"
        assert body["checks"]["store"].startswith("unavailable: ") and body["checks"]["bus"].startswith("unavailable")
        assert client.get("/health").status_code == 503


def test_redis_down_fails_readiness_when_configured(settings: Settings, app: bootstrap.App) -> None:
    settings.redis_url = "redis://127.0.0.1:9/0"
    with TestClient(create_app(app), raise_server_exceptions=False) as client:
        body = client.get("/health/ready").json()
    assert body["status"] == "failing" and body["checks"]["store"] == "ok"
    assert body["checks"]["redis"].startswith("unavailable: ")


def test_redis_up_is_ready(settings: Settings, app: bootstrap.App, redis_server: Any) -> None:
    settings.redis_url = redis_server.url()
    with TestClient(create_app(app), raise_server_exceptions=False) as client:
        ready = client.get("/health/ready")
    assert (ready.status_code, ready.json()["checks"]["redis"]) == (200, "ok")


@pytest.mark.parametrize("reachable", [True, False])
def test_the_bus_check_pings_redis_streams(settings: Settings, redis_server: Any, reachable: bool) -> None:
    bus_url = redis_server.url() if reachable else "redis://127.0.0.1:9/0"
    app = bootstrap.build(settings.model_copy(update={"bus_url": bus_url}))
    try:
        with TestClient(create_app(app), raise_server_exceptions=False) as client:
            started = time.monotonic()
            ready = client.get("/health/ready")
            elapsed = time.monotonic() - started
    finally:
        app.close()
    checks = ready.json()["checks"]
    assert checks["store"] == "ok" and elapsed < 5
    if reachable:
        assert (ready.status_code, checks["bus"]) == (200, "ok")
    else:
        assert ready.status_code == 503 and checks["bus"].startswith("unavailable: "), checks
