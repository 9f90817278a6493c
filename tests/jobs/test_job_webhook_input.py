"""`webhook` and `webhook_events_filter` on POST /v1/jobs: shown in the job, and refused at creation (422
naming the field, nothing created or counted) when the URL could never be delivered to or the filter is
malformed; a job's deliveries are private to its organization."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.assertions import assert_not_found
from tests.fixtures.auth import Account, Api
from tests.jobs.conftest import CreateJob


def _fields(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "VALIDATION_ERROR"
    fields: dict[str, Any] = body["details"]["fields"]
    return fields


async def _count(client: httpx.AsyncClient, owner: Account) -> int:
    response = await client.get("/v1/jobs", headers=owner.headers)
    return len(response.json()["data"])


async def test_the_job_shows_its_webhook_and_the_default_filter(create_job: CreateJob) -> None:
    plain = await create_job()
    assert plain["webhook"] is None and plain["webhook_events_filter"] is None
    hooked = await create_job(webhook="https://93.184.215.14/hooks/jobs")
    assert hooked["webhook"] == "https://93.184.215.14/hooks/jobs"
    assert hooked["webhook_events_filter"] == ["start", "progress", "completed"]
    some = await create_job(webhook="https://93.184.215.14/h", webhook_events_filter=["completed", "start", "start"])
    assert some["webhook_events_filter"] == ["start", "completed"]


async def test_unsafe_or_malformed_webhooks_are_refused_at_creation(client: httpx.AsyncClient, owner: Account) -> None:
    for url in (
        "http://127.0.0.1:8080/hook",  # loopback
        "http://10.0.0.7/hook",  # private
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]/hook",
        "ftp://93.184.215.14/hook",
        "not a url",
        "https://93.184.215.14/" + "a" * 2100,  # too long
        "",
    ):
        response = await client.post("/v1/jobs", json={"agent_id": "test-noop", "webhook": url}, headers=owner.headers)
        assert set(_fields(response)) == {"webhook"}, (url, response.text)
    for bad in (["output"], [], "start", [None], ["start"] * 4):
        response = await client.post(
            "/v1/jobs",
            json={"agent_id": "test-noop", "webhook": "https://93.184.215.14/h", "webhook_events_filter": bad},
            headers=owner.headers,
        )
        assert any(f.startswith("webhook_events_filter") for f in _fields(response)), (bad, response.text)
    alone = await client.post(
        "/v1/jobs", json={"agent_id": "test-noop", "webhook_events_filter": ["start"]}, headers=owner.headers
    )
    assert _fields(alone) == {"webhook_events_filter": ["Only with a `webhook`: name the URL to notify."]}
    batch = await client.post(
        "/v1/jobs/batch",
        json={"jobs": [{"agent_id": "test-noop"}, {"agent_id": "test-noop", "webhook": "http://192.168.1.2/x"}]},
        headers=owner.headers,
    )
    assert set(_fields(batch)) == {"jobs.1.webhook"}
    assert await _count(client, owner) == 0  # all or none: nothing was created


async def test_a_job_s_webhook_deliveries_are_its_organization_s_only(
    api: Api, client: httpx.AsyncClient, owner: Account, create_job: CreateJob
) -> None:
    job = await create_job(webhook="https://93.184.215.14/h")
    mine = await client.get(f"/v1/jobs/{job['id']}/webhook-deliveries", headers=owner.headers)
    assert mine.status_code == 200 and mine.json()["data"] == [], mine.text
    stranger = await api.register("job-hook-stranger@example.com")
    assert_not_found(
        await client.get(f"/v1/jobs/{job['id']}/webhook-deliveries", headers=stranger.headers), "No job with this id."
    )
    forged = await client.get("/v1/jobs/job_ffffffffffffffffffffffff/webhook-deliveries", headers=owner.headers)
    assert_not_found(forged, "No job with this id.")
    assert_not_found(
        await client.get("/v1/jobs/'; DROP TABLE jobs--/webhook-deliveries", headers=owner.headers),
        "No job with this id.",
    )
    # The signing secret: admins only, one per organization, the same on every read.
    first = await client.get("/v1/webhooks/default/secret", headers=owner.headers)
    assert first.status_code == 200 and first.json()["secret"].startswith("whsec_"), first.text
    again = await client.get("/v1/webhooks/default/secret", headers=owner.headers)
    assert again.json() == first.json()
    theirs = await client.get("/v1/webhooks/default/secret", headers=stranger.headers)
    assert theirs.json()["secret"] != first.json()["secret"]
    anonymous = await client.get("/v1/webhooks/default/secret")
    assert anonymous.status_code == 401
    # The other mode: a test-mode key sees neither the live job nor the live secret (its own mode's).
    test_key = {
        "Authorization": f"Bearer {(await owner.create_key(mode='test', scopes=['read', 'write', 'admin']))['key']}"
    }
    assert_not_found(
        await client.get(f"/v1/jobs/{job['id']}/webhook-deliveries", headers=test_key), "No job with this id."
    )
    test_secret = await client.get("/v1/webhooks/default/secret", headers=test_key)
    assert test_secret.status_code == 200, test_secret.text
    assert test_secret.json()["secret"] != first.json()["secret"]
    # A key without the admin scope may read deliveries but not the secret.
    read_key = {"Authorization": f"Bearer {(await owner.create_key(scopes=['read']))['key']}"}
    assert (await client.get(f"/v1/jobs/{job['id']}/webhook-deliveries", headers=read_key)).status_code == 200
    refused = await client.get("/v1/webhooks/default/secret", headers=read_key)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN", refused.text
    assert "whsec_" not in refused.text  # the refusal does not carry the secret
