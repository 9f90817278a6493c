"""GET /metrics: Prometheus text, moved by exactly what a flow did, a latency series for every route."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from backplane.access.openapi import api_routes
from backplane.app import create_app
from backplane.core.config import RedisSettings, Settings
from backplane.core.metrics import route_templates
from backplane.licenses.tasks import record_ended_sessions_task
from backplane.workers.health import health_app
from backplane.workers.resilience import Stores
from backplane.workers.settings import shutdown, startup
from tests.fixtures.auth import Api
from tests.fixtures.net import free_port
from tests.jobs.conftest import JobsWorker, wait_for
from tests.licenses.conftest import acquire
from tests.webhooks.conftest import Receiver, create_webhook, dispatch_and_deliver, eventually, worker_context

Samples = Counter[tuple[str, frozenset[tuple[str, str]]]]


def parse(text: str) -> Samples:
    samples: Samples = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] += sample.value
    return samples


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much the sample `name` with exactly these labels moved."""
    key = (name, frozenset(labels.items()))
    return after[key] - before[key]


async def test_every_route_has_a_latency_series_from_the_start(app: FastAPI, client: httpx.AsyncClient) -> None:
    samples = await scrape(client)
    series = {
        (dict(labels)["route"], dict(labels)["method"])
        for name, labels in samples
        if name == "backplane_http_request_duration_seconds_count"
    }
    routes = {
        (context.path, method)
        for context in api_routes(app)
        if context.path != "/metrics"
        for method in context.original_route.methods  # type: ignore[attr-defined]
    }
    assert len(routes) > 70
    assert routes - series == set()
    # Only route templates: an id in a path never becomes a label value, and unknown paths share one.
    job, path = uuid.uuid4().hex, uuid.uuid4().hex
    await client.get(f"/v1/jobs/job_{job}")
    await client.get(f"/no/such/{path}")
    labels = {dict(labels)["route"] for name, labels in await scrape(client) if name == "backplane_http_requests_total"}
    assert "/v1/jobs/{job_id}" in labels and "unmatched" in labels
    assert not any(job in label or path in label for label in labels)


