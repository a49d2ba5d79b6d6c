"""``GET /metrics`` over HTTP (docs/operations.md "Metrics"): job counters and lag, HTTP requests per route template."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from learnagg import bootstrap
from tests.entrypoints.api.support import Api
from tests.support import course, drain, golden_event, load, publish

COURSE = "do_2128415652377067521125"
CONTENT = "do_212686723743318016173"
AGG = "assessment-aggregator"
CERT = "certificate-pre-processor"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: Api) -> Samples:
    """GET /metrics (no token needed) and parse it: {(sample name, sorted labels): value}."""
    response = api.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def requests(samples: Samples, route: str, status: str) -> float:
    return sample(samples, "learnagg_http_requests_total", route=route, status=status) or 0.0


def test_job_counters_and_lag_after_a_worker_drains_known_events(api: Api, app: bootstrap.App) -> None:
    load(app, course(COURSE, [CONTENT]))
    publish(app, "assess", [golden_event(), "not json"])
    before = scrape(api)
    assert sample(before, "learnagg_job_lag_events", job=AGG, partition="0") == 2
    assert sample(before, "learnagg_job_lag_events", job=CERT, partition="0") == 0
    assert sample(before, "learnagg_job_events_total", job=AGG, counter="batch-success-count") is None

    drain(app)

    after = scrape(api)
    expected = {
        (AGG, "batch-success-count"): 1,
        (AGG, "failed-event-count"): 1,
        (AGG, "certificate-issue-event-count"): 1,
        (AGG, "skipped-event-count"): 0,
        (AGG, "retry"): 0,
        (CERT, "total-events-count"): 1,
        (CERT, "skipped-events-count"): 1,
        (CERT, "generate-certificate-events-count"): 0,
    }
    for (job, counter), value in expected.items():
        assert sample(after, "learnagg_job_events_total", job=job, counter=counter) == value, (job, counter)
    for job in (AGG, CERT, "activity-aggregate-updater"):
        assert sample(after, "learnagg_job_lag_events", job=job, partition="0") == 0, job
        assert sample(after, "learnagg_job_up", job=job) == 0, job  # the drain is over
    assert sample(after, "learnagg_job_batch_seconds_count", job=AGG) == 1


def test_http_requests_and_durations_are_counted_per_route_template_and_status(api: Api) -> None:
    before = scrape(api)
    user = api.as_user("u-1")
    for batch in ("b-1", "b-2", "b-3"):  # three ids, one template
        assert user.get(f"/v1/course/batch/read/{batch}").status_code == 404
    assert user.post("/v1/group/activity/agg", {"groupId": "g"}).status_code == 400
    assert api.post("/v1/group/activity/agg", {"groupId": "g"}).status_code == 401
    assert user.get("/v1/group/activity/agg").status_code == 405
    assert user.get("/no/such/path/123").status_code == 404
    after = scrape(api)

    def delta(route: str, status: str) -> float:
        return requests(after, route, status) - requests(before, route, status)

    assert delta("/v1/course/batch/read/{batchId}", "404") == 3
    assert delta("/v1/group/activity/agg", "400") == 1
    assert delta("/v1/group/activity/agg", "401") == 1
    assert delta("/v1/group/activity/agg", "405") == 1
    assert delta("unmatched", "404") == 1
    assert delta("/metrics", "200") == 1  # the first scrape, counted once answered
    assert not any(
        "b-1" in dict(labels).get("route", "") or "/no/such" in dict(labels).get("route", "") for _, labels in after
    )
    timed = "learnagg_http_request_seconds_count"
    batch_read = "/v1/course/batch/read/{batchId}"
    assert (sample(after, timed, route=batch_read) or 0) - (sample(before, timed, route=batch_read) or 0) == 3
    assert sample(after, "learnagg_http_request_seconds_bucket", route="/v1/group/activity/agg", le="+Inf") == 3


def test_handlers_that_raise_are_counted_with_the_500_they_answer(api: Api) -> None:
    service: FastAPI = api.client.app  # type: ignore[assignment]

    def unexpected() -> None:
        raise RuntimeError("boom")

    def database() -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    service.add_api_route("/test/unexpected/{n}", unexpected)
    service.add_api_route("/test/database", database)
    assert api.client.get("/test/unexpected/1").status_code == 500
    assert api.client.get("/test/unexpected/2").status_code == 500
    assert api.client.get("/test/database").status_code == 500
    after = scrape(api)
    assert requests(after, "/test/unexpected/{n}", "500") == 2
    assert requests(after, "/test/database", "500") == 1


def test_metrics_route_is_not_part_of_the_api_schema(api: Api) -> None:
    assert "/metrics" not in api.client.get("/openapi.json").json()["paths"]
