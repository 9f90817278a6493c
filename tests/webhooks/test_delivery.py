"""From a recorded event to signed POSTs: fan-out, retries on the schedule, lost jobs, redelivery."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from backplane.core.config import Settings
from backplane.core.db import unit_of_work, utcnow
from backplane.core.queue import DEFAULT_QUEUE
from backplane.events.models import Event
from backplane.webhooks import delivery as flow
from backplane.webhooks.models import WebhookAttempt, WebhookDelivery
from backplane.webhooks.slots import waiting_key
from backplane.webhooks.tasks import dispatch_task, sweep_task
from tests.fixtures.assertions import assert_error, assert_not_found
from tests.fixtures.auth import Api
from tests.webhooks.conftest import (
    Answer,
    Receiver,
    at,
    attempt_at,
    create_webhook,
    deliveries,
    detail,
    dispatch_and_deliver,
    queued_jobs,
    record,
    run_due,
    verify_guide,
)

# The guide's schedule (the default of WEBHOOK_RETRY_SCHEDULE_SECONDS): after the first attempt.
SCHEDULE = (timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6))
JOB = {"id": "job_3f9c2a7b1e4d5c6a7b8c9d0e", "status": "completed", "output_url": "https://x.example/o", "total": 100.0}


# --- fan-out and what is sent -------------------------------------------------------------------


async def test_an_event_reaches_each_subscribed_endpoint_once_signed(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    wants_it = await create_webhook(client, account, receiver.url("/a"), ["job.completed"])
    wants_all = await create_webhook(client, account, receiver.url("/b"), ["*"])
    await create_webhook(client, account, receiver.url("/c"), ["payment.failed"])  # another type
    await create_webhook(client, account, receiver.url("/d"), ["*"], enabled=False)  # disabled
    test_key = await account.create_key(mode="test", scopes=["admin"])
    await create_webhook(client, {"Authorization": f"Bearer {test_key['key']}"}, receiver.url("/e"))  # test mode
    stranger = await api.register()
    await create_webhook(client, stranger, receiver.url("/f"))  # another organization

    event_id = await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)

    # (only this event: the test-mode key's own api_key.created goes to /e, as it should)
    assert sorted(r.path for r in receiver.received if r.headers["webhook-id"] == event_id) == ["/a", "/b"]
    event = (await client.get(f"/v1/events/{event_id}", headers=account.headers)).json()
    for hook, path in ((wants_it, "/a"), (wants_all, "/b")):
        # (only this event: `*` also receives the organization's free license.created)
        [request] = [r for r in receiver.to(path) if r.headers["webhook-id"] == event_id]
        body = request.body.decode()
        assert verify_guide(body, request.headers["x-coexai-signature"], hook["secret"])
        assert not verify_guide(body, request.headers["x-coexai-signature"], wants_it["secret"] + "x")
        assert Webhook(hook["secret"]).verify(request.body, request.headers) == json.loads(body)
        assert request.headers["webhook-id"] == event_id
        assert request.headers["x-coexai-event"] == "job.completed"
        assert request.headers["user-agent"] == "Backplane-Webhooks/1.0"
        assert json.loads(body) == {
            "event": "job.completed",
            "type": "job.completed",
            "timestamp": at(event["created_at"]).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "webhook_id": hook["id"],
            "data": {**JOB, "total": 100},
        }
        assert '"total":100,' in body or '"total":100}' in body  # integral: as JavaScript writes it

        [sent] = [d for d in await deliveries(client, account, hook) if d["event_id"] == event_id]
        assert request.headers["x-coexai-delivery"] == sent["id"]
        assert (sent["status"], sent["kind"], sent["event_id"], sent["attempt_count"]) == (
            "succeeded",
            "event",
            event_id,
            1,
        )
        assert (sent["max_attempts"], sent["next_attempt_at"], sent["last_status_code"]) == (5, None, 200)
        full = await detail(client, account, hook, sent["id"])
        assert full["payload"] == json.loads(body)
        [attempt] = full["attempts"]
        assert (attempt["number"], attempt["succeeded"], attempt["status_code"], attempt["response_body"]) == (
            1,
            True,
            200,
            "ok",
        )

    # Dispatching again finds nothing new: each event goes to each endpoint once.
    assert await dispatch_task(worker_ctx) == 0
    assert len([r for r in receiver.received if r.headers["webhook-id"] == event_id]) == 2


async def test_test_mode_events_go_to_test_mode_endpoints(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    await create_webhook(client, account, receiver.url("/live"))
    test_key = await account.create_key(mode="test", scopes=["admin"])
    await create_webhook(client, {"Authorization": f"Bearer {test_key['key']}"}, receiver.url("/test"))
    await record(settings, account.organization_id, "payment.failed", {"invoice_id": "in_1"}, livemode=False)
    await dispatch_and_deliver(worker_ctx)
    assert [r.path for r in receiver.received if r.json()["type"] == "payment.failed"] == ["/test"]


async def test_two_dispatchers_at_once_deliver_each_event_once(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    for n in range(30):
        await record(settings, account.organization_id, "job.failed", {"id": f"job_{n}"})

    async def dispatch_batch() -> int:
        async with unit_of_work(worker_ctx["sessionmaker"]) as session:
            return await flow.dispatch(session, settings, utcnow(), limit=10)

    handled = await asyncio.gather(*(dispatch_batch() for _ in range(5)))
    assert sum(handled) == 30
    assert await dispatch_task(worker_ctx) == 0
    sent = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 100}, headers=account.headers)
    assert len(sent.json()["data"]) == 30
    assert len({d["event_id"] for d in sent.json()["data"]}) == 30


# --- retries ------------------------------------------------------------------------------------


async def test_failed_attempts_follow_the_schedule_then_the_delivery_fails(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url(), ["job.failed"])
    event_id = await record(settings, account.organization_id, "job.failed", {"id": "job_1", "error": "boom"})
    receiver.answer(*([Answer(503, b"down")] * 5))

    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    assert (sent["status"], sent["attempt_count"], sent["last_status_code"]) == ("pending", 1, 503)
    first = at(sent["last_attempt_at"])
    assert at(sent["next_attempt_at"]) == first + timedelta(minutes=5)
    assert await queued_jobs(worker_ctx["redis"]) == {
        f"webhooks.deliver:{sent['id']}:2": pytest.approx((first + timedelta(minutes=5)).timestamp(), abs=0.01)
    }

    # The retry's job runs at its time, not before: a job run early does nothing.
    assert await attempt_at(worker_ctx, sent["id"], first + timedelta(minutes=4)) is None
    assert len(receiver.received) == 1

    # Each retry is due at its offset from the FIRST attempt, even when the one before ran late.
    late = timedelta(seconds=3)
    for number, offset in enumerate(SCHEDULE, start=2):
        status = await attempt_at(worker_ctx, sent["id"], first + offset + late)
        assert status == ("pending" if number < 5 else "failed")
        if number < 5:
            [now_sent] = await deliveries(client, account, hook)
            assert at(now_sent["next_attempt_at"]) == first + SCHEDULE[number - 1]

    full = await detail(client, account, hook, sent["id"])
    assert (full["status"], full["attempt_count"], full["next_attempt_at"]) == ("failed", 5, None)
    times = [at(a["attempted_at"]) for a in full["attempts"]]
    assert [t - first for t in times] == [timedelta(0)] + [offset + late for offset in SCHEDULE]
    assert [(a["number"], a["succeeded"], a["status_code"], a["response_body"]) for a in full["attempts"]] == [
        (n, False, 503, "down") for n in range(1, 6)
    ]
    assert {a["error"] for a in full["attempts"]} == {"The endpoint answered HTTP 503; only 2xx counts as delivered."}
    # Every attempt sent the same body about the same event, each freshly signed.
    assert len({r.body for r in receiver.received}) == 1
    assert {r.headers["webhook-id"] for r in receiver.received} == {event_id}
    assert len({r.headers["webhook-signature"] for r in receiver.received}) == 5
    # No sixth attempt is queued; the event stays readable, listed among the undelivered.
    assert f"webhooks.deliver:{sent['id']}:6" not in await queued_jobs(worker_ctx["redis"])
    undelivered = await client.get("/v1/events", params={"delivery_success": "false"}, headers=account.headers)
    assert [e["id"] for e in undelivered.json()["data"]] == [event_id]
    read = await client.get(f"/v1/events/{event_id}", headers=account.headers)
    assert read.status_code == 200
    assert (read.json()["type"], read.json()["data"]) == ("job.failed", {"id": "job_1", "error": "boom"})


async def test_a_retry_that_succeeds_ends_the_delivery(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    await record(settings, account.organization_id, "payment.succeeded", {"invoice_id": "in_1", "amount": 4900})
    receiver.answer(500, 204)
    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    assert await attempt_at(worker_ctx, sent["id"], at(sent["next_attempt_at"])) == "succeeded"
    full = await detail(client, account, hook, sent["id"])
    assert (full["status"], full["attempt_count"], full["last_status_code"]) == ("succeeded", 2, 204)
    assert [a["succeeded"] for a in full["attempts"]] == [False, True]
    assert f"webhooks.deliver:{sent['id']}:3" not in await queued_jobs(worker_ctx["redis"])


async def test_two_runs_of_one_attempt_send_it_once(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_task(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    receiver.answer(Answer(200, delay=0.5))
    now = utcnow()
    results = await asyncio.gather(*(attempt_at(worker_ctx, sent["id"], now) for _ in range(3)))
    assert sorted(map(str, results)) == ["None", "None", "succeeded"]
    assert len(receiver.received) == 1
    assert len((await detail(client, account, hook, sent["id"]))["attempts"]) == 1


# --- lost jobs, disabled and deleted endpoints ----------------------------------------------------


async def test_the_sweep_requeues_a_delivery_whose_job_was_lost(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_task(worker_ctx)
    queue = worker_ctx["redis"]
    [job_id] = await queued_jobs(queue)
    await queue.delete(DEFAULT_QUEUE, f"arq:job:{job_id}")  # Redis lost it

    assert await sweep_task(worker_ctx) == 0  # not overdue yet: its first attempt was due just now
    async with unit_of_work(worker_ctx["sessionmaker"]) as session:
        grace = flow.sweep_grace(settings)
        assert grace == timedelta(seconds=10)  # a third of RECOVERY_SECONDS
        later = utcnow() + grace + timedelta(seconds=1)
        assert await flow.sweep(session, queue, later, grace) == 1
        assert await flow.sweep(session, queue, later, grace) == 0  # already queued again: once is enough
    assert list(await queued_jobs(queue)) == [job_id]
    await run_due(settings, queue)
    [sent] = await deliveries(client, account, hook)
    assert sent["status"] == "succeeded"
    assert len(receiver.received) == 1


async def test_deliveries_waiting_on_a_dead_endpoint_do_not_hide_another_endpoints_lost_one(
    api: Api,
    client: httpx.AsyncClient,
    receiver: Receiver,
    settings: Settings,
    worker_ctx: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sweep looks at a batch of the oldest overdue deliveries. Those parked behind an endpoint's open circuit
    (or its slots) are overdue, and a dead endpoint can park thousands: they must not fill the batch and hide a
    lost delivery of a healthy endpoint for as long as the dead one stays dead."""
    monkeypatch.setattr(flow, "SWEEP_BATCH", 4)
    monkeypatch.setattr(flow, "SWEEP_PER_ENDPOINT", 2)
    account = await api.register()
    dead = await create_webhook(client, account, "https://dead.example.com/hook")
    for n in range(5):
        await record(settings, account.organization_id, "job.completed", {**JOB, "id": f"job_dead{n}"})
    await dispatch_task(worker_ctx)
    healthy = await create_webhook(client, account, receiver.url())
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_task(worker_ctx)
    queue = worker_ctx["redis"]
    parked = [d["id"] for d in await deliveries(client, account, dead)]
    assert len(parked) == 6
    for job_id in await queued_jobs(queue):
        await queue.delete(f"arq:job:{job_id}")
        await queue.zrem(DEFAULT_QUEUE, job_id)
    await queue.zadd(waiting_key(dead["id"]), {delivery_id: 1 for delivery_id in parked})  # waiting in Redis
    [lost] = await deliveries(client, account, healthy)  # and this one's job is gone

    async with unit_of_work(worker_ctx["sessionmaker"]) as session:
        grace = flow.sweep_grace(settings)
        assert await flow.sweep(session, queue, utcnow() + grace + timedelta(seconds=1), grace) == 1
    assert list(await queued_jobs(queue)) == [flow.job_id(lost["id"], 1)]


