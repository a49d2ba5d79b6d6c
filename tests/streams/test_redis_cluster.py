"""The Redis Streams bus on a 3-node Redis Cluster: the same results as the embedded log, streams spread over nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from learnagg import bootstrap
from learnagg.adapters.bus.redis_streams import RedisStreamsLog, encode_id, stream_name
from learnagg.bench.redisserver import RedisCluster
from learnagg.entrypoints.api.app import create_app
from learnagg.entrypoints.cli import main
from learnagg.errors import ConfigurationError
from learnagg.settings import Settings
from tests.conftest import T
from tests.entrypoints.api.support import Api, ok
from tests.entrypoints.api.test_content_state import add_batch
from tests.streams.test_partitions import _events
from tests.streams.test_redis_bus import reference  # noqa: F401  (a fixture)
from tests.streams.test_worker_crash import _comparable
from tests.support import TestClock, course, drain, load, publish, topic_events

JOB = "assessment-aggregator"


@pytest.fixture
def cluster_app(database_url: str, redis_cluster: RedisCluster, clock: TestClock) -> Iterator[bootstrap.App]:
    """The application on the test database (8 partitions per topic) with its bus on the (flushed) cluster."""
    application = bootstrap.build(Settings(database_url=database_url, bus_url=redis_cluster.url()), clock=clock)
    _log(application).client.flushall()
    with application.store.write() as conn:
        _log(application).store_default_partitions(conn, 8)
    yield application
    application.close()


def _log(app: bootstrap.App) -> RedisStreamsLog:
    assert isinstance(app.log, RedisStreamsLog)
    return app.log


def test_the_jobs_drain_on_a_cluster_to_the_embedded_logs_results(cluster_app, reference) -> None:  # noqa: F811
    events = [*_events(150), "{not json"]
    for application in (cluster_app, reference):
        publish(application, "assess", events)
        drain(application)
    assert _comparable(cluster_app) == _comparable(reference)
    assert _failed(cluster_app) == _failed(reference)
    log_ = _log(cluster_app)
    topic = cluster_app.topics.assess
    with cluster_app.store.read() as conn:
        assert log_.lag(conn, JOB, topic) == 0
        partitions = log_.partitions(conn, topic)
    nodes = {log_.client.get_node_from_key(stream_name(topic, p)).name for p in range(partitions)}  # type: ignore[union-attr]
    filled = [p for p in range(partitions) if log_.client.xlen(stream_name(topic, p))]
    assert partitions == 8 and len(filled) == 8 and len(nodes) >= 2  # one topic's streams land on several nodes


def _failed(app: bootstrap.App) -> list[dict]:
    """Failed envelopes without ``failed_id`` (a stream id on Redis, a seq on the embedded log)."""
    events = topic_events(app, "telemetry.assess.failed")
    for event in events:
        assert event["metadata"].pop("failed_id").startswith(f"{JOB}:")
    return events


def test_trimming_on_a_cluster_keeps_every_unconsumed_entry(cluster_app) -> None:
    log_ = _log(cluster_app)
    topic = cluster_app.topics.assess
    publish(cluster_app, "assess", _events(60))
    drain(cluster_app, [JOB])
    publish(cluster_app, "assess", _events(30))
    with cluster_app.store.read() as conn:
        before = log_.lags(conn, JOB, topic)
        assert log_.trim(conn) > 0
        assert log_.lags(conn, JOB, topic) == before
        for partition in range(log_.partitions(conn, topic)):
            position = log_.offset(conn, JOB, topic, partition=partition)
            kept = log_.client.xrange(stream_name(topic, partition))
            assert all(encode_id(entry_id) >= position for entry_id, _ in kept)
    drain(cluster_app, [JOB])
    with cluster_app.store.read() as conn:
        assert log_.lag(conn, JOB, topic) == 0


def test_cli_and_api_publishes_reach_the_cluster(cluster_app, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", cluster_app.settings.database_url)
    monkeypatch.setenv("LEARNAGG_BUS_URL", cluster_app.settings.bus_url)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in _events(20)))
    assert main(["publish", "assess", str(path)]) == 0
    assert len(topic_events(cluster_app, "assess")) == 20

    load(cluster_app, course("do_c1", ["do_a1"]))
    add_batch(cluster_app, "b-1", "do_c1")
    service = create_app(cluster_app)
    with TestClient(service, raise_server_exceptions=False) as client:
        api = Api(client, cluster_app, service.state.token_keys).as_user("u-1")
        attempt = {
            "assessmentTs": T - 5,
            "courseId": "do_c1",
            "batchId": "b-1",
            "contentId": "do_a1",
            "attemptId": "at-1",
            "events": [{"eid": "ASSESS", "ets": 10, "edata": {"score": 1, "item": {"id": "q1", "maxscore": 1}}}],
        }
        result = ok(api.post("/v1/assess/save", {"assessments": [attempt]}))
    assert result["assessments"][0]["status"] == "SUBMITTED"
    published = [e for e in topic_events(cluster_app, "assess") if e.get("courseId") == "do_c1"]
    assert [e["userId"] for e in published] == ["u-1"]


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://", "redis+cluster://127.0.0.1:7000/3", "redis+cluster://127.0.0.1:7000,nohost"],
)
def test_a_bad_cluster_url_is_refused(database_url, url) -> None:
    with pytest.raises(ConfigurationError, match="LEARNAGG_BUS_URL"):
        bootstrap.build(Settings(database_url=database_url, bus_url=url))
