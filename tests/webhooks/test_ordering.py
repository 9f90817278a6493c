"""`ordering: per_resource`: one resource's events reach an endpoint one after another in creation order,
whichever worker or pump batch attempts them; other resources are not held back; recovery keeps the
order; unordered endpoints are not affected."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from backplane.core.config import Settings
from backplane.core.db import utcnow
from tests.fixtures.auth import Api
from tests.webhooks.conftest import (
    Receiver,
    attempt_at,
    create_webhook,
    deliveries,
    dispatch_and_deliver,
    eventually,
    record,
    run_due,
    running_worker,
)


def _job(job_id: str, status: str = "completed") -> dict[str, Any]:
    return {"id": job_id, "status": status}


def _license(license_id: str, seats: int) -> dict[str, Any]:
    return {"license": {"id": license_id, "seats": seats}, "previous": None}


async def _record(settings: Settings, org: str, type_: str, data: dict[str, Any], **kw: Any) -> str:
    return await record(settings, org, type_, data, **kw)


def _arrived(receiver: Receiver, path: str = "/hooks") -> list[tuple[str, int]]:
    return [(r.headers["webhook-id"], len(receiver.received)) for r in receiver.to(path)]


async def test_ordering_is_shown_set_and_changed_and_bad_values_are_refused(
    api: Api, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    owner = await api.register("ordering-crud@example.com")
    plain = await create_webhook(client, owner, receiver.url())
    assert plain["ordering"] == "none"
    ordered = await create_webhook(client, owner, receiver.url(), ordering="per_resource")
    assert ordered["ordering"] == "per_resource"
    changed = await client.patch(
        f"/v1/webhooks/{plain['id']}", json={"ordering": "per_resource"}, headers=owner.headers
    )
    assert changed.status_code == 200 and changed.json()["ordering"] == "per_resource", changed.text
    read = await client.get(f"/v1/webhooks/{plain['id']}", headers=owner.headers)
    assert read.json()["ordering"] == "per_resource"
    for bad in ("fifo", None, 1, ""):
        response = await client.patch(f"/v1/webhooks/{plain['id']}", json={"ordering": bad}, headers=owner.headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        assert "ordering" in str(response.json()["error"]["details"])
    refused = await client.post(
        "/v1/webhooks", json={"url": receiver.url(), "events": ["*"], "ordering": "global"}, headers=owner.headers
    )
    assert refused.status_code == 422 and "ordering" in str(refused.json()["error"]["details"]), refused.text
    stranger = await api.register("ordering-stranger@example.com")
    foreign = await client.patch(f"/v1/webhooks/{ordered['id']}", json={"ordering": "none"}, headers=stranger.headers)
    assert foreign.status_code == 404, foreign.text


async def test_a_resource_waits_for_its_earlier_event_while_other_resources_go_on(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("ordering-wait@example.com")
    org = owner.organization_id
    hook = await create_webhook(client, owner, receiver.url(), ["*"], ordering="per_resource")
    receiver.answer(500)  # the first event about job A fails
    first = await _record(settings, org, "job.completed", _job("job_a"))
    await dispatch_and_deliver(worker_ctx)
    second = await _record(settings, org, "job.failed", _job("job_a", "failed"))
    other = await _record(settings, org, "job.completed", _job("job_b"))
    await dispatch_and_deliver(worker_ctx)
    await run_due(settings, worker_ctx["redis"])  # anything woken meanwhile

    sent = [r.headers["webhook-id"] for r in receiver.received]
    assert sent == [first, other], sent  # job A's second event waits; job B's does not
    listed = {d["event_id"]: d for d in await deliveries(client, owner, hook)}
    assert listed[second]["status"] == "pending" and listed[second]["attempt_count"] == 0
    assert listed[second]["next_attempt_at"] is None  # parked, not due: the sweep leaves it alone

    # The first event's retry succeeds: the second one follows at once, never before.
    outcome = await attempt_at(worker_ctx, listed[first]["id"], utcnow() + timedelta(minutes=6))
    assert outcome == "succeeded"
    # The woken attempt runs as a job, or in the worker's pump if the pump still holds the delivery:
    # this waits for both.
    await dispatch_and_deliver(worker_ctx)
    sent = [r.headers["webhook-id"] for r in receiver.received]
    assert sent[-2:] == [first, second], sent
    assert receiver.processed.index(first) < receiver.processed.index(second)
    listed = {d["event_id"]: d for d in await deliveries(client, owner, hook)}
    assert listed[second]["status"] == "succeeded"


async def test_a_failed_for_good_event_lets_the_next_one_go(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("ordering-give-up@example.com")
    org = owner.organization_id
    hook = await create_webhook(client, owner, receiver.url(), ["*"], ordering="per_resource")
    receiver.answer(500)
    first = await _record(settings, org, "license.updated", _license("lic-1", 3))
    second = await _record(settings, org, "license.updated", _license("lic-1", 4))
    await dispatch_and_deliver(worker_ctx)
    assert [r.headers["webhook-id"] for r in receiver.received] == [first]
    listed = {d["event_id"]: d for d in await deliveries(client, owner, hook)}
    # Its last retry fails too: failed for good, and the next event about the license goes.
    later = utcnow()
    for hours in (1, 3, 9, 20):
        receiver.answer(500)
        later += timedelta(hours=hours)
        await attempt_at(worker_ctx, listed[first]["id"], later)
    listed = {d["event_id"]: d for d in await deliveries(client, owner, hook)}
    assert listed[first]["status"] == "failed"
    await run_due(settings, worker_ctx["redis"])
    assert receiver.processed == [second]


async def test_unordered_endpoints_are_not_held_back(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("ordering-none@example.com")
    org = owner.organization_id
    await create_webhook(client, owner, receiver.url(), ["*"])
    receiver.answer(500)
    first = await _record(settings, org, "job.completed", _job("job_c"))
    await dispatch_and_deliver(worker_ctx)
    second = await _record(settings, org, "job.failed", _job("job_c", "failed"))
    await dispatch_and_deliver(worker_ctx)
    assert [r.headers["webhook-id"] for r in receiver.received] == [first, second]
    assert receiver.processed == [second]


async def test_the_pump_keeps_the_order_of_a_resource_across_retries(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    """A running worker (its pump makes first attempts in batches): the receiver fails job A's first event
    once; job A's later events arrive only after it, in order; job B's are not held back."""
    quick = settings.model_copy(update={"webhook_retry_schedule_seconds": [3.0, 3.0, 3.0]})
    owner = await api.register("ordering-pump@example.com")
    org = owner.organization_id
    await create_webhook(client, owner, receiver.url(), ["*"], ordering="per_resource")
    receiver.answer(500)
    async with running_worker(quick):
        a = [await _record(quick, org, "job.completed", _job("job_pa"), wake=True)]
        await eventually(lambda: len(receiver.received) >= 1, "the first attempt")
        a += [await _record(quick, org, "job.completed", _job("job_pa"), wake=True) for _ in range(3)]
        b = [await _record(quick, org, "job.completed", _job("job_pb"), wake=True) for _ in range(3)]
        await eventually(lambda: len(receiver.processed) == 7, "every event delivered", within=30)
    assert [p for p in receiver.processed if p in a] == a
    assert [p for p in receiver.processed if p in b] == b
    # Job B's events did not wait for job A's retries.
    assert receiver.processed.index(b[-1]) < receiver.processed.index(a[0])
    # Each of job A's later events was sent only after the first one was delivered.
    first_success = next(i for i, r in enumerate(receiver.received) if r.headers["webhook-id"] == a[0] and i >= 1)
    for later in a[1:]:
        assert all(i > first_success for i, r in enumerate(receiver.received) if r.headers["webhook-id"] == later)


async def test_recovery_sends_a_resource_s_events_in_order_once_each(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("ordering-recover@example.com")
    org = owner.organization_id
    hook = await create_webhook(client, owner, receiver.url(), ["*"], ordering="per_resource")
    since = utcnow()
    receiver.answer(500, 500, 500)
    first = await _record(settings, org, "job.completed", _job("job_r"))
    second = await _record(settings, org, "job.failed", _job("job_r", "failed"))
    other = await _record(settings, org, "job.completed", _job("job_s"))
    await dispatch_and_deliver(worker_ctx)
    await run_due(settings, worker_ctx["redis"])
    assert receiver.processed == []
    assert len(receiver.received) == 2  # job R's second event waited for its first
    receiver.reset()  # the receiver is back

    started = await client.post(
        f"/v1/webhooks/{hook['id']}/recover", json={"since": since.isoformat()}, headers=owner.headers
    )
    assert started.status_code == 202, started.text
    await run_due(settings, worker_ctx["redis"])  # the recovery
    await run_due(settings, worker_ctx["redis"])  # anything it woke
    assert receiver.processed == [first, second, other]
    assert [r.headers["webhook-id"] for r in receiver.received] == [first, second, other]
    progress = await client.get(f"/v1/webhooks/{hook['id']}/recoveries/{started.json()['id']}", headers=owner.headers)
    assert progress.json()["status"] == "completed", progress.text


async def test_turning_ordering_off_releases_what_waited(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("ordering-off@example.com")
    org = owner.organization_id
    hook = await create_webhook(client, owner, receiver.url(), ["*"], ordering="per_resource")
    receiver.answer(500)
    first = await _record(settings, org, "file.ready", {"id": "file_1"})
    await dispatch_and_deliver(worker_ctx)
    second = await _record(settings, org, "file.ready", {"id": "file_1"})
    await dispatch_and_deliver(worker_ctx)
    assert [r.headers["webhook-id"] for r in receiver.received] == [first]  # the second waits

    changed = await client.patch(f"/v1/webhooks/{hook['id']}", json={"ordering": "none"}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    await run_due(settings, worker_ctx["redis"])
    assert receiver.processed == [second]  # sent at once, without waiting for the first one's retry
