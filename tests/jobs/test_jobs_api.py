"""`/v1/jobs` without a worker: validation, tenancy, modes, quota, batch, idempotency, listing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from backplane.billing import quota
from tests.files import samples
from tests.fixtures.assertions import assert_error, assert_invalid, assert_not_found
from tests.fixtures.auth import Account, Api
from tests.jobs.conftest import CreateJob

JOB_NOT_FOUND = "No job with this id."
NOT_A_NUMBER = "Input should be a valid number, unable to parse string as a number"
NEGATIVE = "Input should be greater than or equal to 0"
UNKNOWN_AGENT = (
    "Unknown agent 'nobody'; one of: jordan, maya, sam, taylor, test-fail, test-noop, test-sleep, test-stuck-parser."
)
TOO_MANY_FILES = "List should have at most 10 items after validation, not 11"


async def _upload(client: httpx.AsyncClient, account: Account, name: str, content: bytes) -> str:
    response = await client.post(
        "/v1/files", files={"file": (name, content, "application/octet-stream")}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


async def test_created_job_has_the_guide_shape(create_job: CreateJob) -> None:
    job = await create_job("test-sleep", input_data={"seconds": 0}, config={}, priority=7)
    assert set(job) == {
        "id", "agent_id", "status", "priority", "input_data", "config", "file_ids", "output_data", "error",
        "attempts", "livemode", "created_at", "queued_at", "started_at", "finished_at", "status_reason",
        "webhook", "webhook_events_filter",
    }  # fmt: skip
    assert job["status"] == "queued" and job["status_reason"] is None
    assert job["priority"] == 7
    assert job["input_data"] == {"seconds": 0}
    assert job["attempts"] == 0
    assert job["output_data"] is None and job["error"] is None and job["started_at"] is None
    assert job["queued_at"] is not None


async def test_sdk_spellings_are_accepted(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.post("/v1/jobs", json={"agentId": "test-noop", "input": {"echo": 1}}, headers=owner.headers)
    assert response.status_code == 201, response.text
    assert response.json()["input_data"] == {"echo": 1}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"agent_id": "nobody"}, {"agent_id": [UNKNOWN_AGENT]}),
        ({"agent_id": "test-sleep", "input_data": {"seconds": "soon"}}, {"input_data.seconds": [NOT_A_NUMBER]}),
        ({"agent_id": "test-sleep", "input_data": {"seconds": -1}}, {"input_data.seconds": [NEGATIVE]}),
        ({"agent_id": "test-noop", "priority": 101}, {"priority": ["Input should be less than or equal to 100"]}),
        ({"agent_id": "test-noop", "input_data": [1, 2]}, {"input_data": ["Input should be an object"]}),
        ({"agent_id": "test-noop", "surprise": 1}, {"surprise": ["Extra inputs are not permitted"]}),
        ({}, {"agent_id": ["This field is required."]}),
        ({"agent_id": "test-noop", "file_ids": ["f"] * 11}, {"file_ids": [TOO_MANY_FILES]}),
    ],
)  # fmt: skip
async def test_invalid_jobs_are_refused_field_by_field(
    client: httpx.AsyncClient, owner: Account, body: dict[str, object], fields: dict[str, list[str]]
) -> None:
    response = await client.post("/v1/jobs", json=body, headers=owner.headers)
    assert_invalid(response, fields)


async def test_malformed_json_is_refused(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.post(
        "/v1/jobs", content=b'{"agent_id": ', headers={**owner.headers, "Content-Type": "application/json"}
    )
    assert_error(
        response,
        422,
        "VALIDATION_ERROR",
        "The request body is not valid JSON: EOF while parsing a value at line 1 column 13.",
    )


async def test_nul_in_input_is_a_validation_error_not_a_500(raw_client: httpx.AsyncClient, api: Api) -> None:
    account = await api.register()
    response = await raw_client.post(
        "/v1/jobs", json={"agent_id": "test-noop", "input_data": {"echo": "a\u0000b"}}, headers=account.headers
    )
    assert_invalid(response, {"input_data": ["Text must not contain NUL (\\u0000) characters."]})


async def test_files_must_be_ready_files_of_the_organization(
    client: httpx.AsyncClient, api: Api, owner: Account
) -> None:
    stranger = await api.register()
    foreign = await _upload(client, stranger, "theirs.pdf", samples.pdf())
    response = await client.post(
        "/v1/jobs", json={"agent_id": "test-noop", "file_ids": [foreign]}, headers=owner.headers
    )
    assert_error(response, 404, "NOT_FOUND", f"No file with id {foreign!r}.", {"file_id": foreign})
    response = await client.post(
        "/v1/jobs", json={"agent_id": "test-noop", "file_ids": ["file_doesnotexist"]}, headers=owner.headers
    )
    assert response.status_code == 404
    own = await _upload(client, owner, "mine.pdf", samples.pdf())
    response = await client.post("/v1/jobs", json={"agent_id": "test-noop", "file_ids": [own]}, headers=owner.headers)
    assert response.status_code == 201, response.text
    assert response.json()["file_ids"] == [own]


async def test_a_file_the_agent_does_not_take_is_refused(client: httpx.AsyncClient, owner: Account) -> None:
    mp3 = await _upload(client, owner, "talk.mp3", samples.mp3())
    response = await client.post("/v1/jobs", json={"agent_id": "test-noop", "file_ids": [mp3]}, headers=owner.headers)
    assert_invalid(response, {"file_ids.0": ["test-noop does not take audio/mpeg files; it takes md, pdf, png, txt."]})


async def test_multipart_create_turns_uploads_into_files(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "test-noop", "config": "{}", "input_data": json.dumps({"echo": "x"}), "priority": "3"},
        files=[
            ("files", ("a.pdf", samples.pdf(), "application/pdf")),
            ("files", ("b.txt", samples.text(), "text/plain")),
        ],
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["priority"] == 3 and job["input_data"] == {"echo": "x"}
    assert len(job["file_ids"]) == 2
    for file_id in job["file_ids"]:
        stored = await client.get(f"/v1/files/{file_id}", headers=owner.headers)
        assert stored.status_code == 200
        assert stored.json()["status"] == "ready"


async def test_multipart_refuses_a_renamed_executable_and_keeps_nothing(
    client: httpx.AsyncClient, owner: Account, app: FastAPI
) -> None:
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "test-noop"},
        files=[("files", ("invoice.pdf", samples.elf(), "application/pdf"))],
        headers=owner.headers,
    )
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "UNSUPPORTED_FILE_TYPE"
    assert samples.stored_files(app.state.settings.storage_dir) == []
    listed = await client.get("/v1/jobs", headers=owner.headers)
    assert listed.json()["data"] == []


async def test_multipart_with_bad_json_config_keeps_no_files(
    client: httpx.AsyncClient, owner: Account, app: FastAPI
) -> None:
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "test-noop", "config": "{not json"},
        files=[("files", ("a.pdf", samples.pdf(), "application/pdf"))],
        headers=owner.headers,
    )
    assert_invalid(response, {"config": ["Must be a JSON object."]})
    assert samples.stored_files(app.state.settings.storage_dir) == []


async def test_viewers_cannot_create_jobs_but_can_read_them(
    client: httpx.AsyncClient, api: Api, owner: Account, create_job: CreateJob
) -> None:
    viewer = await api.register()
    await api.add_member(owner, viewer, "viewer")
    headers = viewer.in_org(owner.organization_id)
    response = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=headers)
    assert response.status_code == 403
    job = await create_job()
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=headers)).status_code == 200
    assert (await client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)).status_code == 403


async def test_another_organizations_job_is_404_everywhere(
    client: httpx.AsyncClient, api: Api, create_job: CreateJob
) -> None:
    job = await create_job()
    stranger = await api.register()
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}?wait=1"),
        ("GET", f"/v1/jobs/{job['id']}/output"),
        ("GET", f"/v1/jobs/{job['id']}/history"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("POST", f"/v1/jobs/{job['id']}/retry"),
    ]:
        assert_not_found(await client.request(method, path, headers=stranger.headers), JOB_NOT_FOUND)
    listed = await client.get("/v1/jobs", headers=stranger.headers)
    assert listed.json()["data"] == []


async def test_test_mode_keys_see_only_test_mode_jobs(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob
) -> None:
    live = await create_job()
    test_key = (await owner.create_key(mode="test"))["key"]
    headers = {"Authorization": f"Bearer {test_key}"}
    response = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=headers)
    assert response.status_code == 201, response.text
    test_job = response.json()
    assert test_job["livemode"] is False
    assert_not_found(await client.get(f"/v1/jobs/{live['id']}", headers=headers), JOB_NOT_FOUND)
    assert [j["id"] for j in (await client.get("/v1/jobs", headers=headers)).json()["data"]] == [test_job["id"]]


async def test_output_is_409_until_completed(client: httpx.AsyncClient, owner: Account, create_job: CreateJob) -> None:
    job = await create_job()
    response = await client.get(f"/v1/jobs/{job['id']}/output", headers=owner.headers)
    assert_error(
        response,
        409,
        "JOB_NOT_COMPLETED",
        "The job is queued; its output exists once it is completed.",
        {"status": "queued"},
    )


async def test_retry_is_only_for_failed_jobs(client: httpx.AsyncClient, owner: Account, create_job: CreateJob) -> None:
    job = await create_job()
    response = await client.post(f"/v1/jobs/{job['id']}/retry", headers=owner.headers)
    assert_error(
        response,
        409,
        "CONFLICT",
        "Only failed or dead-lettered jobs can be retried; this one is queued.",
        {"status": "queued"},
    )


async def test_cancelling_twice_is_a_conflict(client: httpx.AsyncClient, owner: Account, create_job: CreateJob) -> None:
    job = await create_job()
    first = await client.post(f"/v1/jobs/{job['id']}/cancel", headers=owner.headers)
    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert first.json()["finished_at"] is not None
    again = await client.post(f"/v1/jobs/{job['id']}/cancel", headers=owner.headers)
    assert_error(again, 409, "CONFLICT", "The job is already cancelled.", {"status": "cancelled"})


async def test_list_filters_and_paginates(client: httpx.AsyncClient, owner: Account, create_job: CreateJob) -> None:
    noop = [await create_job() for _ in range(3)]
    sleep = await create_job("test-sleep", input_data={"seconds": 0})
    await client.post(f"/v1/jobs/{noop[0]['id']}/cancel", headers=owner.headers)

    async def ids(**params: object) -> list[str]:
        response = await client.get("/v1/jobs", params=params, headers=owner.headers)
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()["data"]]

    assert await ids() == [sleep["id"], noop[2]["id"], noop[1]["id"], noop[0]["id"]]
    assert await ids(agent_id="test-sleep") == [sleep["id"]]
    assert await ids(status="cancelled") == [noop[0]["id"]]
    assert await ids(status="queued", agent_id="test-noop") == [noop[2]["id"], noop[1]["id"]]
    assert await ids(created_after=noop[2]["created_at"]) == [sleep["id"]]  # both bounds exclusive
    assert await ids(created_before=noop[1]["created_at"]) == [noop[0]["id"]]
    first = (await client.get("/v1/jobs", params={"limit": 3}, headers=owner.headers)).json()
    assert first["has_more"] is True
    rest = (await client.get("/v1/jobs", params={"cursor": first["next_cursor"]}, headers=owner.headers)).json()
    assert [j["id"] for j in rest["data"]] == [noop[0]["id"]]
    bad = await client.get("/v1/jobs", params={"status": "done"}, headers=owner.headers)
    assert bad.status_code == 422


async def test_batch_creates_all_or_none(client: httpx.AsyncClient, owner: Account) -> None:
    jobs = [{"agent_id": "test-noop", "input_data": {"echo": i}} for i in range(3)]
    response = await client.post("/v1/jobs/batch", json={"jobs": jobs}, headers=owner.headers)
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert [j["input_data"]["echo"] for j in created] == [0, 1, 2]

    bad = [
        {"agent_id": "test-noop"},
        {"agent_id": "nobody"},
        {"agent_id": "test-sleep", "input_data": {"seconds": "x"}},
    ]
    response = await client.post("/v1/jobs/batch", json={"jobs": bad}, headers=owner.headers)
    assert_invalid(
        response,
        {
            "jobs.1.agent_id": [UNKNOWN_AGENT],
            "jobs.2.input_data.seconds": [NOT_A_NUMBER],
        },
    )
    listed = (await client.get("/v1/jobs", params={"limit": 100}, headers=owner.headers)).json()["data"]
    assert len(listed) == 3

    too_many = await client.post(
        "/v1/jobs/batch", json={"jobs": [{"agent_id": "test-noop"}] * 101}, headers=owner.headers
    )
    assert_invalid(too_many, {"jobs": ["List should have at most 100 items after validation, not 101"]})
    empty = await client.post("/v1/jobs/batch", json={"jobs": []}, headers=owner.headers)
    assert empty.status_code == 422


async def test_the_monthly_quota_is_checked_at_creation(
    client: httpx.AsyncClient, owner: Account, app: FastAPI
) -> None:
    now = datetime.now(UTC)
    await quota.reconcile(app.state.redis, owner_org(owner), 99, now)  # free plan: 100 a month
    assert (await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=owner.headers)).status_code == 201
    response = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=owner.headers)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "QUOTA_EXCEEDED"
    assert error["message"].startswith("Monthly job quota exceeded: 100 jobs on the free plan.")
    assert error["details"]["limit"] == 100 and error["details"]["used"] == 100
    assert int(response.headers["Retry-After"]) > 0
    # A batch that would cross the limit is refused whole, and uses nothing.
    await quota.reconcile(app.state.redis, owner_org(owner), 98, now)
    batch = await client.post("/v1/jobs/batch", json={"jobs": [{"agent_id": "test-noop"}] * 3}, headers=owner.headers)
    assert batch.status_code == 429
    assert await quota.used(app.state.redis, owner_org(owner), now) == 98


def owner_org(account: Account) -> object:
    import uuid

    return uuid.UUID(account.organization_id)


async def test_cancelling_a_job_that_never_ran_gives_its_quota_back(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, app: FastAPI
) -> None:
    now = datetime.now(UTC)
    job = await create_job()
    assert await quota.used(app.state.redis, owner_org(owner), now) == 1
    await client.post(f"/v1/jobs/{job['id']}/cancel", headers=owner.headers)
    assert await quota.used(app.state.redis, owner_org(owner), now) == 0


async def test_wait_returns_the_job_as_it_is_when_time_runs_out(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob
) -> None:
    job = await create_job()  # no worker: it stays queued
    response = await client.get(f"/v1/jobs/{job['id']}", params={"wait": 0.3}, headers=owner.headers)
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    too_long = await client.get(f"/v1/jobs/{job['id']}", params={"wait": 61}, headers=owner.headers)
    assert too_long.status_code == 422


async def test_wait_is_woken_by_the_final_state(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob
) -> None:
    job = await create_job()
    waiting = asyncio.create_task(client.get(f"/v1/jobs/{job['id']}", params={"wait": 30}, headers=owner.headers))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await client.post(f"/v1/jobs/{job['id']}/cancel", headers=owner.headers)
    response = await asyncio.wait_for(waiting, 5)
    assert response.json()["status"] == "cancelled"


class TestIdempotency:
    async def test_a_repeat_returns_the_first_response(self, client: httpx.AsyncClient, owner: Account) -> None:
        headers = {**owner.headers, "Idempotency-Key": "4f0c-retry-1"}
        body = {"agent_id": "test-noop", "input_data": {"echo": 1}}
        first = await client.post("/v1/jobs", json=body, headers=headers)
        second = await client.post("/v1/jobs", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        listed = (await client.get("/v1/jobs", headers=owner.headers)).json()["data"]
        assert [j["id"] for j in listed] == [first.json()["id"]]

    async def test_the_same_key_with_another_body_is_422(self, client: httpx.AsyncClient, owner: Account) -> None:
        headers = {**owner.headers, "Idempotency-Key": "key-a"}
        await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=headers)
        response = await client.post("/v1/jobs", json={"agent_id": "test-sleep"}, headers=headers)
        assert_error(
            response,
            422,
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was used with a different request. Use a new key for a new request.",
            {"idempotency_key": "key-a"},
        )

    async def test_keys_are_per_organization(self, client: httpx.AsyncClient, api: Api, owner: Account) -> None:
        other = await api.register()
        body = {"agent_id": "test-noop"}
        mine = await client.post("/v1/jobs", json=body, headers={**owner.headers, "Idempotency-Key": "shared"})
        theirs = await client.post("/v1/jobs", json=body, headers={**other.headers, "Idempotency-Key": "shared"})
        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["id"] != theirs.json()["id"]

    async def test_errors_are_replayed_too(self, client: httpx.AsyncClient, owner: Account) -> None:
        headers = {**owner.headers, "Idempotency-Key": "bad-one"}
        first = await client.post("/v1/jobs", json={"agent_id": "nobody"}, headers=headers)
        second = await client.post("/v1/jobs", json={"agent_id": "nobody"}, headers=headers)
        assert first.status_code == second.status_code == 422
        assert second.json() == first.json()

    async def test_a_malformed_key_is_refused(self, client: httpx.AsyncClient, owner: Account) -> None:
        response = await client.post(
            "/v1/jobs", json={"agent_id": "test-noop"}, headers={**owner.headers, "Idempotency-Key": "x" * 256}
        )
        assert_invalid(response, {"Idempotency-Key": ["Use 1 to 255 printable ASCII characters, such as a UUID."]})

    async def test_other_platform_posts_are_idempotent_too(self, client: httpx.AsyncClient, owner: Account) -> None:
        headers = {**owner.headers, "Idempotency-Key": "new-key-once"}
        first = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers)
        second = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers)
        assert first.status_code == 201
        assert second.json()["id"] == first.json()["id"]
        keys = (await client.get("/v1/api-keys", headers=owner.headers)).json()["data"]
        assert len(keys) == 1


async def test_a_lost_quota_counter_is_rebuilt_from_postgresql(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, app: FastAPI
) -> None:
    now = datetime.now(UTC)
    for _ in range(3):
        await create_job()
    cancelled = await create_job()
    await client.post(f"/v1/jobs/{cancelled['id']}/cancel", headers=owner.headers)
    await app.state.redis.flushdb()  # Redis restarted without persistence
    assert not await quota.is_counted(app.state.redis, owner_org(owner), now)
    await create_job()
    assert await quota.used(app.state.redis, owner_org(owner), now) == 4  # 3 + this one; the cancelled one is free


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_are_refused(client: httpx.AsyncClient, owner: Account, number: str) -> None:
    body = f'{{"agent_id": "test-noop", "input_data": {{"echo": {number}}}}}'
    response = await client.post(
        "/v1/jobs", content=body, headers={**owner.headers, "Content-Type": "application/json"}
    )
    assert_invalid(response, {"input_data": ["Numbers must be finite (no NaN, Infinity or out-of-range values)."]})


@pytest.mark.parametrize("priority", ["²", "--5", "9" * 5000, "1.5", "101"])
async def test_a_bad_multipart_priority_is_refused(client: httpx.AsyncClient, owner: Account, priority: str) -> None:
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "test-noop", "priority": priority},
        files=[("files", ("a.txt", b"hello", "text/plain"))],
        headers=owner.headers,
    )
    assert_invalid(response, {"priority": ["Must be an integer from -100 to 100."]})


async def test_out_of_range_dates_in_filters_are_refused(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.get(
        "/v1/jobs", params={"created_after": "0001-01-01T00:00:00+14:00"}, headers=owner.headers
    )
    assert_invalid(response, {"created_after": ["Datetime is out of range."]})


async def test_idempotency_keys_are_separate_per_mode(client: httpx.AsyncClient, owner: Account) -> None:
    live = {"Authorization": f"Bearer {(await owner.create_key())['key']}", "Idempotency-Key": "same"}
    test = {"Authorization": f"Bearer {(await owner.create_key(mode='test'))['key']}", "Idempotency-Key": "same"}
    first = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=test)
    second = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=live)
    assert first.status_code == second.status_code == 201
    assert first.json()["livemode"] is False and second.json()["livemode"] is True
    assert "Idempotent-Replayed" not in second.headers


async def test_a_quota_refusal_is_not_replayed(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, app: FastAPI
) -> None:
    job = await create_job()
    await quota.reconcile(app.state.redis, owner_org(owner), 100, datetime.now(UTC))
    headers = {**owner.headers, "Idempotency-Key": "after-quota"}
    refused = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=headers)
    assert refused.status_code == 429
    await client.post(f"/v1/jobs/{job['id']}/cancel", headers=owner.headers)  # gives one back
    accepted = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=headers)
    assert accepted.status_code == 201, accepted.text


async def test_keys_older_than_a_day_are_purged_and_can_be_used_again(
    client: httpx.AsyncClient, owner: Account, app: FastAPI
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from backplane.idempotency.models import IdempotencyKey
    from backplane.idempotency.service import purge_expired

    headers = {**owner.headers, "Idempotency-Key": "yesterday"}
    first = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=headers)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(IdempotencyKey).values(created_at=IdempotencyKey.created_at - timedelta(hours=25)))
    assert await purge_expired(app.state.sessionmaker) == 1
    again = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=headers)
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]
