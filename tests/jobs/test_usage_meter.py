"""A completed live job reports to its agent's Stripe meter, `{agent}_job_completed` as the platform guide
names it (or the one STRIPE_METER_EVENT_NAMES gives), identified by the job id (stable across retries)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from backplane.app import create_app
from backplane.core.config import Settings, StripeSettings
from tests.billing.stripe_mode import WEBHOOK_SECRET, bought
from tests.fixtures.auth import Api
from tests.fixtures.stripe_fixture import stand_in_settings, stripe_server, stripe_server_session
from tests.fixtures.stripe_server import StripeServer
from tests.fixtures.worker import run_burst_worker
from tests.jobs.conftest import JobsWorker, wait_for

__all__ = ["stripe_server", "stripe_server_session"]


async def _run_one_job(settings: Settings, stripe_server: StripeServer, agent_id: str) -> tuple[str, str]:
    """Buy, run one job of `agent_id` to completion, then run the queued usage report. (job id, customer)"""
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as http,
    ):
        owner = await Api(http).register("metered@example.com")
        await bought(http, owner, stripe_server)
        worker = await JobsWorker(settings).start()
        try:
            created = await http.post("/v1/jobs", json={"agent_id": agent_id}, headers=owner.headers)
            assert created.status_code == 201, created.text
            job = await wait_for(http, owner, created.json()["id"])
            assert job["status"] == "completed", job
        finally:
            await worker.stop()
    await run_burst_worker(settings)  # the task worker sends the report the completion queued
    [customer] = stripe_server.objects("customer")
    return job["id"], customer["id"]


@pytest.fixture
async def stripe_settings(settings: Settings, stripe_server: StripeServer) -> AsyncIterator[StripeSettings]:
    yield stand_in_settings(stripe_server, stripe_webhook_secret=WEBHOOK_SECRET)


async def test_a_completed_job_reports_to_its_agents_meter(
    settings: Settings, stripe_server: StripeServer, stripe_settings: StripeSettings
) -> None:
    job_id, customer = await _run_one_job(settings.model_copy(update={"stripe": stripe_settings}), stripe_server,
                                          "test-noop")  # fmt: skip
    [reported] = stripe_server.meter_events
    assert reported["event_name"] == "test-noop_job_completed"
    assert (reported["identifier"], reported["payload"]) == (job_id, {"value": "1", "stripe_customer_id": customer})


async def test_the_meter_is_configurable_per_agent(
    settings: Settings, stripe_server: StripeServer, stripe_settings: StripeSettings
) -> None:
    configured = stripe_settings.model_copy(update={"stripe_meter_event_names": "other=x, test-noop=noop_runs"})
    await _run_one_job(settings.model_copy(update={"stripe": configured}), stripe_server, "test-noop")
    assert [e["event_name"] for e in stripe_server.meter_events] == ["noop_runs"]


def test_malformed_meter_names_are_refused_at_start() -> None:
    with pytest.raises(ValueError, match="STRIPE_METER_EVENT_NAMES: 'maya' is not `agent=meter_event_name`"):
        StripeSettings(stripe_meter_event_names="maya")
    with pytest.raises(ValueError, match="STRIPE_METER_EVENT_NAMES"):
        StripeSettings(stripe_meter_event_names="maya=has space")
    assert StripeSettings().meter_event_name("maya") == "maya_job_completed"
