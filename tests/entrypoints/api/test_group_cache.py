"""The optional group-aggregate cache on a real Redis (SPEC §5.4 step 3, S6, §7 #8)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from learnagg import bootstrap
from learnagg.bench.redisserver import RedisServer
from learnagg.entrypoints.api.app import create_app
from learnagg.settings import GroupAggCacheSettings, GroupAggSettings, Settings
from tests.entrypoints.api.group_data import add_row, scored, spec_example
from tests.entrypoints.api.support import Api, ok
from tests.support import drain, publish
from tests.support import golden_event as golden

ACTIVITY = "/v1/group/activity/agg"
GROUP = "/v1/group/agg"
REQUEST = {"groupId": "g-1", "activityId": "do_c1", "activityType": "Course"}
KEY = "g-1:do_c1:Course:activity-agg"
_databases = itertools.count(1)


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A Redis database of its own for each test (16 per server, reused after a flush)."""
    url = redis_server.url(next(_databases) % 16)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(database_url: str, redis_db: redis.Redis) -> Settings:
    kwargs = redis_db.connection_pool.connection_kwargs
    url = f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"
    cache = GroupAggSettings(cache=GroupAggCacheSettings(enabled=True, ttl_seconds=3600))
    return Settings(database_url=database_url, redis_url=url, group_agg=cache)


def test_a_hit_returns_the_cached_result_until_the_data_changes_through_a_job(api: Api, redis_db: redis.Redis) -> None:
    spec_example(api.app)
    first = ok(api.as_user("u-1").post(ACTIVITY, REQUEST))
    assert redis_db.exists(KEY) and 0 < redis_db.ttl(KEY) <= 3600
    # A write behind the service's back is not seen: the cached result answers.
    add_row(api.app, "u-2", "b-2", **scored("do_a1", 2.0, 2.0))
    assert ok(api.as_user("u-1").post(ACTIVITY, REQUEST)) == first
    # The assessment aggregator changing u-1's aggregates drops every key of u-1's groups (S6).
    event = {**golden(), "userId": "u-1", "courseId": "do_c1", "batchId": "b-1", "contentId": "do_a1"}
    publish(api.app, "assess", [event])
    drain(api.app)
    assert not redis_db.exists(KEY)
    fresh = ok(api.as_user("u-1").post(ACTIVITY, REQUEST))
    assert [(m["userId"], m["batchId"]) for m in fresh["members"]] == [("u-1", "b-1"), ("u-2", "b-1"), ("u-2", "b-2")]


def test_include_all_members_has_its_own_key_and_empty_results_are_not_cached(api: Api, redis_db: redis.Redis) -> None:
    spec_example(api.app)
    ok(api.as_user("u-1").post(ACTIVITY, {**REQUEST, "includeAllMembers": True}))
    assert redis_db.exists(KEY + ":all") and not redis_db.exists(KEY)
    ok(api.as_user("u-1").post(ACTIVITY, {**REQUEST, "activityId": "do_none"}))
    assert not redis_db.exists("g-1:do_none:Course:activity-agg")


def test_authorisation_is_checked_before_the_cache(api: Api) -> None:
    spec_example(api.app)
    ok(api.as_user("u-1").post(ACTIVITY, REQUEST))
    body = api.as_user("stranger").post(ACTIVITY, REQUEST).json()
    assert body["params"]["err"] == "UNAUTHORIZED_USER"


def test_a_membership_change_drops_the_group_keys(api: Api, redis_db: redis.Redis) -> None:
    spec_example(api.app)
    ok(api.as_user("u-1").post(ACTIVITY, REQUEST))
    ok(api.as_user("u-1").post(GROUP, {"groupId": "g-1"}))
    assert len(redis_db.keys("g-1:*")) == 2
    redis_db.set("g-10:other", b"kept")  # another group whose id starts the same way
    ok(api.as_admin().patch("/v1/group/update", {"groupId": "g-1", "members": {"remove": ["u-2"]}}))
    assert redis_db.keys("g-1:*") == []
    assert redis_db.get("g-10:other") == b"kept"
    members = ok(api.as_user("u-1").post(ACTIVITY, REQUEST))["members"]
    assert [m["userId"] for m in members] == ["u-1"]


def test_group_agg_key_ignores_unknown_fields_and_a_hit_is_identical(api: Api, redis_db: redis.Redis) -> None:
    spec_example(api.app)
    first = ok(api.as_user("u-1").post(GROUP, {"groupId": "g-1", "fields": ["enrolmentCount"]}))
    again = ok(api.as_user("u-1").post(GROUP, {"groupId": "g-1", "fields": ["enrolmentCount"], "extra": 1}))
    assert again == first
    assert len(redis_db.keys("g-1:group-agg:*")) == 1


def test_an_unreachable_redis_is_ignored(database_url: str, clock) -> None:
    dead = Settings(
        database_url=database_url,
        redis_url="redis://127.0.0.1:1/0",
        group_agg=GroupAggSettings(cache=GroupAggCacheSettings(enabled=True)),
    )
    app = bootstrap.build(dead, clock=clock)
    try:
        spec_example(app)
        service = create_app(app)
        with TestClient(service, raise_server_exceptions=False) as client:
            api = Api(client, app, service.state.token_keys)
            assert len(ok(api.as_user("u-1").post(ACTIVITY, REQUEST))["members"]) == 2
            ok(api.as_admin().patch("/v1/group/update", {"groupId": "g-1", "members": {"remove": ["u-2"]}}))
            publish(
                app,
                "assess",
                [{**golden(), "userId": "u-1", "courseId": "do_c1", "batchId": "b-1", "contentId": "do_a1"}],
            )
            drain(app)
    finally:
        app.close()
