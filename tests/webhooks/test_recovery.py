"""POST /v1/webhooks/{id}/recover: after a receiver answered 500 for a while, exactly the events it
missed arrive again, once each, in order, signed; the progress is readable; bad input is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from backplane.core.config import Settings
from backplane.core.db import utcnow
from tests.fixtures.auth import Api
from tests.webhooks.conftest import (
    Receiver,
    create_webhook,
    deliveries,
    dispatch_and_deliver,
    record,
    run_due,
    verify_guide,
)


def _data(n: int) -> dict[str, Any]:
    return {"invoice_id": f"in_{n}", "amount": n, "currency": "usd", "attempt_count": 1, "subscription_id": None}


async def _recorded(settings: Settings, organization_id: str, n: int, event_type: str = "payment.succeeded") -> str:
    return await record(settings, organization_id, event_type, _data(n))


async def _progress(client: httpx.AsyncClient, account: Any, hook: dict[str, Any], rid: str) -> dict[str, Any]:
    response = await client.get(f"/v1/webhooks/{hook['id']}/recoveries/{rid}", headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_recover_sends_exactly_the_missed_events_once_in_order(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("recover@example.com")
    hook = await create_webhook(client, owner, receiver.url(), ["*"])
    org = owner.organization_id

    receiver.answer(500)
    before_window = await _recorded(settings, org, 0)  # missed, but before the window
    await dispatch_and_deliver(worker_ctx)
    since = utcnow()
    delivered = await _recorded(settings, org, 1)
    await dispatch_and_deliver(worker_ctx)
    receiver.answer(500, 500, 500)  # the receiver is down
    missed = [await _recorded(settings, org, n) for n in (2, 3, 4)]
    await dispatch_and_deliver(worker_ctx)
    after = await _recorded(settings, org, 5)  # back up
    await dispatch_and_deliver(worker_ctx)
    await record(settings, org, "seat.acquired", {})  # opt-in: this webhook never wanted it
    assert receiver.processed == [delivered, after]
    receiver.received.clear()

    started = await client.post(
        f"/v1/webhooks/{hook['id']}/recover", json={"since": since.isoformat()}, headers=owner.headers
    )
    assert started.status_code == 202, started.text
    rid = started.json()["id"]
    assert started.json()["status"] == "running" and started.json()["webhook_id"] == hook["id"]
    again = await client.post(
        f"/v1/webhooks/{hook['id']}/recover", json={"since": since.isoformat()}, headers=owner.headers
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "RECOVERY_RUNNING", again.text

    await run_due(settings, worker_ctx["redis"])  # the background operation, as a worker runs it
    arrived = [r.headers["webhook-id"] for r in receiver.received]
    assert arrived == missed  # exactly the missed ones, once each, in order
    for request in receiver.received:
        assert verify_guide(request.body.decode(), request.headers["x-coexai-signature"], hook["secret"])
    progress = await _progress(client, owner, hook, rid)
    assert progress["status"] == "completed" and progress["finished_at"]
    assert (progress["events_total"], progress["events_sent"]) == (3, 3)
    assert progress["deliveries"] == {"pending": 0, "succeeded": 3, "failed": 0}
    # The automatic deliveries waiting for their retry were taken over: nothing arrives twice later.
    listed = await deliveries(client, owner, hook)
    waiting = [d for d in listed if d["status"] == "pending"]
    assert [d["event_id"] for d in waiting] == [before_window]
    assert sorted(d["event_id"] for d in listed if d["kind"] == "recovery") == sorted(missed)

    # Recovering the same window again finds nothing to send.
    receiver.received.clear()
    second = await client.post(
        f"/v1/webhooks/{hook['id']}/recover", json={"since": since.isoformat()}, headers=owner.headers
    )
    assert second.status_code == 202, second.text
    await run_due(settings, worker_ctx["redis"])
    assert receiver.received == []
    done = await _progress(client, owner, hook, second.json()["id"])
    assert (done["status"], done["events_total"], done["events_sent"]) == ("completed", 0, 0)


async def test_a_receiver_still_down_stops_the_recovery_in_order(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("stopped@example.com")
    hook = await create_webhook(client, owner, receiver.url(), ["payment.succeeded"])
    since = utcnow()
    receiver.answer(500, 500, 500)
    missed = [await _recorded(settings, owner.organization_id, n) for n in (1, 2, 3)]
    await _recorded(settings, owner.organization_id, 9, "payment.failed")  # not subscribed
    await dispatch_and_deliver(worker_ctx)
    receiver.received.clear()

    receiver.answer(500)  # still down for the first one
    started = await client.post(
        f"/v1/webhooks/{hook['id']}/recover",
        json={"since": since.isoformat(), "until": (utcnow() + timedelta(seconds=1)).isoformat()},
        headers=owner.headers,
    )
    assert started.status_code == 202, started.text
    await run_due(settings, worker_ctx["redis"])
    assert [r.headers["webhook-id"] for r in receiver.received] == missed[:1]  # nothing after it
    stopped = await _progress(client, owner, hook, started.json()["id"])
    assert stopped["status"] == "stopped" and stopped["stopped_reason"]
    assert stopped["events_total"] == 3 and stopped["events_sent"] == 1
    assert stopped["deliveries"] == {"pending": 1, "succeeded": 0, "failed": 0}  # it keeps its retries

    receiver.received.clear()  # the receiver answers now: recover again
    resumed = await client.post(
        f"/v1/webhooks/{hook['id']}/recover", json={"since": since.isoformat()}, headers=owner.headers
    )
    assert resumed.status_code == 202, resumed.text
    await run_due(settings, worker_ctx["redis"])
    assert [r.headers["webhook-id"] for r in receiver.received] == missed


async def test_recover_refuses_bad_windows_and_foreign_ids(
    api: Api, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    owner = await api.register("bad-recover@example.com")
    other = await api.register("other-recover@example.com")
    hook = await create_webhook(client, owner, receiver.url(), ["*"])
    foreign = await create_webhook(client, other, receiver.url(), ["*"])
    now = utcnow()
    cases = [
        ({"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()}, "since"),
        ({"since": (now + timedelta(days=1)).isoformat()}, "since"),
        ({"since": "2026-11-01T00:00:00"}, "since"),  # no time zone
        ({}, "since"),
        ({"since": now.isoformat(), "extra": 1}, "extra"),
    ]
    for body, field in cases:
        response = await client.post(f"/v1/webhooks/{hook['id']}/recover", json=body, headers=owner.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        assert field in str(response.json()["error"]["details"]), response.text
    response = await client.post(
        f"/v1/webhooks/{foreign['id']}/recover", json={"since": now.isoformat()}, headers=owner.headers
    )
    assert response.status_code == 404, response.text
    started = await client.post(
        f"/v1/webhooks/{foreign['id']}/recover", json={"since": now.isoformat()}, headers=other.headers
    )
    assert started.status_code == 202
    peek = await client.get(f"/v1/webhooks/{hook['id']}/recoveries/{started.json()['id']}", headers=owner.headers)
    assert peek.status_code == 404, peek.text
    peek = await client.get(f"/v1/webhooks/{foreign['id']}/recoveries/{started.json()['id']}", headers=owner.headers)
    assert peek.status_code == 404, peek.text
    disabled = await client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": False}, headers=owner.headers)
    assert disabled.status_code == 200
    refused = await client.post(
        f"/v1/webhooks/{hook['id']}/recover", json={"since": now.isoformat()}, headers=owner.headers
    )
    assert refused.status_code == 409, refused.text
