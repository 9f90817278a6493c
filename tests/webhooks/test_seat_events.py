"""seat.acquired, seat.released and seat.expired: made from what the seat paths write anyway (the
acquire's batched history row, the record_ended cron), received only by endpoints that name them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jsonschema
import pytest

from backplane.core.config import Settings
from backplane.licenses.tasks import record_ended_sessions_task
from backplane.workers.settings import shutdown, startup
from tests.billing.test_local_billing import _events
from tests.fixtures.auth import Api
from tests.licenses.conftest import acquire
from tests.webhooks.conftest import Receiver, create_webhook, dispatch_and_deliver, worker_context

TTL = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"seat_lease_ttl_seconds": TTL})


async def test_seat_events_are_opt_in_and_follow_the_history(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    owner = await api.register("seats@example.com")
    everything = await create_webhook(client, owner, receiver.url("/all"), ["*"])
    seats = await create_webhook(
        client, owner, receiver.url("/seats"), ["*", "seat.acquired", "seat.released", "seat.expired", "*"]
    )
    assert everything["events"] == ["*"]
    assert seats["events"] == ["*", "seat.acquired", "seat.released", "seat.expired"]
    license_ = await api.issue_license(owner, seats=3)
    sessions = {}
    for machine in ("released", "revoked", "expired"):
        response = await acquire(owner, license_["key_string"], machine)
        assert response.status_code == 200, response.text
        sessions[machine] = response.json()["session_id"]
    again = await acquire(owner, license_["key_string"], "released")  # the same machine resumes: no new event
    assert again.json()["session_id"] == sessions["released"]
    released = await client.delete(f"/api/v1/licenses/sessions/{sessions['released']}/", headers=owner.headers)
    assert released.status_code == 200, released.text
    revoked = await client.delete(
        f"/api/v1/licenses/{license_['id']}/sessions/{sessions['revoked']}/", headers=owner.headers
    )
    assert revoked.status_code == 200, revoked.text
    await asyncio.sleep(TTL + 0.5)  # `expired` never heartbeats

    ctx: dict[str, Any] = {"settings": settings}  # the worker's cron, as tests/licenses runs it
    await startup(ctx)
    try:
        assert await record_ended_sessions_task(ctx) == 3
        assert await record_ended_sessions_task(ctx) == 0  # written once
    finally:
        await shutdown(ctx)

    served = {item["type"]: item for item in (await client.get("/v1/event-types", headers=owner.headers)).json()}
    recorded = [(t, d) for t, d in await _events(settings, owner.organization_id) if t.startswith("seat.")]
    for event_type, data in recorded:
        jsonschema.validate(data, served[event_type]["data_schema"])
    by_session = {(t, d["session_id"], d.get("reason")) for t, d in recorded}
    assert len(recorded) == 6
    assert by_session == {
        ("seat.acquired", sessions["released"], None),
        ("seat.acquired", sessions["revoked"], None),
        ("seat.acquired", sessions["expired"], None),
        ("seat.released", sessions["released"], "released"),
        ("seat.released", sessions["revoked"], "revoked"),
        ("seat.expired", sessions["expired"], "expired"),
    }
    listed = await client.get("/v1/events", params={"type": "seat.expired"}, headers=owner.headers)
    assert [e["data"]["session_id"] for e in listed.json()["data"]] == [sessions["expired"]]

    async with worker_context(settings) as worker_ctx:
        await dispatch_and_deliver(worker_ctx)
    seat_bodies = [r.json() for r in receiver.to("/seats") if r.json()["type"].startswith("seat.")]
    assert sorted(b["type"] for b in seat_bodies) == sorted(t for t, _ in recorded)
    for body in seat_bodies:
        jsonschema.validate(body["data"], served[body["type"]]["data_schema"])
    assert not [r for r in receiver.to("/all") if r.json()["type"].startswith("seat.")]
    assert [r.json()["type"] for r in receiver.to("/all")] == ["license.created"]  # and not nothing at all
