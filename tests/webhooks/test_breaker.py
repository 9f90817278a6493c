"""An endpoint's circuit breaker: after failed attempts in a row its deliveries wait in Redis, unattempted,
until one probe succeeds; a healthy endpoint beside it is not slowed down; nothing waiting is lost, and a
per-resource endpoint gets what waited in order."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from backplane.core import keys
from backplane.core.config import Settings
from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
from backplane.webhooks.models import WebhookAttempt, WebhookDelivery
from backplane.webhooks.slots import EndpointSlots, circuits
from tests.fixtures.auth import Account, Api
from tests.webhooks.conftest import (
    Receiver,
    create_webhook,
    eventually,
    record,
    running_worker,
    worker_context,
)


async def _attempts_made(settings: Settings, endpoint_id: str) -> int:
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(WebhookAttempt)
                .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
                .where(WebhookDelivery.endpoint_id == endpoint_id)
            )
    finally:
        await engine.dispose()
    return int(count or 0)


async def _deliveries(client: httpx.AsyncClient, account: Account, hook: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 100}, headers=account.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def _webhook(client: httpx.AsyncClient, account: Account, hook: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"/v1/webhooks/{hook['id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_the_breaker_opens_after_failures_in_a_row_parks_then_lets_one_probe_through(settings: Settings) -> None:
    """The scripts alone, on real Redis: 3 failures open it for the first back-off; meanwhile every
    delivery waits; once it ends one probe goes (the others still wait); a failed probe opens it for
    twice as long; a successful one closes it and wakes as many waiters as there are slots."""
    async with worker_context(settings) as ctx:
        slots = EndpointSlots(
            ctx["redis"], limit=2, lease_seconds=60, breaker_failures=3, breaker_backoff_seconds=(0.3, 0.5)
        )
        endpoint = f"wh_breaker_{time.monotonic_ns()}"
        assert await circuits(ctx["redis"], [endpoint]) == {}
        for n in range(2):
            assert await slots.acquire_many([(f"d{n}", endpoint)]) == [(f"d{n}", endpoint)]
            released = await slots.release(endpoint, f"d{n}", "fail")
            assert released.opened == {} and released.woken == []
        assert (await circuits(ctx["redis"], [endpoint]))[endpoint].consecutive_failures == 2
        assert await slots.acquire(endpoint, "d2")
        before = datetime.now(UTC)
        released = await slots.release(endpoint, "d2", "fail")
        [(opened_for, until)] = released.opened.items()
        assert opened_for == endpoint and until > before
        circuit = (await circuits(ctx["redis"], [endpoint]))[endpoint]
        assert (circuit.state, circuit.consecutive_failures, circuit.retry_at) == ("open", 3, until)

        # Open: a dispatch's first attempt (not waiting) neither gets a slot nor joins the waiting set.
        assert await slots.acquire_many([("first", endpoint)], wait=False) == []
        assert await ctx["redis"].zcard(keys.webhook_waiting(endpoint)) == 0
        # Nothing gets a slot, although both are free; each waits, in the order it came.
        assert await slots.acquire_many([(f"w{n}", endpoint) for n in range(4)]) == []
        assert await ctx["redis"].zrange(keys.webhook_waiting(endpoint), 0, -1) == [b"w0", b"w1", b"w2", b"w3"]

        await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.05)
        assert (await circuits(ctx["redis"], [endpoint]))[endpoint].state == "half_open"
        assert await slots.acquire(endpoint, "w0")  # the probe
        assert not await slots.acquire(endpoint, "w1")  # one probe at a time
        before = datetime.now(UTC)
        released = await slots.release(endpoint, "w0", "fail")  # the probe failed: open again, longer
        [again] = released.opened.values()
        assert (again - before).total_seconds() >= 0.45 and released.woken == []
        assert not await slots.acquire(endpoint, "w1")

        await asyncio.sleep(max(0.0, (again - datetime.now(UTC)).total_seconds()) + 0.05)
        assert await slots.acquire(endpoint, "w1")  # the next probe
        released = await slots.release(endpoint, "w1", "ok")
        assert released.opened == {} and released.woken == [("w2", endpoint), ("w3", endpoint)]  # both slots
        assert await circuits(ctx["redis"], [endpoint]) == {}  # closed, its failures forgotten
        assert await slots.acquire_many([("w2", endpoint), ("w3", endpoint)]) == [("w2", endpoint), ("w3", endpoint)]
        # Full: the same, a first attempt does not wait (its dispatch hands it over once committed).
        assert await slots.acquire_many([("first", endpoint)], wait=False) == []
        assert await ctx["redis"].zcard(keys.webhook_waiting(endpoint)) == 0

        # An attempt that was not made (not due, another worker's) neither counts nor closes it.
        for n in range(3):
            await slots.release(endpoint, f"w{n + 2}" if n < 2 else "x", "fail" if n < 2 else "-")
        assert (await circuits(ctx["redis"], [endpoint]))[endpoint].consecutive_failures == 2


async def test_a_refused_receiver_is_parked_after_a_few_attempts_and_the_healthy_one_gets_everything(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, dead_port: int
) -> None:
    """A receiver that refuses every connection beside a healthy one, under a real worker: the breaker
    opens after 3 failures (with at most the endpoint's other slot's attempt in flight then), its other
    deliveries wait unattempted and pending, shown on the webhook; the healthy one gets every event."""
    parking = settings.model_copy(
        update={
            "webhook_endpoint_concurrency": 2,
            "webhook_breaker_failures": 3,
            "webhook_breaker_backoff_seconds": (600.0, 600.0),
        }
    )
    account = await api.register()
    dead = await create_webhook(client, account, f"http://127.0.0.1:{dead_port}/dead")
    healthy = await create_webhook(client, account, receiver.url("/healthy"))
    async with running_worker(parking, max_jobs=4):
        event_ids = [
            await record(parking, account.organization_id, "job.completed", {"id": f"job_{n}"}, wake=True)
            for n in range(30)
        ]
        await eventually(lambda: sorted(receiver.processed) == sorted(event_ids), "healthy deliveries")

        async def dead_parked() -> bool:
            shown = await _webhook(client, account, dead)
            return shown["circuit_state"] == "open" and len(await _deliveries(client, account, dead)) == 30

        await eventually(dead_parked, "the dead endpoint's deliveries made, its circuit open")
    shown = await _webhook(client, account, dead)
    assert shown["circuit_state"] == "open"
    assert 3 <= shown["consecutive_failures"] <= 4
    assert datetime.fromisoformat(shown["circuit_retry_at"]) > datetime.now(UTC)
    made = await _attempts_made(parking, dead["id"])
    assert 3 <= made <= 4  # the third failure opened it; the other slot may have had one in flight
    found = await _deliveries(client, account, dead)
    assert {d["status"] for d in found} == {"pending"}  # never dropped
    assert Counter(d["attempt_count"] for d in found) == {1: made, 0: 30 - made}
    shown = await _webhook(client, account, healthy)
    assert shown["circuit_state"] == "closed" and shown["consecutive_failures"] == 0
    assert Counter(r.headers["webhook-id"] for r in receiver.to("/healthy")) == dict.fromkeys(event_ids, 1)


async def test_a_recovering_receiver_gets_what_waited_once_each_and_in_order_per_resource(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    """Three first attempts fail (HTTP 500) and open the breaker; the events recorded meanwhile wait.
    When the back-off ends the probe goes (an event held back by its resource's earlier one gives its
    turn to the next waiter), succeeds, and every waiting delivery follows: each sent once, a resource's
    events in the order they were created, the failed ones retried on their schedule."""
    quick = settings.model_copy(
        update={
            "webhook_endpoint_concurrency": 2,
            "webhook_breaker_failures": 3,
            "webhook_breaker_backoff_seconds": (1.0, 2.0),
            "webhook_retry_schedule_seconds": (3.0, 6.0, 9.0, 12.0),
        }
    )
    account = await api.register()
    org = account.organization_id
    hook = await create_webhook(client, account, receiver.url(), ["*"], ordering="per_resource")
    receiver.answer(500, 500, 500)
    async with running_worker(quick, max_jobs=4):
        first = [
            await record(quick, org, "job.failed", {"id": f"job_{name}", "status": "failed"}, wake=True)
            for name in "abc"
        ]

        async def opened() -> bool:
            shown = await _webhook(client, account, hook)
            return shown["consecutive_failures"] == 3 and shown["circuit_state"] in ("open", "half_open")

        await eventually(opened, "the breaker open after three failed attempts")
        later = [
            await record(quick, org, "job.completed", {"id": f"job_{name}", "status": "completed"}, wake=True)
            for name in "abcd"
        ]
        everything = first + later
        await eventually(lambda: sorted(receiver.processed) == sorted(everything), "every event delivered")

        async def all_logged() -> bool:
            listed = {d["event_id"]: d for d in await _deliveries(client, account, hook)}
            return {listed[e]["status"] for e in everything} == {"succeeded"}

        await eventually(all_logged, "every delivery logged")
    assert len(receiver.received) == 3 + 7  # nothing sent twice, nothing held back sent early
    # job a, b, c: failed (then retried by the customer) before completed
    for earlier, after in zip(first, later, strict=False):
        assert receiver.processed.index(earlier) < receiver.processed.index(after)
    listed = {d["event_id"]: d for d in await _deliveries(client, account, hook)}
    assert [listed[e]["attempt_count"] for e in everything] == [2, 2, 2, 1, 1, 1, 1]
    shown = await _webhook(client, account, hook)
    assert (shown["circuit_state"], shown["consecutive_failures"], shown["circuit_retry_at"]) == ("closed", 0, None)


async def test_a_successful_ping_closes_the_circuit_and_what_waited_goes_out_at_once(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    """The receiver is mended long before the back-off ends: the owner's `webhook.test` ping (sent
    straight, whatever the circuit) succeeds, which closes the circuit, and the waiting deliveries go."""
    parking = settings.model_copy(  # one attempt at a time: the first three fail, in a row
        update={
            "webhook_endpoint_concurrency": 1,
            "webhook_breaker_failures": 3,
            "webhook_breaker_backoff_seconds": (600.0, 600.0),
        }
    )
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url("/mended"))
    receiver.answer_on("/mended", 500, 500, 500)
    async with running_worker(parking, max_jobs=4):
        event_ids = [
            await record(parking, account.organization_id, "job.completed", {"id": f"job_{n}"}, wake=True)
            for n in range(8)
        ]

        async def opened() -> bool:
            shown = await _webhook(client, account, hook)
            waiting = await _deliveries(client, account, hook)
            return shown["circuit_state"] == "open" and len(waiting) == 8

        await eventually(opened, "the circuit open")
        assert receiver.processed == []
        assert len(receiver.to("/mended")) == 3  # the others wait, unattempted

        ping = await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)
        assert ping.status_code == 200, ping.text
        assert ping.json()["status"] == "succeeded"
        shown = await _webhook(client, account, hook)
        assert (shown["circuit_state"], shown["consecutive_failures"], shown["circuit_retry_at"]) == ("closed", 0, None)
        # The five that waited go now; the three that failed keep their retry schedule (5 min).
        waited = set(event_ids) - {r.headers["webhook-id"] for r in receiver.to("/mended")[:3]}
        await eventually(lambda: waited <= set(receiver.processed), "the waiting deliveries sent")

        async def logged() -> bool:
            found = await _deliveries(client, account, hook)
            events = [d for d in found if d["event_id"] in event_ids]
            counted = Counter((d["status"], d["attempt_count"]) for d in events)
            return counted == {("succeeded", 1): 5, ("pending", 1): 3}

        await eventually(logged, "the five logged as delivered, the three failed ones pending for their retry")


async def _open_circuit(settings: Settings, endpoint_id: str) -> None:
    """Fail attempts in a row through the worker's own scripts until the endpoint's breaker opens, one
    delivery left waiting behind it."""
    async with worker_context(settings) as ctx:
        slots = EndpointSlots(
            ctx["redis"],
            limit=settings.webhook_endpoint_concurrency,
            lease_seconds=60,
            breaker_failures=settings.webhook_breaker_failures,
            breaker_backoff_seconds=(600.0, 600.0),
        )
        for n in range(settings.webhook_breaker_failures):
            assert await slots.acquire(endpoint_id, f"whd_failed_{n}")
            await slots.release(endpoint_id, f"whd_failed_{n}", "fail")
        assert not await slots.acquire(endpoint_id, "whd_waiting")


async def test_a_new_url_or_enabling_the_webhook_again_closes_its_circuit(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url("/old"))
    await _open_circuit(settings, hook["id"])
    assert (await _webhook(client, account, hook))["circuit_state"] == "open"

    moved = await client.patch(
        f"/v1/webhooks/{hook['id']}", json={"url": receiver.url("/new")}, headers=account.headers
    )
    assert moved.status_code == 200, moved.text
    closed = ("closed", 0, None)
    answered = moved.json()  # the answer says what the next GET shows, not the state before the change
    assert (answered["circuit_state"], answered["consecutive_failures"], answered["circuit_retry_at"]) == closed
    shown = await _webhook(client, account, hook)
    assert (shown["circuit_state"], shown["consecutive_failures"], shown["circuit_retry_at"]) == closed

    await _open_circuit(settings, hook["id"])
    for enabled in (False, True):
        changed = await client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": enabled}, headers=account.headers)
        assert changed.status_code == 200, changed.text
        if not enabled:
            assert changed.json()["circuit_state"] == "open"  # off: nothing is sent anyway
            assert (await _webhook(client, account, hook))["circuit_state"] == "open"
    assert (changed.json()["circuit_state"], changed.json()["consecutive_failures"]) == ("closed", 0)
    shown = await _webhook(client, account, hook)
    assert (shown["circuit_state"], shown["consecutive_failures"], shown["circuit_retry_at"]) == closed

    # Other changes leave it as it is: the receiver is the same.
    await _open_circuit(settings, hook["id"])
    described = await client.patch(f"/v1/webhooks/{hook['id']}", json={"description": "x"}, headers=account.headers)
    assert described.status_code == 200, described.text
    assert described.json()["circuit_state"] == "open"
    assert (await _webhook(client, account, hook))["circuit_state"] == "open"


async def test_deleting_a_webhook_forgets_its_circuit_and_waiting_deliveries_in_redis(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    await _open_circuit(settings, hook["id"])
    found = [keys.webhook_breaker(hook["id"]), keys.webhook_waiting(hook["id"])]
    async with worker_context(settings) as ctx:
        assert await ctx["redis"].exists(*found) == 2
        deleted = await client.delete(f"/v1/webhooks/{hook['id']}", headers=account.headers)
        assert deleted.status_code == 204, deleted.text
        assert await ctx["redis"].exists(*found, keys.webhook_slots(hook["id"])) == 0
    gone = await client.get(f"/v1/webhooks/{hook['id']}", headers=account.headers)
    assert gone.status_code == 404, gone.text