async def test_metrics_are_off_the_documented_surfaces(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert "/metrics" not in app.openapi()["paths"]
    before = await scrape(client)
    after = await scrape(client)
    own = ("route", "/metrics")
    scraped = [labels for name, labels in after if name.startswith("backplane_http") and own in labels]
    assert scraped == []
    assert moved(before, after, "backplane_http_requests_total", route="/metrics", method="GET", status="200") == 0


async def test_with_metrics_port_set_the_api_port_has_no_metrics(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"metrics_port": free_port()}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limits_enabled": True})


async def test_seat_operations_count_by_outcome(api: Api, client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await api.register("seats-metrics@example.com")
    license_ = await api.issue_license(owner, seats=1)
    key = license_["key_string"]
    before = await scrape(client)
    first = await acquire(owner, key, "machine-a")
    assert first.status_code == 200, first.text
    session_id = first.json()["session_id"]
    assert (await acquire(owner, key, "machine-a")).status_code == 200  # the same machine: its seat back
    assert (await acquire(owner, key, "machine-b")).status_code == 409
    beat = f"/api/v1/licenses/sessions/{session_id}/heartbeat/"
    assert [(await client.patch(beat, headers=owner.headers)).status_code for _ in range(3)] == [200] * 3
    unknown = f"/api/v1/licenses/sessions/{uuid.uuid4()}/heartbeat/"
    assert (await client.patch(unknown, headers=owner.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/licenses/sessions/{session_id}/", headers=owner.headers)).status_code == 200
    after = await scrape(client)

    name = "backplane_seat_operations_total"
    seats = {
        (operation, outcome): moved(before, after, name, operation=operation, outcome=outcome)
        for operation, outcome in [
            ("acquire", "acquired"),
            ("acquire", "resumed"),
            ("acquire", "no_seat"),
            ("heartbeat", "ok"),
            ("heartbeat", "not_found"),
            ("release", "ok"),
        ]
    }
    assert seats == {
        ("acquire", "acquired"): 1,
        ("acquire", "resumed"): 1,
        ("acquire", "no_seat"): 1,
        ("heartbeat", "ok"): 3,
        ("heartbeat", "not_found"): 1,
        ("release", "ok"): 1,
    }
    assert moved(before, after, "backplane_rate_limit_decisions_total", category="heartbeat", decision="allowed") == 4
    assert moved(before, after, "backplane_rate_limit_decisions_total", category="license", decision="allowed") == 4
    route = "/api/v1/licenses/sessions/{session_id}/heartbeat/"
    http = {
        status: moved(before, after, "backplane_http_requests_total", route=route, method="PATCH", status=status)
        for status in ("200", "404")
    }
    assert http == {"200": 3, "404": 1}
    assert moved(before, after, "backplane_http_request_duration_seconds_count", route=route, method="PATCH") == 4
    bucket = "backplane_http_request_duration_seconds_bucket"
    assert moved(before, after, bucket, route=route, method="PATCH", le="+Inf") == 4


async def test_a_refused_rate_limit_is_counted(api: Api, client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await api.register("limited-metrics@example.com")
    license_ = await api.issue_license(owner, seats=1)
    session_id = (await acquire(owner, license_["key_string"], "machine-a")).json()["session_id"]
    before = await scrape(client)
    beat = f"/api/v1/licenses/sessions/{session_id}/heartbeat/"
    statuses = [(await client.patch(beat, headers=owner.headers)).status_code for _ in range(25)]
    after = await scrape(client)
    assert statuses.count(429) > 0
    assert moved(before, after, "backplane_rate_limit_decisions_total", category="heartbeat", decision="limited") == (
        statuses.count(429)
    )
    assert moved(before, after, "backplane_seat_operations_total", operation="heartbeat", outcome="rate_limited") == (
        statuses.count(429)
    )


async def test_an_expired_lease_and_the_live_count(api: Api, settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"seat_lease_ttl_seconds": 1}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            short = Api(http, application.state.queue, application.state.settings)
            owner = await short.register("expiring-metrics@example.com")
            license_ = await short.issue_license(owner, seats=2)
            await acquire(owner, license_["key_string"], "machine-a")
            leases = application.state.leases
            assert await leases.live_total() == 1
            before = await scrape(http)
            await asyncio.sleep(1.3)
            assert await leases.live_total() == 0
            ctx: dict[str, Any] = {"settings": application.state.settings}
            await startup(ctx)
            try:
                assert await record_ended_sessions_task(ctx) == 1
            finally:
                await shutdown(ctx)
            after = await scrape(http)
    assert moved(before, after, "backplane_seat_lease_expiries_total") == 1


async def test_pool_connections_in_use(app: FastAPI, client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    async with app.state.engine.connect():
        held = await scrape(client)
    after = await scrape(client)
    assert moved(before, held, "backplane_db_pool_connections_in_use") == 1
    assert moved(before, after, "backplane_db_pool_connections_in_use") == 0


async def test_redis_errors_are_counted(settings: Settings) -> None:
    gone = settings.model_copy(update={"redis": RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0")})
    application = create_app(gone)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            before = await scrape(http)
            refused = await http.post("/api/v1/auth/token/", json={"email": "a@example.com", "password": "x" * 12})
            after = await scrape(http)
    assert refused.status_code == 503
    assert moved(before, after, "backplane_redis_errors_total") == 1


async def test_stripe_events_refused(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    response = await client.post("/api/v1/webhooks/stripe/", content=b'{"id": "evt_1", "type": "x.y"}')
    after = await scrape(client)
    assert response.status_code == 400
    assert moved(before, after, "backplane_stripe_events_total", type="unverified", outcome="refused") == 1


async def test_jobs_and_webhooks_move_their_counters_by_what_ran(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    owner = await api.register("jobs-metrics@example.com")
    key = await owner.create_key(scopes=["read", "write", "admin"])
    by_key = {"Authorization": f"Bearer {key['key']}"}
    await create_webhook(client, by_key, receiver.url("/metrics-flow"), ["job.completed"])
    before = await scrape(client)
    attempts = settings.job_max_attempts
    worker = await JobsWorker(settings).start()
    try:
        done = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=by_key)
        assert (await wait_for(client, owner, done.json()["id"]))["status"] == "completed"
        failing = await client.post(
            "/v1/jobs", json={"agent_id": "test-fail", "input_data": {"message": "boom"}}, headers=by_key
        )
        assert (await wait_for(client, owner, failing.json()["id"]))["status"] == "dead_letter"

        async def last_run_counted() -> bool:  # counted once its outcome is committed, a moment after
            finished = await scrape(client)
            runs = moved(before, finished, "backplane_jobs_finished_total", agent="test-fail", status="failed")
            return runs == attempts

        await eventually(last_run_counted, "the last failed run counted")
    finally:
        await worker.stop()
    async with worker_context(settings) as ctx:
        await dispatch_and_deliver(ctx)
    await eventually(lambda: len(receiver.to("/metrics-flow")) == 1, "the job.completed delivery")
    after = await scrape(client)

    assert moved(before, after, "backplane_jobs_created_total", agent="test-noop") == 1
    assert moved(before, after, "backplane_jobs_created_total", agent="test-fail") == 1
    assert moved(before, after, "backplane_jobs_started_total", agent="test-noop") == 1
    assert moved(before, after, "backplane_jobs_started_total", agent="test-fail") == attempts
    assert moved(before, after, "backplane_jobs_finished_total", agent="test-noop", status="completed") == 1
    assert moved(before, after, "backplane_jobs_finished_total", agent="test-fail", status="failed") == attempts
    assert moved(before, after, "backplane_job_dead_letters_total", agent="test-fail") == 1
    assert moved(before, after, "backplane_job_queue_wait_seconds_count", agent="test-fail") == attempts
    assert moved(before, after, "backplane_job_run_seconds_count", agent="test-noop") == 1
    assert moved(before, after, "backplane_webhook_attempts_total", outcome="succeeded") == 1
    assert moved(before, after, "backplane_webhook_attempt_duration_seconds_count") == 1
    assert after[("backplane_jobs_waiting", frozenset({("plan", "free")}))] == 0


async def test_a_worker_serves_its_metrics_on_its_health_port() -> None:
    transport = httpx.ASGITransport(app=health_app(Stores(), alive=lambda: True))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"backplane_jobs_started", "backplane_webhook_attempts", "backplane_seat_leases_live"} <= names


def test_route_templates_are_the_routes_fastapi_serves(app: FastAPI) -> None:
    """`route_templates` walks the included routers instead of asking FastAPI for every route's effective
    context (which builds each dependency tree); both must name the same templates and methods."""
    served = {
        (context.path, frozenset(context.original_route.methods or ()))  # type: ignore[attr-defined]
        for context in iter_route_contexts(list(app.routes))
        if isinstance(context.original_route, Route) and context.path
    }
    walked = set(route_templates(app.routes))
    assert len(served) > 100
    assert walked == served
