"""A job's own `webhook`: its start, progress and final state POSTed to the URL it named, filtered by
`webhook_events_filter`, signed (both schemes) with the organization's job-webhook secret, retried after
a failure like every delivery, progress throttled, each attempt readable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from backplane.core.config import Settings
from backplane.core.db import utcnow
from tests.fixtures.auth import Account, Api
from tests.jobs.conftest import FAST, JobsWorker, wait_for
from tests.webhooks.conftest import Receiver, attempt_at, run_due, verify_guide


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={**FAST, "job_webhook_progress_interval_ms": 0})


@pytest.fixture
async def jobs_worker(app: object, settings: Settings) -> AsyncIterator[JobsWorker]:
    worker = await JobsWorker(settings).start()
    try:
        yield worker
    finally:
        await worker.stop()


async def _create(client: httpx.AsyncClient, owner: Account, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/jobs", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def _secret(client: httpx.AsyncClient, owner: Account) -> str:
    response = await client.get("/v1/webhooks/default/secret", headers=owner.headers)
    assert response.status_code == 200, response.text
    secret: str = response.json()["secret"]
    return secret


async def _deliveries(client: httpx.AsyncClient, owner: Account, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/jobs/{job_id}/webhook-deliveries", headers=owner.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def _deliver_all(settings: Settings, ctx: dict[str, Any]) -> None:
    """Run the due attempts until none is left (jobs' webhooks on one host share its slots: some wait
    for a slot and get a job of their own once one frees)."""
    for _ in range(10):
        if await run_due(settings, ctx["redis"]) == 0:
            return


def _types(receiver: Receiver, path: str) -> list[str]:
    return [r.json()["event"] for r in receiver.to(path)]


async def test_each_filter_gets_exactly_its_notifications_signed_with_the_job_secret(
    api: Api,
    client: httpx.AsyncClient,
    settings: Settings,
    receiver: Receiver,
    jobs_worker: JobsWorker,
    worker_ctx: dict[str, Any],
) -> None:
    owner = await api.register("job-hooks@example.com")
    secret = await _secret(client, owner)
    sleep = {"agent_id": "test-sleep", "input_data": {"seconds": 0.4}}
    jobs = {
        "/all": await _create(client, owner, **sleep, webhook=receiver.url("/all")),
        "/start": await _create(
            client, owner, **sleep, webhook=receiver.url("/start"), webhook_events_filter=["start"]
        ),
        "/progress": await _create(
            client, owner, **sleep, webhook=receiver.url("/progress"), webhook_events_filter=["progress"]
        ),
        "/completed": await _create(
            client, owner, **sleep, webhook=receiver.url("/completed"), webhook_events_filter=["completed"]
        ),
        "/failed": await _create(
            client,
            owner,
            agent_id="test-fail",
            input_data={"permanent": True},
            webhook=receiver.url("/failed"),
            webhook_events_filter=["completed"],
        ),
    }
    for job in jobs.values():
        assert (await wait_for(client, owner, job["id"]))["status"] in ("completed", "failed")
    await _deliver_all(settings, worker_ctx)

    assert sorted(_types(receiver, "/all")) == sorted(["job.started"] + ["job.progress"] * 4 + ["job.completed"])
    assert _types(receiver, "/start") == ["job.started"]
    assert _types(receiver, "/progress") == ["job.progress"] * 4
    assert _types(receiver, "/completed") == ["job.completed"]
    assert _types(receiver, "/failed") == ["job.failed"]

    verifier = Webhook(secret)
    for request in receiver.received:
        body = request.json()
        assert verify_guide(request.body.decode(), request.headers["x-coexai-signature"], secret)
        assert verifier.verify(request.body, request.headers) == body  # Standard Webhooks, raises if forged
        assert body["webhook_id"] is None and body["type"] == body["event"]
        assert body["data"]["id"] == jobs[request.path]["id"]
        assert body["data"]["webhook"] == receiver.url(request.path)
        assert request.headers["webhook-id"].startswith("whd_")
    done = next(r.json() for r in receiver.to("/completed"))
    assert done["data"]["status"] == "completed" and done["data"]["output_data"] == {"slept": 0.4}
    assert done["data"]["output_url"].endswith(f"/v1/jobs/{jobs['/completed']['id']}/output")
    progress = sorted(r.json()["data"]["progress"]["progress"] for r in receiver.to("/progress"))
    assert progress == [0.0, 0.25, 0.5, 0.75]
    # Another organization's secret does not verify these: each organization signs with its own.
    stranger = await api.register("job-hooks-stranger@example.com")
    other = await _secret(client, stranger)
    request = receiver.to("/completed")[0]
    assert not verify_guide(request.body.decode(), request.headers["x-coexai-signature"], other)
    with pytest.raises(Exception):  # noqa: B017 (the library's own verification error)
        Webhook(other).verify(request.body, request.headers)

    listed = await _deliveries(client, owner, jobs["/all"]["id"])
    assert len(listed) == 6 and {d["kind"] for d in listed} == {"job"}
    assert all(d["status"] == "succeeded" and d["webhook_id"] is None for d in listed)
    assert all(len(d["attempts"]) == 1 and d["attempts"][0]["status_code"] == 200 for d in listed)


async def test_a_failed_notification_is_retried_on_the_schedule(
    api: Api,
    client: httpx.AsyncClient,
    settings: Settings,
    receiver: Receiver,
    jobs_worker: JobsWorker,
    worker_ctx: dict[str, Any],
) -> None:
    owner = await api.register("job-hooks-retry@example.com")
    receiver.answer_on("/retry", 500)
    job = await _create(
        client,
        owner,
        agent_id="test-noop",
        webhook=receiver.url("/retry"),
        webhook_events_filter=["completed"],
    )
    await wait_for(client, owner, job["id"])
    await run_due(settings, worker_ctx["redis"])
    [waiting] = await _deliveries(client, owner, job["id"])
    assert waiting["status"] == "pending" and waiting["attempt_count"] == 1
    assert waiting["attempts"][0]["status_code"] == 500 and waiting["next_attempt_at"]
    assert waiting["max_attempts"] == 5

    outcome = await attempt_at(worker_ctx, waiting["id"], utcnow() + timedelta(minutes=6))
    assert outcome == "succeeded"
    [done] = await _deliveries(client, owner, job["id"])
    assert done["status"] == "succeeded" and [a["status_code"] for a in done["attempts"]] == [500, 200]
    first, second = receiver.to("/retry")
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]


async def test_a_cancelled_job_notifies_its_final_state(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, worker_ctx: dict[str, Any]
) -> None:
    owner = await api.register("job-hooks-cancel@example.com")
    job = await _create(client, owner, agent_id="test-noop", webhook=receiver.url("/cancel"))
    cancelled = await client.post(f"/v1/jobs/{job['id']}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    await run_due(settings, worker_ctx["redis"])
    assert _types(receiver, "/cancel") == ["job.cancelled"]  # it never started: no `start`


async def test_progress_notifications_are_throttled_per_job(
    api: Api,
    client: httpx.AsyncClient,
    settings: Settings,
    receiver: Receiver,
    worker_ctx: dict[str, Any],
) -> None:
    slow = settings.model_copy(update={"job_webhook_progress_interval_ms": 60_000})
    worker = await JobsWorker(slow).start()
    try:
        owner = await api.register("job-hooks-throttle@example.com")
        job = await _create(
            client,
            owner,
            agent_id="test-sleep",
            input_data={"seconds": 0.4},
            webhook=receiver.url("/chatty"),
            webhook_events_filter=["progress"],
        )
        await wait_for(client, owner, job["id"])
    finally:
        await worker.stop()
    await run_due(settings, worker_ctx["redis"])
    # Four reports within a second: the first one goes, the rest fall within the interval.
    assert [r.json()["data"]["progress"]["message"] for r in receiver.to("/chatty")] == ["step 1 of 4"]
