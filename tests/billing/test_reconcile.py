"""Reconciliation: the daily `billing.reconcile` cron and `backplane billing sync [--org ORG_ID]` repair
drift after Stripe's state was changed behind the service's back (lost webhooks)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from backplane.billing.tasks import reconcile_task
from backplane.core.config import Settings
from backplane.workers.settings import CRON_JOBS
from tests.billing.stripe_mode import CHECKOUT, bought, current_subscription, event_types
from tests.fixtures.auth import Account, Api
from tests.fixtures.stripe_fixture import TEST_SECRET_KEY, stand_in_settings
from tests.fixtures.stripe_server import PERIOD_SECONDS, StripeServer
from tests.ops.test_operator_commands import answer, backplane, refused
from tests.webhooks.conftest import worker_context


def _cli_env(stripe_server: StripeServer) -> dict[str, str]:
    return {"STRIPE_SECRET_KEY": TEST_SECRET_KEY, "STRIPE_API_BASE": stripe_server.url}


async def test_the_cli_repairs_drift_of_one_organization_and_records_it(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings, tmp_path: Path
) -> None:
    subscription = await bought(http, owner, stripe_server)
    other = await Api(http).register("other@example.com", company="Other")
    other_subscription = await bought(http, other, stripe_server)
    period_end = int(time.time()) + 2 * PERIOD_SECONDS
    # Behind the service's back (the webhooks were lost):
    stripe_server.set_subscription(subscription["id"], quantity=11, cancel_at_period_end=True)
    stripe_server.set_subscription(subscription["id"], current_period_end=period_end)
    stripe_server.set_subscription(other_subscription["id"], status="past_due")

    synced = answer(backplane(settings, tmp_path, "billing", "sync", "--org", owner.organization_id, "--json",
                              **_cli_env(stripe_server)))  # fmt: skip
    assert (synced["checked"], synced["repaired"], synced["failed"]) == (1, 1, 0)
    [result] = synced["subscriptions"]
    assert result["organization_id"] == owner.organization_id
    assert set(result["differences"]) == {"seats", "cancel_at_period_end", "current_period_end"}
    assert result["differences"]["seats"] == [5, 11]

    current = await current_subscription(http, owner)
    assert (current["seats"], current["cancel_at_period_end"]) == (11, True)
    assert current["current_period_end"].startswith(time.strftime("%Y-%m-%d", time.gmtime(period_end)))
    license_ = (await http.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()
    assert license_["seats"] == 11
    assert (await event_types(settings, owner.organization_id))[-1] == "subscription.updated"
    # The other organization was not asked for.
    assert (await current_subscription(http, other))["status"] == "active"

    again = answer(backplane(settings, tmp_path, "billing", "sync", "--json", **_cli_env(stripe_server)))
    assert (again["checked"], again["repaired"]) == (2, 1)  # only the other one still differed
    assert (await current_subscription(http, other))["status"] == "past_due"
    text = backplane(settings, tmp_path, "billing", "sync", **_cli_env(stripe_server))
    assert text.returncode == 0 and text.stdout.startswith("2 checked, 0 repaired, 0 failed"), text.stderr


async def test_the_cli_refuses_a_malformed_organization_and_reports_stripe_down(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings, tmp_path: Path
) -> None:
    await bought(http, owner, stripe_server)
    malformed = backplane(settings, tmp_path, "billing", "sync", "--org", "nope", **_cli_env(stripe_server))
    assert malformed.returncode == 2 and "not an organization id" in malformed.stderr
    before = await current_subscription(http, owner)
    stripe_server.down()
    down = backplane(settings, tmp_path, "billing", "sync", "--json", **_cli_env(stripe_server))
    stripe_server.down(None)
    assert down.returncode == 1, down.stderr
    body: dict[str, Any] = json.loads(down.stdout)
    assert (body["checked"], body["failed"]) == (1, 1)
    assert body["subscriptions"][0]["error"] == "BILLING_UNAVAILABLE"
    assert await current_subscription(http, owner) == before
    unknown = backplane(settings, tmp_path, "billing", "sync", "--org", "00000000-0000-4000-8000-000000000000",
                        "--json", **_cli_env(stripe_server))  # fmt: skip
    assert answer(unknown)["checked"] == 0


def test_local_billing_mode_has_nothing_to_sync(settings: Settings, tmp_path: Path) -> None:
    result = backplane(settings, tmp_path, "billing", "sync")
    assert result.returncode == 0, result.stderr
    assert "local billing mode: nothing to compare" in result.stdout
    refused(backplane(settings, tmp_path, "billing"), 2, "usage:")


async def test_the_daily_cron_repairs_a_cancellation_stripe_made_alone(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    [cron] = [job for job in CRON_JOBS if job.name == "billing.reconcile"]
    assert (cron.hour, cron.minute) == (3, 41)  # once a day
    subscription = await bought(http, owner, stripe_server)
    stripe_server.set_subscription(subscription["id"], status="canceled", ended_at=int(time.time()))
    worker_settings = settings.model_copy(update={"stripe": stand_in_settings(stripe_server)})
    async with worker_context(worker_settings) as ctx:
        summary = await reconcile_task(ctx)
    assert summary == {"checked": 1, "repaired": 1, "failed": 0}
    current = await current_subscription(http, owner)
    assert current["status"] == "canceled"
    license_ = (await http.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()
    assert license_["is_active"] is False
    assert (await event_types(settings, owner.organization_id))[-1] == "subscription.cancelled"


@pytest.fixture(autouse=True)
def _no_env_stripe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads STRIPE_* from its environment: only what each test passes."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "BILLING_MODE"):
        monkeypatch.delenv(name, raising=False)


async def test_a_checkout_whose_webhook_was_lost_is_found_by_the_sync(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    started = await http.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)
    _, subscription = stripe_server.complete_checkout(started.json()["session_id"])  # paid; no webhook came
    assert (await current_subscription(http, owner))["plan"] == "free"
    worker_settings = settings.model_copy(update={"stripe": stand_in_settings(stripe_server)})
    async with worker_context(worker_settings) as ctx:
        assert await reconcile_task(ctx) == {"checked": 1, "repaired": 1, "failed": 0}
        assert await reconcile_task(ctx) == {"checked": 1, "repaired": 0, "failed": 0}
    current = await current_subscription(http, owner)
    assert (current["plan"], current["status"], current["seats"]) == ("pro", "active", 5)
    license_ = (await http.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()
    assert (license_["tier"], license_["seats"], license_["is_active"]) == ("pro", 5, True)
    assert await event_types(settings, owner.organization_id) == ["subscription.created"]
    # The second run compared the subscription itself, now that the row knows it.
    assert stripe_server.requests_to("GET", f"/v1/subscriptions/{subscription['id']}")
