"""An agent under maintenance: its jobs are accepted and wait, saying why; ending it runs them in order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from backplane.core.config import Settings
from tests.fixtures.assertions import assert_error, assert_invalid, assert_not_found
from tests.fixtures.auth import Account, Api
from tests.fixtures.sql import statements
from tests.jobs.conftest import CreateJob, JobsWorker, wait_for
from tests.ops.test_operator_commands import answer, backplane, refused, staff_actions

URL = "/v1/staff/agents/test-noop/maintenance"
WHY = "The agent test-noop is under maintenance: upgrading the model"


async def _job(client: httpx.AsyncClient, account: Account, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/jobs/{job_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def _agents(client: httpx.AsyncClient, account: Account) -> dict[str, tuple[str, str | None]]:
    response = await client.get("/v1/agents", headers=account.headers)
    assert response.status_code == 200, response.text
    return {agent["id"]: (agent["status"], agent["maintenance_reason"]) for agent in response.json()}


async def test_a_job_handed_out_as_it_is_created_does_not_ask_about_maintenance(
    app: FastAPI, create_job: CreateJob
) -> None:
    """The hand-out skips agents under maintenance by itself, so only a job left waiting needs its
    agent's maintenance reason: one that takes a free slot costs no query for it (a round trip, about
    a tenth of the API's CPU for a creation)."""
    with statements(app) as seen:
        job = await create_job("test-noop")  # a new organization's one slot is free
    assert job["status"] == "queued" and job["status_reason"] is None
    assert [s for s in seen if "UPDATE jobs SET dispatch_token" in s], seen  # handed out
    assert not [s for s in seen if s.lstrip().startswith("SELECT agent_maintenance")], seen


async def test_jobs_wait_while_their_agent_is_under_maintenance_and_run_in_order_after(
    api: Api, client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    staff = await api.staff()
    waiting = await create_job("test-noop")  # before: waits too
    started = await client.put(URL, json={"reason": "  upgrading the model "}, headers=staff.headers)
    # (a job created before may have been handed out already; what matters is what is created after)
    assert started.status_code == 200, started.text
    state = started.json()
    assert (state["agent_id"], state["status"], state["reason"]) == ("test-noop", "maintenance", "upgrading the model")
    assert (await _agents(client, owner))["test-noop"] == ("maintenance", "upgrading the model")
    assert (await _agents(client, owner))["test-sleep"] == ("available", None)

    low = await create_job("test-noop", priority=0)
    high = await create_job("test-noop", priority=5)
    assert low["status"] == "queued" and low["status_reason"] == WHY
    other = await create_job("test-sleep", input_data={"seconds": 0.1})  # another agent: runs
    assert (await wait_for(client, owner, other["id"]))["status"] == "completed"
    await asyncio.sleep(0.5)  # several sweeps and a completion's slot handoff, none of which may take them
    for job in (low, high):
        shown = await _job(client, owner, job["id"])
        assert (shown["status"], shown["status_reason"]) == ("queued", WHY)

    ended = await client.delete(URL, headers=staff.headers)
    assert ended.status_code == 200, ended.text
    assert ended.json() == {"agent_id": "test-noop", "status": "available", "reason": None, "since": None}
    done = [await wait_for(client, owner, job["id"]) for job in (waiting, low, high)]
    assert [job["status"] for job in done] == ["completed"] * 3
    assert all(job["status_reason"] is None for job in done)
    _, low_done, high_done = done
    assert high_done["started_at"] < low_done["started_at"]  # best priority first, one slot on the free plan
    assert (await _agents(client, owner))["test-noop"] == ("available", None)
    actions = [(a["action"], a["target_id"]) for a in await staff_actions(client, api)]
    assert ("agent.maintenance_started", "test-noop") in actions
    assert ("agent.maintenance_ended", "test-noop") in actions


async def test_only_staff_may_and_only_for_an_agent_with_a_reason(
    api: Api, client: httpx.AsyncClient, owner: Account
) -> None:
    staff = await api.staff()
    assert_error(
        await client.put(URL, json={"reason": "x"}, headers=owner.headers),
        403,
        "FORBIDDEN",
        "This action is for platform staff only.",
    )
    assert (await client.put(URL, json={"reason": "x"})).status_code == 401
    assert_not_found(
        await client.put("/v1/staff/agents/nobody/maintenance", json={"reason": "x"}, headers=staff.headers),
        "No agent with this id.",
    )
    assert_not_found(
        await client.delete("/v1/staff/agents/nobody/maintenance", headers=staff.headers), "No agent with this id."
    )
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": "x", "extra": 1}):
        response = await client.put(URL, json=body, headers=staff.headers)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    # Ending what is not on changes nothing.
    response = await client.delete(URL, headers=staff.headers)
    assert response.json() == {"agent_id": "test-noop", "status": "available", "reason": None, "since": None}
    assert_invalid(
        await client.put(URL, json={"reason": 5}, headers=staff.headers), {"reason": ["Input should be a valid string"]}
    )


async def test_the_operator_command(
    api: Api, client: httpx.AsyncClient, owner: Account, create_job: CreateJob, settings: Settings, tmp_path: Path
) -> None:
    command = ("agents", "maintenance", "test-noop")
    on = answer(backplane(settings, tmp_path, *command, "on", "--reason", "moving", "--json"))
    assert (on["status"], on["reason"]) == ("maintenance", "moving")
    job = await create_job("test-noop")
    assert job["status_reason"] == "The agent test-noop is under maintenance: moving"
    off = answer(backplane(settings, tmp_path, *command, "off", "--json"))
    assert (off["status"], off["jobs_dispatched"]) == ("available", 1)  # handed out by the command itself
    assert (await _job(client, owner, job["id"]))["status_reason"] is None
    refused(backplane(settings, tmp_path, *command, "on"), 1, "give --reason")
    refused(backplane(settings, tmp_path, "agents", "maintenance", "nobody", "on", "--reason", "x"), 1, "nobody")
