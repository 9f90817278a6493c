"""GET /v1/jobs/{id}/events: a job's status changes and progress as Server-Sent Events, read by a real
streaming client over TCP, resumed with Last-Event-ID without losing or repeating anything."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.fixtures.assertions import assert_invalid, assert_not_found
from tests.fixtures.auth import Account, Api
from tests.fixtures.net import free_port
from tests.jobs.conftest import CreateJob, JobsWorker, until, wait_for


@dataclass
class Event:
    event: str
    id: str
    data: dict[str, Any]


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app (its lifespan run by the `app` fixture) behind a real uvicorn on loopback, in this loop."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await until(started)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def read_events(
    base_url: str, account: Account, job_id: str, *, last_event_id: str | None = None, stop_after: str | None = None
) -> list[Event]:
    """The stream's events until it ends (or until the first event named `stop_after`, then hang up)."""
    headers = dict(account.headers) | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    events: list[Event] = []
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue  # a keep-alive comment
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "data" in fields:
                events.append(Event(fields.get("event", "message"), fields["id"], json.loads(fields["data"])))
                if stop_after and events[-1].event == stop_after:
                    return events
            fields = {}
    return events


def summary(events: list[Event]) -> list[tuple[str, Any]]:
    shown: list[tuple[str, Any]] = []
    for event in events:
        if event.event == "status":
            shown.append(("status", (event.data["from_status"], event.data["to_status"])))
        elif event.event == "progress":
            shown.append(("progress", (event.data["progress"], event.data["message"])))
        else:
            shown.append((event.event, event.data["status"]))
    return shown


EXPECTED = [
    ("status", (None, "pending")),
    ("status", ("pending", "queued")),
    ("status", ("queued", "processing")),
    ("progress", (0.0, "step 1 of 4")),
    ("progress", (0.25, "step 2 of 4")),
    ("progress", (0.5, "step 3 of 4")),
    ("progress", (0.75, "step 4 of 4")),
    ("status", ("processing", "completed")),
    ("done", "completed"),
]


async def test_a_job_is_watched_live_to_its_end(
    served: str, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    job = await create_job("test-sleep", input_data={"seconds": 0.6})
    events = await read_events(served, owner, job["id"])  # opened while the job runs: ends by itself
    assert summary(events) == EXPECTED
    done = events[-1].data
    assert done["id"] == job["id"] and done["output_data"] == {"slept": 0.6}
    assert len({event.id for event in events[:-1]}) == len(events) - 1  # `done` repeats the last cursor


async def test_a_stream_resumed_with_last_event_id_misses_and_repeats_nothing(
    served: str, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    job = await create_job("test-sleep", input_data={"seconds": 0.8})
    first = await read_events(served, owner, job["id"], stop_after="progress")  # hang up mid-run
    assert summary(first)[-1] == ("progress", (0.0, "step 1 of 4"))
    rest = await read_events(served, owner, job["id"], last_event_id=first[-1].id)
    assert summary(first + rest) == EXPECTED
    # After the end: a stream resumed from its last event only says how it ended.
    again = await read_events(served, owner, job["id"], last_event_id=rest[-1].id)
    assert summary(again) == [("done", "completed")]


async def test_a_finished_job_streams_its_whole_story_at_once(
    served: str, client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    job = await create_job("test-fail", input_data={"message": "boom"})
    assert (await wait_for(client, owner, job["id"]))["status"] == "dead_letter"
    events = summary(await read_events(served, owner, job["id"]))
    assert events[-3:] == [
        ("status", ("processing", "failed")),
        ("status", ("failed", "dead_letter")),
        ("done", "dead_letter"),
    ]
    assert events.count(("status", ("queued", "processing"))) == 3  # every attempt


async def test_refusals_come_before_the_stream(
    client: httpx.AsyncClient, api: Api, owner: Account, create_job: CreateJob
) -> None:
    job = await create_job("test-noop")
    url = f"/v1/jobs/{job['id']}/events"
    stranger = await api.register("stranger@example.com")
    assert_not_found(await client.get(url, headers=stranger.headers), "No job with this id.")
    assert_not_found(
        await client.get("/v1/jobs/job_0123456789abcdef01234567/events", headers=owner.headers), "No job with this id."
    )
    assert (await client.get(url)).status_code == 401
    # Modes do not see each other's jobs: a test-mode key cannot watch a live job, nor a live key a test one.
    test_headers = {"Authorization": f"Bearer {(await owner.create_key(mode='test'))['key']}"}
    assert_not_found(await client.get(url, headers=test_headers), "No job with this id.")
    test_job = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=test_headers)
    assert test_job.status_code == 201, test_job.text
    live_headers = {"Authorization": f"Bearer {(await owner.create_key())['key']}"}
    test_url = f"/v1/jobs/{test_job.json()['id']}/events"
    assert_not_found(await client.get(test_url, headers=live_headers), "No job with this id.")
    message = "Not an event id of this stream: send back the `id` of the last event you received."
    for forged in ("12", "abc:0", "1:2:3", "1:" + "9" * 50, "-1:0"):
        response = await client.get(url, headers={**owner.headers, "Last-Event-ID": forged})
        assert_invalid(response, {"Last-Event-ID": [message]})