async def test_deliveries_parked_behind_an_open_circuit_are_requeued_when_redis_loses_them(
    api: Api, client: httpx.AsyncClient, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    """A parked delivery lives only in Redis (the waiting set; the breaker's state beside it). A Redis that
    restarts empty loses both: PostgreSQL still has each delivery pending and overdue, so the sweep queues
    every one again, once."""
    account = await api.register()
    dead = await create_webhook(client, account, "https://dead.example.com/hook")
    for n in range(3):
        await record(settings, account.organization_id, "job.completed", {**JOB, "id": f"job_parked{n}"})
    await dispatch_task(worker_ctx)
    queue = worker_ctx["redis"]
    parked = sorted(d["id"] for d in await deliveries(client, account, dead))
    await queue.flushdb()  # the restart: the queued jobs, the waiting set and the breaker are gone

    async with unit_of_work(worker_ctx["sessionmaker"]) as session:
        grace = flow.sweep_grace(settings)
        later = utcnow() + grace + timedelta(seconds=1)
        assert await flow.sweep(session, queue, later, grace) == 3
        assert await flow.sweep(session, queue, later, grace) == 0
    assert sorted(await queued_jobs(queue)) == sorted(flow.job_id(delivery_id, 1) for delivery_id in parked)


async def test_disabling_a_webhook_ends_its_pending_retries(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    await record(settings, account.organization_id, "job.completed", JOB)
    receiver.answer(500)
    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    assert sent["status"] == "pending"

    off = await client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": False}, headers=account.headers)
    assert off.status_code == 200
    [ended] = await deliveries(client, account, hook)
    assert (ended["status"], ended["next_attempt_at"]) == ("failed", None)
    assert await attempt_at(worker_ctx, sent["id"], at(sent["next_attempt_at"])) is None
    assert len(receiver.received) == 1

    # Events while disabled are not sent to it.
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    assert len(await deliveries(client, account, hook)) == 1


async def test_deleting_a_webhook_stops_its_retries(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    event_id = await record(settings, account.organization_id, "job.completed", JOB)
    receiver.answer(500)
    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=account.headers)).status_code == 204
    assert await attempt_at(worker_ctx, sent["id"], at(sent["next_attempt_at"])) is None
    assert len(receiver.received) == 1
    async with unit_of_work(worker_ctx["sessionmaker"]) as session:
        left = await session.scalar(select(func.count()).select_from(WebhookDelivery))
        attempts = await session.scalar(select(func.count()).select_from(WebhookAttempt))
        event = await session.get(Event, event_id)
    assert (left, attempts) == (0, 0)
    assert event is not None  # the event outlives its deliveries


async def test_an_unexpected_error_while_sending_is_still_a_logged_attempt(
    api: Api,
    client: httpx.AsyncClient,
    receiver: Receiver,
    settings: Settings,
    worker_ctx: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    await record(settings, account.organization_id, "job.completed", JOB)

    def broken(*args: Any, **kwargs: Any) -> httpx.URL:
        raise RuntimeError("a bug")

    monkeypatch.setattr("backplane.webhooks.sender.check_url", broken)
    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    assert (sent["status"], sent["attempt_count"]) == ("pending", 1)  # retried on the schedule
    [attempt] = (await detail(client, account, hook, sent["id"]))["attempts"]
    assert attempt["error"] == "Not sent: an internal error occurred; the attempt will be retried."


async def test_an_endpoint_that_is_down_is_logged_not_raised(
    api: Api, client: httpx.AsyncClient, settings: Settings, worker_ctx: dict[str, Any], dead_port: int
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, f"http://127.0.0.1:{dead_port}/h")
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    assert (sent["status"], sent["last_status_code"]) == ("pending", None)
    [attempt] = (await detail(client, account, hook, sent["id"]))["attempts"]
    assert attempt["error"].startswith("Could not connect")


# --- redelivery ---------------------------------------------------------------------------------


async def test_redelivering_a_failed_delivery(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    event_id = await record(settings, account.organization_id, "job.completed", JOB)
    receiver.answer(*([500] * 5))
    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    first = at(sent["last_attempt_at"])
    for offset in SCHEDULE:
        await attempt_at(worker_ctx, sent["id"], first + offset)

    response = await client.post(
        f"/v1/webhooks/{hook['id']}/deliveries/{sent['id']}/redeliver", headers=account.headers
    )
    assert response.status_code == 202, response.text
    again = response.json()
    assert again["id"] != sent["id"]
    assert (again["kind"], again["status"], again["event_id"], again["attempt_count"], again["max_attempts"]) == (
        "redelivery",
        "pending",
        event_id,
        0,
        1,
    )
    await run_due(settings, worker_ctx["redis"])
    latest = (await deliveries(client, account, hook))[0]
    assert (latest["id"], latest["status"], latest["last_status_code"]) == (again["id"], "succeeded", 200)
    assert receiver.received[-1].body == receiver.received[0].body
    assert receiver.received[-1].headers["webhook-id"] == event_id

    delivered = await client.get("/v1/events", params={"delivery_success": "true"}, headers=account.headers)
    assert [e["id"] for e in delivered.json()["data"]] == [event_id]
    undelivered = await client.get("/v1/events", params={"delivery_success": "false"}, headers=account.headers)
    assert undelivered.json()["data"] == []


async def test_what_cannot_be_redelivered(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    other = await create_webhook(client, account, receiver.url("/other"))
    ping = (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)).json()
    assert_error(
        await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{ping['id']}/redeliver", headers=account.headers),
        409,
        "NOT_REDELIVERABLE",
        "A test delivery cannot be redelivered; send another test.",
    )
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    sent = next(d for d in await deliveries(client, account, hook) if d["kind"] == "event")
    # A delivery is found under its own webhook only.
    for path in (f"/v1/webhooks/{other['id']}/deliveries/{sent['id']}", f"/v1/webhooks/{hook['id']}/deliveries/whd_x"):
        assert_not_found(await client.get(path, headers=account.headers), "No delivery with this id.")
        assert_not_found(await client.post(path + "/redeliver", headers=account.headers), "No delivery with this id.")
    await client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": False}, headers=account.headers)
    assert_error(
        await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{sent['id']}/redeliver", headers=account.headers),
        409,
        "NOT_REDELIVERABLE",
        "This webhook is disabled; enable it before redelivering.",
    )


async def test_deliveries_can_be_filtered(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    first = await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    await record(settings, account.organization_id, "job.failed", {"id": "job_2"})
    receiver.answer(500)
    await dispatch_and_deliver(worker_ctx)
    path = f"/v1/webhooks/{hook['id']}/deliveries"
    by_status = await client.get(path, params={"status": "pending"}, headers=account.headers)
    assert [d["event_type"] for d in by_status.json()["data"]] == ["job.failed"]
    by_event = await client.get(path, params={"event_id": first}, headers=account.headers)
    assert [d["event_id"] for d in by_event.json()["data"]] == [first]
    bad = await client.get(path, params={"status": "lost"}, headers=account.headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["fields"] == {
        "status": ["Input should be 'pending', 'succeeded' or 'failed'"]
    }


# --- events from the platform itself ------------------------------------------------------------


async def test_a_subscription_bought_in_local_billing_mode_is_delivered(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    """Local billing mode moves no money: its subscriptions, and so their events, are test-mode ones."""
    owner = await api.register()
    test_key = await owner.create_key(mode="test", scopes=["admin"])
    hook = await create_webhook(
        client, {"Authorization": f"Bearer {test_key['key']}"}, receiver.url("/test"), ["subscription.created"]
    )
    await create_webhook(client, owner, receiver.url("/live"), ["subscription.created"])
    await owner.buy("price_pro_monthly", seats=5)
    await dispatch_and_deliver(worker_ctx)
    [request] = receiver.received
    assert verify_guide(request.body.decode(), request.headers["x-coexai-signature"], hook["secret"])
    assert request.path == "/test"
    sent = request.json()
    assert sent["event"] == "subscription.created"
    assert sent["data"]["subscription"]["plan"] == "pro"
    assert sent["data"]["subscription"]["seats"] == 5
