"""GET /v1/event-types: every type with the JSON Schema of its data, and every event a flow records
validates against the schema served (payloads cannot drift from their documentation)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from backplane.core.config import Settings
from backplane.events.catalog import CATALOG
from backplane.events.service import EVENT_TYPES
from tests.billing.test_local_billing import _buy, _events
from tests.fixtures.auth import Account, Api
from tests.jobs.conftest import FAST, JobsWorker, wait_for


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
