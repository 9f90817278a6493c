"""Usage reporting to Stripe meter events: `report_usage` and the `billing.report_usage` arq task."""

from __future__ import annotations

import logging

import pytest
import stripe
from arq.jobs import Job
from fastapi import FastAPI

from backplane.billing import tasks
from backplane.billing.usage import report_usage
from backplane.core.config import Settings
from tests.fixtures.stripe_fixture import stand_in_settings
from tests.fixtures.stripe_server import StripeServer
from tests.fixtures.worker import run_burst_worker

USAGE = {"customer_id": "cus_123", "event_name": "jobs_completed", "value": 3, "identifier": "job_1"}
METER_EVENTS = "/v1/billing/meter_events"


async def test_usage_is_reported_once_as_a_meter_event(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    assert await report_usage(stripe_client, livemode=True, **USAGE) is True  # type: ignore[arg-type]

    (meter_event,) = stripe_server.meter_events
    assert meter_event["event_name"] == "jobs_completed"
    assert meter_event["identifier"] == "job_1"
    assert meter_event["payload"] == {"value": "3", "stripe_customer_id": "cus_123"}
    (request,) = stripe_server.requests_to("POST", METER_EVENTS)
    assert sorted(request.form) == [
        ("event_name", "jobs_completed"),
        ("identifier", "job_1"),
        ("payload[stripe_customer_id]", "cus_123"),
        ("payload[value]", "3"),
    ]


async def test_a_retry_with_the_same_identifier_is_not_billed_twice(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    assert await report_usage(stripe_client, livemode=True, **USAGE) is True  # type: ignore[arg-type]
    assert await report_usage(stripe_client, livemode=True, **USAGE) is True  # type: ignore[arg-type]

    assert len(stripe_server.requests_to("POST", METER_EVENTS)) == 2
    assert [e["identifier"] for e in stripe_server.meter_events] == ["job_1"]


async def test_test_mode_usage_is_never_reported(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="backplane.billing.usage"):
        assert await report_usage(stripe_client, livemode=False, **USAGE) is False  # type: ignore[arg-type]
    assert stripe_server.requests == []
    assert "not reported: test-mode resource" in caplog.text


async def test_local_billing_mode_reports_nothing(
    stripe_server: StripeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="backplane.billing.usage"):
        assert await report_usage(None, livemode=True, **USAGE) is False  # type: ignore[arg-type]
    assert stripe_server.requests == []
    assert "not reported: local billing mode" in caplog.text


async def test_an_organization_without_a_customer_reports_nothing(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    usage = {**USAGE, "customer_id": None}
    assert await report_usage(stripe_client, livemode=True, **usage) is False  # type: ignore[arg-type]
    assert stripe_server.requests == []


async def test_a_5xx_is_retried_by_the_library_and_billed_once(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    stripe_server.fail_next(2, status=500)  # max_network_retries=2: the third try gets through

    assert await report_usage(stripe_client, livemode=True, **USAGE) is True  # type: ignore[arg-type]

    attempts = stripe_server.requests_to("POST", METER_EVENTS)
    assert [r.status for r in attempts] == [500, 500, 200]
    assert len({r.idempotency_key for r in attempts}) == 1
    assert len(stripe_server.meter_events) == 1


# --- the arq task -------------------------------------------------------------------------------


def _with_stand_in(settings: Settings, server: StripeServer) -> Settings:
    return settings.model_copy(update={"stripe": stand_in_settings(server)})


async def _enqueue(app: FastAPI, **overrides: object) -> Job:
    job = await app.state.queue.enqueue_job(
        "billing.report_usage", **{"organization_id": "org_1", "livemode": True, **USAGE, **overrides}
    )
    assert job is not None
    return job  # type: ignore[no-any-return]


async def test_the_task_reports_through_the_worker_once_per_identifier(
    app: FastAPI, settings: Settings, stripe_server: StripeServer
) -> None:
    first = await _enqueue(app)
    second = await _enqueue(app)  # the same usage enqueued again (a job's completion seen twice)

    worker = await run_burst_worker(_with_stand_in(settings, stripe_server))

    assert worker.jobs_failed == 0
    assert await first.result(timeout=1) is True
    assert await second.result(timeout=1) is True
    assert len(stripe_server.requests_to("POST", METER_EVENTS)) == 2
    assert [e["identifier"] for e in stripe_server.meter_events] == ["job_1"]
    assert stripe_server.meter_events[0]["payload"] == {"value": "3", "stripe_customer_id": "cus_123"}


async def test_the_task_retries_later_when_stripe_keeps_failing(
    app: FastAPI, settings: Settings, stripe_server: StripeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "RETRY_DELAYS_SECONDS", (0.1,))
    stripe_server.fail_next(3, status=503)  # every try of the first run: the library gives up
    job = await _enqueue(app)

    worker = await run_burst_worker(_with_stand_in(settings, stripe_server))

    assert worker.jobs_retried == 1
    assert await job.result(timeout=1) is True
    assert [r.status for r in stripe_server.requests_to("POST", METER_EVENTS)] == [503, 503, 503, 200]
    assert len(stripe_server.meter_events) == 1


async def test_the_task_does_not_retry_a_request_stripe_refuses(
    app: FastAPI, settings: Settings, stripe_server: StripeServer
) -> None:
    stripe_server.fail_next(1, status=400)
    job = await _enqueue(app)

    worker = await run_burst_worker(_with_stand_in(settings, stripe_server))

    assert worker.jobs_retried == 0
    assert await job.result(timeout=1) is False
    assert len(stripe_server.requests_to("POST", METER_EVENTS)) == 1
    assert stripe_server.meter_events == []


async def test_the_task_skips_test_mode_and_local_mode(
    app: FastAPI, settings: Settings, stripe_server: StripeServer
) -> None:
    test_mode = await _enqueue(app, livemode=False, identifier="job_test_mode")
    await run_burst_worker(_with_stand_in(settings, stripe_server))
    assert await test_mode.result(timeout=1) is False

    local_mode = await _enqueue(app, identifier="job_local_mode")
    assert settings.stripe.local_mode
    await run_burst_worker(settings)
    assert await local_mode.result(timeout=1) is False

    assert stripe_server.requests == []
