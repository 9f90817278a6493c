"""GET /v1/event-types: every type with the JSON Schema of its data, and every event a flow records
validates against the schema served (payloads cannot drift from their documentation)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core.config import Settings
from backplane.core.db import unit_of_work, utcnow
from backplane.events.catalog import CATALOG
from backplane.events.service import EVENT_TYPES
from backplane.licenses.events import announce_expiry
from backplane.licenses.tasks import announce_expiry_task
from tests.billing.test_local_billing import _buy, _events
from tests.files import samples
from tests.fixtures.auth import Account, Api
from tests.jobs.conftest import FAST, JobsWorker, wait_for
from tests.webhooks.conftest import Receiver, create_webhook, dispatch_and_deliver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


async def _served(client: httpx.AsyncClient, account: Account) -> dict[str, dict[str, Any]]:
    response = await client.get("/v1/event-types", headers=account.headers)
    assert response.status_code == 200, response.text
    return {item["type"]: item for item in response.json()}


async def test_every_type_is_listed_with_a_description_and_a_schema(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register()
    served = await _served(client, owner)
    assert list(served) == list(EVENT_TYPES) == list(CATALOG)
    for item in served.values():
        assert item["description"] and item["data_schema"]["type"] == "object"
        jsonschema.Draft202012Validator.check_schema(item["data_schema"])
    assert (await client.get("/v1/event-types")).status_code == 401


async def test_what_a_flow_records_is_what_the_schemas_say(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await api.register("catalog@example.com")
    key = await owner.create_key(scopes=["read", "write", "admin"])
    revoked = await client.delete(f"/v1/api-keys/{key['id']}", headers=owner.headers)
    assert revoked.status_code == 200, revoked.text
    await _buy(client, owner)  # local billing: subscription.created
    worker = await JobsWorker(settings).start()
    try:
        done = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=owner.headers)
        failing = await client.post(
            "/v1/jobs", json={"agent_id": "test-fail", "input_data": {"message": "x"}}, headers=owner.headers
        )
        assert (await wait_for(client, owner, done.json()["id"]))["status"] == "completed"
        assert (await wait_for(client, owner, failing.json()["id"]))["status"] == "dead_letter"
    finally:
        await worker.stop()

    served = await _served(client, owner)
    recorded = await _events(settings, owner.organization_id)  # every event of both modes, as stored
    for event_type, data in recorded:
        jsonschema.validate(data, served[event_type]["data_schema"])
    seen = {event_type for event_type, _ in recorded}
    assert {"api_key.created", "api_key.revoked", "subscription.created", "job.completed", "job.failed"} <= seen
    created = next(data for event_type, data in recorded if event_type == "api_key.created")
    assert created["prefix"] == key["prefix"] and key["key"] not in str(created)
    # And as the API shows them.
    listed = await client.get("/v1/events", params={"type": "api_key.revoked"}, headers=owner.headers)
    [revoked_event] = listed.json()["data"]
    jsonschema.validate(revoked_event["data"], served["api_key.revoked"]["data_schema"])
    assert revoked_event["data"]["revoked_reason"] == "revoked"


async def test_license_member_and_file_changes_are_events_with_their_schemas(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("changes@example.com")
    hook = await create_webhook(client, owner, receiver.url(), ["*"])
    license_ = await api.issue_license(owner, seats=3)  # staff: license.created
    path = f"/api/v1/licenses/{license_['id']}/"
    for change in ({"suspended": True}, {"suspended": False}, {"metadata": {"team": "north"}}, {"metadata": {}}):
        response = await client.patch(path, json=change, headers=owner.headers)
        assert response.status_code == 200, response.text
    unchanged = await client.patch(path, json={"metadata": {}}, headers=owner.headers)  # changes nothing: no event
    assert unchanged.status_code == 200
    member = await api.register("joiner@example.com")
    await api.add_member(owner, member, "member")  # member.invited, member.joined
    removed = await client.delete(
        f"/v1/organizations/{owner.organization_id}/members/{member.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204, removed.text
    uploaded = await client.post(
        "/v1/files", files={"file": ("a.pdf", samples.pdf(), "application/octet-stream")}, headers=owner.headers
    )
    assert uploaded.status_code == 201, uploaded.text

    served = await _served(client, owner)
    recorded = [(t, d) for t, d in await _events(settings, owner.organization_id) if t.split(".")[0] != "api_key"]
    for event_type, data in recorded:
        jsonschema.validate(data, served[event_type]["data_schema"])
    expected = [
        "license.created",
        "license.suspended",
        "license.updated",
        "license.updated",
        "license.updated",
        "member.invited",
        "member.joined",
        "member.removed",
        "file.ready",
    ]
    free = [t for t, d in recorded if t == "license.created" and d["license"]["tier"] == "free"]
    assert [t for t, _ in recorded] == free + expected
    changes = [d["previous"] for t, d in recorded if t in ("license.suspended", "license.updated")]
    assert changes == [
        {"status": "active", "is_active": True},
        {"status": "suspended", "is_active": False},
        {"metadata": {}},
        {"metadata": {"team": "north"}},
    ]
    joined = next(d for t, d in recorded if t == "member.joined")
    assert joined["user_id"] == member.user_id and joined["role"] == "member"
    left = next(d for t, d in recorded if t == "member.removed")
    assert left["left"] is False and left["email"] == "joiner@example.com"
    ready = next(d for t, d in recorded if t == "file.ready")
    assert ready["id"] == uploaded.json()["id"] and ready["status"] == "ready"
    assert "token" not in str(next(d for t, d in recorded if t == "member.invited"))

    # Through the API and to a receiver, as they were recorded.
    listed = await client.get("/v1/events", params={"limit": 100}, headers=owner.headers)
    assert listed.status_code == 200, listed.text
    api_types = [e["type"] for e in listed.json()["data"] if not e["type"].startswith("api_key")]
    assert sorted(api_types) == sorted(free + expected)
    await dispatch_and_deliver(worker_ctx)
    got = [r.json() for r in receiver.to("/hooks")]
    assert sorted(g["type"] for g in got) == sorted(free + expected)
    for body in got:
        jsonschema.validate(body["data"], served[body["type"]]["data_schema"])
    assert hook["id"]


async def test_license_expiry_is_announced_once_each_by_the_daily_cron(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("expiry@example.com")
    await create_webhook(client, owner, receiver.url(), ["license.expiring", "license.expired"])
    now = utcnow()
    in_3_days = await api.issue_license(owner, expiry_date=(now + timedelta(days=3)).isoformat())
    in_12_hours = await api.issue_license(owner, expiry_date=(now + timedelta(hours=12)).isoformat())
    await api.issue_license(owner, expiry_date=(now + timedelta(days=30)).isoformat())  # not yet
    ended = await api.issue_license(owner, expiry_date=(now + timedelta(days=30)).isoformat())
    long_gone = await api.issue_license(owner, expiry_date=(now + timedelta(days=30)).isoformat())
    engine = create_async_engine(settings.database.url)
    try:
        async with engine.begin() as connection:  # expiry dates in the past, which no endpoint sets
            for license_, ago in ((ended, timedelta(hours=1)), (long_gone, timedelta(days=40))):
                await connection.execute(
                    text("UPDATE licenses SET expiry_date = :at WHERE id = :id"),
                    {"at": now - ago, "id": license_["id"]},
                )
    finally:
        await engine.dispose()

    assert await announce_expiry_task(worker_ctx) == 3
    assert await announce_expiry_task(worker_ctx) == 0  # once each
    async with unit_of_work(worker_ctx["sessionmaker"]) as session:  # two days on: a 1-day notice, an expiry
        assert await announce_expiry(session, now + timedelta(days=2, hours=1)) == 2

    served = await _served(client, owner)
    recorded = [
        (t, d)
        for t, d in await _events(settings, owner.organization_id)
        if t in ("license.expiring", "license.expired")
    ]
    for event_type, data in recorded:
        jsonschema.validate(data, served[event_type]["data_schema"])
    assert sorted((t, d["license"]["id"], d.get("days_before")) for t, d in recorded) == sorted(
        [
            ("license.expiring", in_3_days["id"], 7),
            ("license.expiring", in_12_hours["id"], 1),
            ("license.expired", ended["id"], None),
            ("license.expiring", in_3_days["id"], 1),
            ("license.expired", in_12_hours["id"], None),
        ]
    )
    listed = await client.get("/v1/events", params={"type": "license.expired"}, headers=owner.headers)
    expired = {e["data"]["license"]["id"]: e["data"]["license"] for e in listed.json()["data"]}
    assert expired[ended["id"]]["status"] == "expired"
    await dispatch_and_deliver(worker_ctx)
    got = sorted(r.json()["type"] for r in receiver.to("/hooks"))
    assert got == ["license.expired", "license.expired", "license.expiring", "license.expiring", "license.expiring"]
