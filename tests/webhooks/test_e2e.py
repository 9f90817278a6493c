"""Real `backplane serve` and `backplane worker` processes: the worker's own cron finds the event and
delivers it, signed, to an endpoint set up through the API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from backplane.core.config import Settings
from tests.fixtures.processes import backplane_processes
from tests.webhooks.conftest import Receiver, verify_guide

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    env = {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "RATE_LIMITS_ENABLED": "false",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the receiver listens on loopback
        "STORAGE_DIR": str(settings.storage_dir),
    }
    with backplane_processes(env) as base_url:
        yield base_url


def test_a_subscription_event_reaches_a_webhook_through_the_worker(server: str, receiver: Receiver) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        registered = http.post(
            "/api/v1/auth/register/",
            json={"email": "hooks@example.com", "password": "SecurePass123!", "full_name": "Dev", "company_name": "Co"},
        )
        assert registered.status_code == 201, registered.text
        tokens = http.post("/v1/auth/login", json={"email": "hooks@example.com", "password": "SecurePass123!"})
        jwt = {"Authorization": f"Bearer {tokens.json()['tokens']['access_token']}"}
        key = http.post(
            "/v1/api-keys", json={"name": "sandbox", "mode": "test", "scopes": ["read", "admin"]}, headers=jwt
        )
        sandbox = {"Authorization": f"Bearer {key.json()['key']}"}
        created = http.post(
            "/v1/webhooks",
            json={"url": receiver.url("/webhooks/coexai"), "events": ["subscription.created"]},
            headers=sandbox,
        )
        assert created.status_code == 201, created.text
        hook = created.json()

        # Local billing mode: the checkout completes on the service itself (a test-mode subscription).
        checkout = http.post(
            "/api/v1/subscriptions/checkout/",
            json={
                "price_id": "price_pro_monthly",
                "seats": 3,
                "success_url": "https://app.example.com/ok",
                "cancel_url": "https://app.example.com/no",
            },
            headers=jwt,
        )
        assert checkout.status_code == 200, checkout.text
        parts = urlsplit(checkout.json()["checkout_url"])
        assert http.post(f"{parts.path}?{parts.query}", headers=jwt).status_code == 303

        deadline = time.monotonic() + 30  # the dispatch cron runs every 5 s
        while not receiver.received:
            assert time.monotonic() < deadline, "no webhook arrived"
            time.sleep(0.2)

        [request] = receiver.received
        body = request.body.decode()
        assert verify_guide(body, request.headers["x-coexai-signature"], hook["secret"])
        assert Webhook(hook["secret"]).verify(request.body, request.headers)["event"] == "subscription.created"

        deadline = time.monotonic() + 10  # the attempt is logged right after the answer
        while True:
            listed = http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=sandbox)
            assert listed.status_code == 200, listed.text
            [delivery] = listed.json()["data"]
            if delivery["status"] != "pending" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (delivery["status"], delivery["attempt_count"], delivery["last_status_code"]) == ("succeeded", 1, 200)
        events = http.get("/v1/events", params={"type": "subscription.created"}, headers=sandbox)
        assert events.status_code == 200, events.text
        assert [e["id"] for e in events.json()["data"]] == [request.headers["webhook-id"]]
